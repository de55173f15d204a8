// Starting the two servers under test: fleetpulse (`node bin/fleetpulse.js serve`)
// and the bare node:http baseline (bench/bare-server.js). Both only ever bind 127.0.0.1.
/* global fetch, AbortSignal */
import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDatabase } from './databases.js';
import { isRunning, onCleanup, stopChild, track } from './processes.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOST = '127.0.0.1';

/** @returns {Promise<number>} a port that was free a moment ago */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (probe.address());
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Keeps the last lines a child wrote (both streams), for error messages. Always
 * drains the pipes: a server blocked on a full stdout pipe would skew the numbers.
 * @param {import('node:child_process').ChildProcess} child
 */
function tail(child, max = 40) {
  /** @type {string[]} */
  const lines = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (/** @type {string} */ chunk) => {
      lines.push(...chunk.split('\n').filter((l) => l.trim() !== ''));
      if (lines.length > max) lines.splice(0, lines.length - max);
    });
  }
  return () => lines.join('\n');
}

/** Environment variables of the caller that must not leak into the server under test. */
const SCRUBBED = /^(FLEETPULSE_|DATABASE_URL$|REDIS_URL$|PORT$|HOST$|LOG_LEVEL$)/;

/**
 * @typedef {object} Fleetpulse
 * @property {string} url          base URL, e.g. http://127.0.0.1:40123
 * @property {string} adminToken
 * @property {number} pid
 * @property {() => string} output last lines the server wrote
 * @property {() => number | null} rssBytes current resident set size (Linux /proc)
 * @property {() => void} assertRunning throws with the server's last output if it has exited
 * @property {(method: string, path: string, body?: unknown, token?: string) => Promise<{ status: number, json: any }>} request
 * @property {(name: string) => Promise<number>} metric sum of every series of a Prometheus metric
 * @property {() => Promise<void>} stop
 */

/**
 * Starts fleetpulse and waits for GET /readyz to answer 200.
 * @param {{ databaseUrl: string, env?: Record<string, string>, readyTimeoutMs?: number }} options
 * @returns {Promise<Fleetpulse>}
 */
export async function startFleetpulse({ databaseUrl, env = {}, readyTimeoutMs = 60_000 }) {
  // BENCH_FLEETPULSE_BIN: another entry point taking `serve` (another build, a stand-in).
  const bin = process.env.BENCH_FLEETPULSE_BIN ?? 'bin/fleetpulse.js';
  if (!process.env.BENCH_FLEETPULSE_BIN && !existsSync(join(REPO_ROOT, 'dist', 'cli.js'))) {
    throw new Error('dist/cli.js is missing: run `npm run build` (npm run bench does it for you)');
  }
  const port = await freePort();
  const adminToken = `bench-admin-${randomBytes(24).toString('base64url')}`;
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SCRUBBED.test(k)));
  const child = track(
    spawn(process.execPath, [bin, 'serve'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...inherited,
        PORT: String(port),
        HOST,
        DATABASE_URL: databaseUrl,
        FLEETPULSE_ADMIN_TOKEN: adminToken,
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
        FLEETPULSE_SHUTDOWN_TIMEOUT_MS: '3000',
        ...env,
      },
    }),
  );
  const output = tail(child);
  const stop = onCleanup(`fleetpulse pid ${child.pid}`, () => stopChild(child, 8_000));
  const url = `http://${HOST}:${port}`;
  const exitedError = () =>
    new Error(`fleetpulse exited (code ${child.exitCode}, signal ${child.signalCode}); its last output:\n${output()}`);

  /** @type {Fleetpulse['request']} */
  const request = async (method, path, body, token = adminToken) => {
    const send = () =>
      fetch(url + path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120_000),
      });
    // A GET is retried once on a network error (a kept-alive socket the server just closed).
    const res = await send()
      .catch((err) => (method === 'GET' && isRunning(child) ? sleep(100).then(send) : Promise.reject(err)))
      .catch((err) => {
        throw isRunning(child) ? err : exitedError();
      });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, json };
  };

  const deadline = Date.now() + readyTimeoutMs;
  let last = 'no answer';
  for (;;) {
    if (!isRunning(child)) {
      await stop();
      throw exitedError();
    }
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`fleetpulse was not ready after ${readyTimeoutMs / 1000} s (last /readyz: ${last}):\n${output()}`);
    }
    await sleep(100);
  }

  return {
    url,
    adminToken,
    pid: /** @type {number} */ (child.pid),
    output,
    rssBytes: () => procRss(/** @type {number} */ (child.pid)),
    assertRunning: () => {
      if (!isRunning(child)) throw exitedError();
    },
    request,
    metric: async (name) => {
      const { status, json } = await request('GET', '/metrics');
      const text = typeof json === 'string' ? json : JSON.stringify(json);
      if (status !== 200) throw new Error(`GET /metrics answered ${status}: ${text.slice(0, 200)}`);
      return sumMetric(text, name);
    },
    stop,
  };
}

