/**
 * A PostgreSQL server of a test's own, in a temporary folder on a spare
 * port, that the test may stop and start at will (the machine's shared server
 * is never touched). PostgreSQL refuses to run as root, so as root every
 * command runs as the `postgres` OS user through `runuser`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import pg from 'pg';

import { freePort } from './processes.js';

const run = promisify(execFile);
/** Stops a server immediately, synchronously (for the exit hook). */
const stopNow = new Map<string, () => void>();
// Last resort: a test worker that dies takes its servers along.
process.once('exit', () => {
  for (const stop of stopNow.values()) stop();
});
const PG_ROOT = '/usr/lib/postgresql';

function binDir(): string | null {
  if (!existsSync(PG_ROOT)) return null;
  const versions = readdirSync(PG_ROOT)
    .filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(PG_ROOT, versions[0]!, 'bin') : null;
}

/** Why a private server cannot be started here, or null when it can. */
export function privatePostgresUnavailable(): string | null {
  if (!binDir()) return `no initdb under ${PG_ROOT}`;
  if (process.getuid?.() === 0 && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) return 'running as root without runuser';
  return null;
}

export interface PrivatePostgres {
  readonly port: number;
  /** A URL for `database` on this server. */
  url(database: string): string;
  /** Fast shutdown: sessions are terminated (57P01), like a restart would. Resolves once it is down. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it (immediately) and removes its folder. Never throws. */
  destroy(): Promise<void>;
}

/** initdb, start, and create `database`. */
export async function startPrivatePostgres(database = 'fleetpulse'): Promise<PrivatePostgres> {
  const bin = binDir();
  if (!bin) throw new Error(`no PostgreSQL server binaries under ${PG_ROOT}`);
  const asRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'fleetpulse-pg-'));
  const data = join(dir, 'data');
  const port = await freePort();
  const pgCommand = async (tool: string, args: string[]) => {
    const file = join(bin, tool);
    await (asRoot ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args));
  };
  const ctl = (args: string[]) => pgCommand('pg_ctl', ['-D', data, ...args]);
  stopNow.set(dir, () => {
    const args = ['-D', data, '-m', 'immediate', 'stop'];
    try {
      if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args], { stdio: 'ignore' });
      else execFileSync(join(bin, 'pg_ctl'), args, { stdio: 'ignore' });
    } catch {
      // not running
    }
  });
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=50',
  ].join(' ');

  const server: PrivatePostgres = {
    port,
    url: (name) => `postgres://postgres@127.0.0.1:${port}/${name}`,
    stop: () => ctl(['-m', 'fast', '-w', '-t', '20', 'stop']),
    start: () => ctl(['-l', join(dir, 'server.log'), '-o', options, '-w', '-t', '20', 'start']),
    async destroy() {
      stopNow.delete(dir);
      await ctl(['-m', 'immediate', '-w', '-t', '10', 'stop']).catch(() => {});
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
  try {
    if (asRoot) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      await chown(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    await pgCommand('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '--no-instructions', '-E', 'UTF8']);
    await server.start();
    const admin = new pg.Client({ connectionString: server.url('postgres') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    return server;
  } catch (error) {
    await server.destroy();
    throw error;
  }
}
