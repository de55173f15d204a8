/**
 * A MariaDB server of a test's own: a fresh data folder, a spare port, no
 * grant tables, started and stopped by the test (the machine's shared server
 * is never touched). `stop()` is a normal shutdown (SIGTERM): the server
 * closes every client connection, as in a real restart.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

import { createConnection } from 'mysql2/promise';

import { freePort } from './processes.js';

const run = promisify(execFile);
const running = new Set<ChildProcess>();
// Last resort: a test worker that dies takes its servers along.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
const SERVER = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((path) => existsSync(path));
const INSTALL = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db'].find((path) => existsSync(path));

/** Why a private server cannot be started here, or null when it can. */
export function privateMariadbUnavailable(): string | null {
  if (!SERVER || !INSTALL) return 'mariadbd or mariadb-install-db is not installed';
  return null;
}

export interface PrivateMariadb {
  readonly port: number;
  url(database: string): string;
  /** Normal shutdown; resolves once the server has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data; resolves once it answers. */
  start(): Promise<void>;
  /** Kills it and removes its folder. Never throws. */
  destroy(): Promise<void>;
}

export async function startPrivateMariadb(database = 'fleetpulse'): Promise<PrivateMariadb> {
  if (!SERVER || !INSTALL) throw new Error('mariadbd or mariadb-install-db is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'fleetpulse-mariadb-'));
  const data = join(dir, 'data');
  const port = await freePort();
  const user = process.getuid?.() === 0 ? ['--user=root'] : [];
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const answers = async () => {
    const connection = await createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 1000 });
    await connection.end();
  };
  const server: PrivateMariadb = {
    port,
    url: (name) => `mysql://root@127.0.0.1:${port}/${name}`,
    async start() {
      const proc = spawn(
        SERVER,
        [
          '--no-defaults',
          `--datadir=${data}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
          `--socket=${join(dir, 'mysqld.sock')}`,
          `--pid-file=${join(dir, 'mysqld.pid')}`,
          '--skip-grant-tables',
          '--skip-log-bin',
          '--innodb-flush-log-at-trx-commit=0',
          '--innodb-buffer-pool-size=64M',
          ...user,
        ],
        { stdio: 'ignore' },
      );
      child = proc;
      running.add(proc);
      exited = new Promise((resolve) =>
        proc.once('exit', () => {
          running.delete(proc);
          resolve();
        }),
      );
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`mariadbd exited at start (${proc.exitCode ?? proc.signalCode})`);
        try {
          await answers();
          return;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await sleep(100);
        }
      }
    },
    async stop() {
      child?.kill('SIGTERM');
      await exited;
    },
    async destroy() {
      child?.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
  try {
    await run(INSTALL, ['--no-defaults', `--datadir=${data}`, ...user, '--auth-root-authentication-method=normal', '--skip-test-db']);
    await server.start();
    const admin = await createConnection({ host: '127.0.0.1', port, user: 'root' });
    await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    await admin.end();
    return server;
  } catch (error) {
    await server.destroy();
    throw error;
  }
}
