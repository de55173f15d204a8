// A fresh, throw-away database per server start: a temp SQLite file, or a new
// PostgreSQL / MariaDB database created (and dropped afterwards) with the CLI clients.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const DB_KINDS = /** @type {const} */ (['sqlite', 'postgres', 'mysql']);

/** @typedef {(typeof DB_KINDS)[number]} DbKind */
/** @typedef {{ kind: DbKind, url: string, drop: () => Promise<void> }} BenchDatabase */

/** @param {string} sql */
async function psql(sql) {
  const args = ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-d', 'test', '-v', 'ON_ERROR_STOP=1', '-Atc', sql];
  const { stdout } = await exec('psql', args, { timeout: 30_000 });
  return stdout.trim();
}

/** @param {string} sql */
async function mariadb(sql) {
  const args = ['-h', '127.0.0.1', '-P', '3306', '-u', 'root', '-N', '-B', '-e', sql];
  try {
    return (await exec('mariadb', args, { timeout: 30_000 })).stdout.trim();
  } catch (err) {
    // Older and MySQL installs only ship the `mysql` client.
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'ENOENT') throw err;
    return (await exec('mysql', args, { timeout: 30_000 })).stdout.trim();
  }
}

const uniqueName = () => `fleetpulse_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

/**
 * @param {DbKind} kind
 * @returns {Promise<BenchDatabase>}
 */
export async function createDatabase(kind) {
  if (kind === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'fleetpulse-bench-'));
    return { kind, url: `sqlite:${join(dir, 'bench.sqlite')}`, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const name = uniqueName();
  if (kind === 'postgres') {
    await psql(`CREATE DATABASE ${name}`);
    return {
      kind,
      url: `postgres://postgres@127.0.0.1:5432/${name}`,
      drop: async () => void (await psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
    };
  }
  await mariadb(`CREATE DATABASE ${name}`);
  return {
    kind,
    url: `mysql://root@127.0.0.1:3306/${name}`,
    drop: async () => void (await mariadb(`DROP DATABASE IF EXISTS ${name}`)),
  };
}

/**
 * The server version, for the report ("unknown" if it cannot be asked).
 * @param {DbKind} kind
 */
export async function databaseVersion(kind) {
  try {
    if (kind === 'postgres') return await psql("SELECT 'PostgreSQL ' || current_setting('server_version')");
    if (kind === 'mysql') return await mariadb('SELECT version()');
    // better-sqlite3 is a dependency of fleetpulse itself: the SQLite the server embeds.
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(':memory:');
    try {
      return `SQLite ${db.prepare('SELECT sqlite_version()').pluck().get()} (better-sqlite3)`;
    } finally {
      db.close();
    }
  } catch (err) {
    return `unknown (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
}