/**
 * Sums all samples of one metric in Prometheus text format (`name 12` or `name{…} 12`).
 * @param {string} text
 * @param {string} name
 */
export function sumMetric(text, name) {
  let found = false;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(rest.replace(/^\{.*\}/, '').trim().split(/\s+/)[0]);
    if (Number.isFinite(value)) {
      sum += value;
      found = true;
    }
  }
  if (!found) throw new Error(`metric ${name} not found in GET /metrics`);
  return sum;
}

/** @param {number} pid */
function procRss(pid) {
  try {
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kb ? Number(kb[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Starts bench/bare-server.js and waits until it listens.
 * @returns {Promise<{ url: string, stop: () => Promise<void> }>}
 */
export async function startBareServer() {
  const port = await freePort();
  const child = track(
    fork(fileURLToPath(new URL('../bare-server.js', import.meta.url)), [String(port), HOST], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    }),
  );
  const output = tail(child);
  const stop = onCleanup(`bare server pid ${child.pid}`, () => stopChild(child, 3_000));
  try {
    const listening = new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`bare server exited (code ${code}):\n${output()}`)));
    });
    const timeout = sleep(10_000, 'timeout', { ref: false });
    if ((await Promise.race([listening, timeout])) === 'timeout') {
      throw new Error('bare server did not listen within 10 s');
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `http://${HOST}:${port}`, stop };
}

/**
 * A fresh database and a fleetpulse on it for the duration of `fn`; both are
 * removed afterwards (and on SIGINT, via the cleanup stack).
 * @template T
 * @param {import('./databases.js').DbKind} kind
 * @param {Record<string, string>} env extra server environment
 * @param {(server: Fleetpulse) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withFleetpulse(kind, env, fn) {
  const database = await createDatabase(kind);
  const drop = onCleanup(`drop ${kind} database`, database.drop);
  try {
    const server = await startFleetpulse({ databaseUrl: database.url, env });
    try {
      return await fn(server);
    } finally {
      await server.stop();
    }
  } finally {
    await drop();
  }
}

export const BULK_MAX = 10_000;

/**
 * Registers `count` devices through POST /api/devices/bulk.
 * @param {Fleetpulse} server
 * @param {number} count
 * @param {Record<string, unknown>} [fields] extra fields for every device (thresholds…)
 * @returns {Promise<Array<{ id: string, token: string }>>}
 */
export async function registerDevices(server, count, fields = {}) {
  /** @type {Array<{ id: string, token: string }>} */
  const registered = [];
  while (registered.length < count) {
    const size = Math.min(BULK_MAX, count - registered.length);
    const devices = Array.from({ length: size }, (_, i) => ({ name: `bench-${registered.length + i + 1}`, ...fields }));
    const { status, json } = await server.request('POST', '/api/devices/bulk', { devices });
    const created = json?.data?.devices;
    if (status !== 201 || !Array.isArray(created) || created.length !== size) {
      throw new Error(`POST /api/devices/bulk (${size} devices) answered ${status}: ${JSON.stringify(json).slice(0, 300)}`);
    }
    for (const { device, token } of created) registered.push({ id: String(device.id), token });
  }
  return registered;
}

/**
 * The bare node:http baseline for the duration of `fn`.
 * @template T
 * @param {(url: string) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withBareServer(fn) {
  const bare = await startBareServer();
  try {
    return await fn(bare.url);
  } finally {
    await bare.stop();
  }
}
