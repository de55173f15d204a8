/**
 * Real fleetpulse processes for tests: spawn `serve` or `monitor` from the
 * built CLI (`npm run build` first; `npm test` does), wait until they are
 * ready, read their JSON log lines, stop or kill them.
 *
 * Every process started here is remembered until it exits: call
 * `stopAllProcesses()` in `afterAll` (and a last-resort SIGKILL runs when the
 * test worker exits), so no test leaks a child.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const BIN = fileURLToPath(new URL('../../bin/fleetpulse.js', import.meta.url));
const BUILT_CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string };

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface StartOptions {
  /** A label for error messages, e.g. "replica-1". */
  readonly name?: string;
  /** Extra CLI arguments after the command, e.g. `['--verbose']`. */
  readonly args?: readonly string[];
  /** The process environment: only PATH and HOME are inherited, so nothing leaks in from the test runner. */
  readonly env: Readonly<Record<string, string>>;
  /** For `serve`: the port (default: a free one). */
  readonly port?: number;
  /** Wait until `serve` answers /readyz (or `monitor` logs that it runs). Default true. */
  readonly waitReady?: boolean;
  readonly readyTimeoutMs?: number;
}

const live = new Set<FleetpulseProcess>();

/** A running (or exited) fleetpulse process and everything it printed. */
export class FleetpulseProcess {
  /** Parsed JSON log lines from stdout, in order. */
  readonly logs: LogLine[] = [];
  /** Lines of stdout that were not JSON, and all of stderr. */
  readonly text: string[] = [];
  readonly exited: Promise<Exit>;
  exit: Exit | null = null;
  private waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];

  constructor(
    readonly name: string,
    readonly command: 'serve' | 'monitor',
    readonly child: ChildProcess,
    /** The port `serve` listens on; null for `monitor`. */
    readonly port: number | null,
  ) {
    live.add(this);
    this.exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
      });
    });
    splitLines(child.stdout!, (line) => this.onStdout(line));
    splitLines(child.stderr!, (line) => this.text.push(line));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** `http://127.0.0.1:<port>` for `serve`. */
  get url(): string {
    if (this.port === null) throw new Error(`${this.name} has no HTTP port`);
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** Log lines with this `msg`. */
  logsWith(msg: string): LogLine[] {
    return this.logs.filter((line) => line.msg === msg);
  }

  /** Resolves with the first log line (already printed or still to come) that matches. */
  async waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const seen = this.logs.find(predicate);
    if (seen) return seen;
    let timer: NodeJS.Timeout | undefined;
    let waiter: (typeof this.waiters)[number] | undefined;
    try {
      return await Promise.race([
        new Promise<LogLine>((resolve) => {
          waiter = { predicate, resolve };
          this.waiters.push(waiter);
        }),
        this.exited.then((exit) => {
          throw new Error(`${this.name} exited (${describeExit(exit)}) while a log line was awaited\n${this.tail()}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${this.name}: no matching log line within ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.waiters = this.waiters.filter((w) => w !== waiter);
    }
  }

  /** Sends a signal without waiting (no-op once exited). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGKILL, then waits for the exit. */
  async kill(): Promise<Exit> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** SIGTERM and waits for a drained exit; SIGKILLs after `timeoutMs` and throws if that was needed. */
  async stop(timeoutMs = 10_000): Promise<Exit> {
    if (!this.running) return this.exit!;
    this.signal('SIGTERM');
    const exit = await Promise.race([this.exited, sleep(timeoutMs).then(() => null)]);
    if (exit) return exit;
    await this.kill();
    throw new Error(`${this.name} did not exit within ${timeoutMs} ms of SIGTERM; killed it\n${this.tail()}`);
  }

  /** The last lines it printed, for error messages. */
  tail(lines = 20): string {
    const all = [...this.logs.map((line) => JSON.stringify(line)), ...this.text];
    return all.slice(-lines).join('\n');
  }

  private onStdout(line: string): void {
    let parsed: LogLine | null = null;
    if (line.startsWith('{')) {
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        parsed = null;
      }
    }
    if (!parsed) {
      this.text.push(line);
      return;
    }
    this.logs.push(parsed);
    for (const waiter of this.waiters.filter((w) => w.predicate(parsed))) waiter.resolve(parsed);
  }
}

function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    for (const part of parts) if (part.trim() !== '') onLine(part);
  });
  stream.on('end', () => {
    if (rest.trim() !== '') onLine(rest);
  });
}

function describeExit(exit: Exit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `check` until it returns true; throws naming `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** GET `url`, resolving with the status code (0 when nothing answered). */
export async function httpStatus(url: string, timeoutMs = 2000): Promise<number> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

/**
 * Starts `fleetpulse <command>` as a child process on 127.0.0.1 and, unless
 * told otherwise, waits until it is ready: `serve` answers /readyz with 200,
 * `monitor` has logged "Monitor running".
 */
export async function startFleetpulse(command: 'serve' | 'monitor', options: StartOptions): Promise<FleetpulseProcess> {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run \`npm run build\` before these tests (npm test does)`);
  const port = command === 'serve' ? (options.port ?? (await freePort())) : null;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    ...options.env,
    ...(port === null ? {} : { PORT: String(port) }),
  };
  const child = spawn(process.execPath, [BIN, command, ...(options.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = new FleetpulseProcess(options.name ?? `${command}-${child.pid}`, command, child, port);
  if (options.waitReady === false) return proc;
  try {
    await waitReady(proc, options.readyTimeoutMs ?? 20_000);
  } catch (error) {
    await proc.kill();
    throw error;
  }
  return proc;
}

/** Waits until a `serve` process answers /readyz with 200, or a `monitor` has logged that it runs. */
export async function waitReady(proc: FleetpulseProcess, timeoutMs = 20_000): Promise<void> {
  if (proc.command === 'monitor') {
    await proc.waitForLog((line) => line.msg === 'Monitor running', timeoutMs);
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while ((await httpStatus(`${proc.url}/readyz`)) !== 200) {
    if (!proc.running) throw new Error(`${proc.name} exited (${describeExit(proc.exit!)}) before it was ready\n${proc.tail()}`);
    if (Date.now() > deadline) throw new Error(`${proc.name} was not ready within ${timeoutMs} ms\n${proc.tail()}`);
    await sleep(100);
  }
}

/** Every process started here that has not exited yet. */
export function liveProcesses(): FleetpulseProcess[] {
  return [...live];
}

/** SIGTERM to every live process, SIGKILL to any still there after `timeoutMs`. Never throws. */
export async function stopAllProcesses(timeoutMs = 10_000): Promise<void> {
  await Promise.all(liveProcesses().map((proc) => proc.stop(timeoutMs).catch(() => undefined)));
}

// Last resort: a worker that dies (or forgets afterAll) takes its children along.
process.once('exit', () => {
  for (const proc of live) proc.child.kill('SIGKILL');
});

/** Sums a Prometheus counter's samples (all label sets, or those matching `labels`). */
export function sumMetric(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const sampleLabels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([key, value]) => sampleLabels[key] === value)) total += Number(match[3]);
  }
  return total;
}
