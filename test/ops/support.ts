/**
 * Helpers for the operations tests: the CLI in-process, and real `serve`
 * processes from the built CLI (`npm run build` first; `npm test` does).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { main } from '../../src/cli.js';

export const BIN = fileURLToPath(new URL('../../bin/fleetpulse.js', import.meta.url));
export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const ADMIN_TOKEN = 'ops-test-admin-token-0123456789abcdef';

/** Runs the CLI in this process; PATH is passed so dump tools are found. */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'fleetpulse', ...args], {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    env: { LOG_LEVEL: 'silent', PATH: process.env.PATH, ...env },
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Served {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  readonly output: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then the exit; SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** `fleetpulse serve` on a free (or given) port; resolves once /readyz answers 200. */
export async function startServe(name: string, env: Record<string, string>, port?: number): Promise<Served> {
  const listenPort = port ?? (await freePort());
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', HOST: '127.0.0.1', PORT: String(listenPort), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const output: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (s: string) => output.push(...s.split('\n').filter(Boolean)));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => output.push(...s.split('\n').filter(Boolean)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const url = `http://127.0.0.1:${listenPort}`;
  const served: Served = {
    name,
    port: listenPort,
    url,
    child,
    output,
    exited,
    async stop(timeoutMs = 15_000) {
      const started = performance.now();
      // A second SIGTERM would cut a drain short (the process handles only the first).
      if (child.exitCode === null && child.signalCode === null && !child.killed) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const exit = await exited;
      clearTimeout(timer);
      return { ...exit, ms: performance.now() - started };
    },
  };
  await waitReady(served);
  return served;
}

async function waitReady(served: Served, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void served.exited.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    const ok = await fetch(`${served.url}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await sleep(50);
  }
  await served.stop(2000);
  throw new Error(`${served.name} did not become ready:\n${served.output.slice(-20).join('\n')}`);
}

/** A fleet-wide admin request straight at one server. */
export async function adminRequest(baseUrl: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await response.json()) as { success: boolean; data: never };
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json.data;
}
