import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import { afterEach, describe, expect, it } from 'vitest';

import { createTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';

const run = promisify(execFile);
const BIN = new URL('../../bin/fleetpulse.js', import.meta.url).pathname;
const ADMIN = 'change-me-to-a-long-random-secret';

interface Server {
  readonly child: ChildProcess;
  readonly base: string;
  readonly output: string[];
}

const children: ChildProcess[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const db of databases.splice(0)) await db.drop();
});

let nextPort = 18_500 + Math.floor(Math.random() * 1000);

async function serve(env: Record<string, string>): Promise<Server> {
  const port = nextPort++;
  const output: string[] = [];
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', FLEETPULSE_ADMIN_TOKEN: ADMIN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stdout!.on('data', (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean)));
  child.stderr!.on('data', (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean)));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ready = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ready) return { child, base, output };
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`server did not become ready:\n${output.join('\n')}`);
}

async function stop(server: Server, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (server.child.exitCode !== null) return server.child.exitCode;
  const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
  server.child.kill(signal);
  return exited;
}

async function api(server: Server, method: string, path: string, token: string, body?: unknown) {
  const response = await fetch(`${server.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as { data: Record<string, unknown> & { items?: Record<string, unknown>[] } } };
}

async function sqliteFile(): Promise<TestDatabase> {
  const db = await createTestDatabase('sqlite', { file: true });
  databases.push(db);
  return db;
}

describe('fleetpulse serve (real processes)', () => {
  it('runs the README session verbatim', async () => {
    const db = await sqliteFile();
    const server = await serve({ DATABASE_URL: db.url });
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /<!-- readme-session:start -->\n```bash\n([\s\S]*?)```\n<!-- readme-session:end -->/.exec(readme);
    expect(block).not.toBeNull();
    const cwd = dirname(db.url.slice('sqlite:'.length));
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', block![1]!], { cwd, env: { ...process.env, BASE: server.base } });
    const lines = stdout.trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ success: true, data: { status: 'connected', should_reconnect: false } });
    expect(lines[1]).toBe('temporarily_offline');
    expect(lines[2]).toBe('offline');
    const history = JSON.parse(lines[3]!).data.items.map((t: { to_status: string }) => t.to_status);
    expect(history).toEqual(['offline', 'temporarily_offline', 'connected']);
    expect(server.output.filter((l) => l.includes('"msg":"Device status changed"'))).toHaveLength(3);
    expect(await stop(server)).toBe(0);
  }, 30_000);

  it('never blames devices for its own downtime: zero transitions until they had a full timeout to report', async () => {
    const db = await sqliteFile();
    const env = { DATABASE_URL: db.url, FLEETPULSE_MONITOR_INTERVAL_MS: '100' };
    let server = await serve(env);
    const created = await api(server, 'POST', '/api/devices', ADMIN, {
      name: 'patient',
      heartbeat_interval_seconds: 1,
      heartbeat_timeout_seconds: 2,
      grace_period_seconds: 3,
    });
    const { id } = created.body.data.device as { id: number };
    expect((await api(server, 'POST', '/api/devices/heartbeat', created.body.data.token as string, {})).status).toBe(200);
    expect(await stop(server)).toBe(0);

    await sleep(4000); // down for longer than the grace period
    const restartedAt = Date.now();
    server = await serve(env);
    let history = await api(server, 'GET', `/api/devices/${id}/transitions`, ADMIN);
    expect(history.body.data.items!.map((t) => t.to_status)).toEqual(['connected']);

    await sleep(2500); // past the timeout, counted from the restart
    history = await api(server, 'GET', `/api/devices/${id}/transitions`, ADMIN);
    expect(history.body.data.items!.map((t) => t.to_status)).toEqual(['temporarily_offline', 'connected']);
    // Stamped a full timeout after the server came back, not during its downtime.
    expect(Date.parse(history.body.data.items![0]!.at as string)).toBeGreaterThanOrEqual(restartedAt + 2000);
    expect(await stop(server)).toBe(0);
  }, 30_000);

  it('lets `monitor --once --dry-run` preview and `monitor --once` apply, next to a running server', async () => {
    const db = await sqliteFile();
    const server = await serve({ DATABASE_URL: db.url, FLEETPULSE_MONITOR: 'off' });
    const created = await api(server, 'POST', '/api/devices', ADMIN, {
      name: 'KIOSK-CLI',
      heartbeat_interval_seconds: 1,
      heartbeat_timeout_seconds: 1,
      grace_period_seconds: 30,
    });
    await api(server, 'POST', '/api/devices/heartbeat', created.body.data.token as string, {});
    await sleep(1300);
    const cli = (args: string[]) => run(process.execPath, [BIN, 'monitor', ...args], { env: { ...process.env, DATABASE_URL: db.url } });

    const preview = await cli(['--once', '--dry-run', '--verbose']);
    expect(preview.stdout).toMatch(/would change KIOSK-CLI \(id 1\): Connected -> Temporarily Offline/);
    expect(preview.stdout).toMatch(/Dry run: 1 due device\(s\) checked, 1 transition\(s\) would be made; nothing was changed/);
    const unchanged = await api(server, 'GET', '/api/devices/1', ADMIN);
    expect(unchanged.body.data.status).toBe('connected');

    const applied = await cli(['--once']);
    expect(applied.stdout).toMatch(/^changed KIOSK-CLI \(id 1\): Connected -> Temporarily Offline/);
    expect(applied.stderr).toMatch(/"msg":"Device status changed"/);
    expect((await api(server, 'GET', '/api/devices/1', ADMIN)).body.data.status).toBe('temporarily_offline');
    expect(await stop(server)).toBe(0);
  }, 30_000);
});
