import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import SqliteDatabase from 'better-sqlite3';

import type { Config, DatabaseKind } from '../config.js';
import { openDatabase } from '../db/database.js';
import type { Database } from '../db/database.js';
import {
  describeExit,
  findTool,
  missingToolMessage,
  mysqlConnection,
  postgresConnection,
  spawnTool,
  TOOLS,
  waitForExit,
} from './dump-tools.js';
import type { Env, ToolSpec } from './dump-tools.js';
import { appliedMigrationNames, countRows, DATA_TABLES, dropTables, dropTablesScript, listTables } from './ops.repository.js';
import type { DataTable } from './ops.repository.js';

export interface Progress {
  /** Bytes (dumps) or pages (SQLite) done so far. */
  readonly done: number;
  /** The total when known. */
  readonly total: number | null;
  readonly unit: 'bytes' | 'pages';
}

export interface OpsOptions {
  /** The environment handed to client programs (PATH finds them). */
  readonly env: Env;
  readonly onProgress?: (progress: Progress) => void;
}

export type Outcome<T> = ({ ok: true } & T) | { ok: false; error: string };

/** What a database holds, as `restore` sees it. */
export interface DatabaseContents {
  readonly tables: readonly string[];
  readonly rows: Readonly<Partial<Record<DataTable, number>>>;
  /** The latest migration recorded in the database, or null. */
  readonly schema: string | null;
}

const SQLITE_MAGIC = 'SQLite format 3\0';
const HEADER_PREFIX = '-- fleetpulse backup ';
const KIND_NAMES: Record<DatabaseKind, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL', mysql: 'MySQL/MariaDB' };

/** `backups/fleetpulse-<kind>-<UTC time>.<sqlite|sql>`, relative to the working directory. */
export function defaultBackupPath(kind: DatabaseKind, now: number): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('backups', `fleetpulse-${kind}-${stamp}.${kind === 'sqlite' ? 'sqlite' : 'sql'}`);
}

/** Which database a backup file is for, from its first bytes; null when it is none of ours. */
export async function detectBackupKind(file: string): Promise<DatabaseKind | null> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const head = buffer.subarray(0, bytesRead).toString('latin1');
    if (head.startsWith(SQLITE_MAGIC)) return 'sqlite';
    const header = /^-- fleetpulse backup (\{.*\})$/m.exec(head);
    if (header) {
      const kind = (JSON.parse(header[1]!) as { database?: string }).database;
      if (kind === 'sqlite' || kind === 'postgres' || kind === 'mysql') return kind;
    }
    if (head.includes('PostgreSQL database dump')) return 'postgres';
    if (/-- (MariaDB|MySQL) dump/.test(head)) return 'mysql';
    return null;
  } finally {
    await handle.close();
  }
}

/** Dump programs end with a marker line; a file without it was cut short and must not replace anything. */
const COMPLETE_MARKERS: Partial<Record<DatabaseKind, RegExp>> = {
  postgres: /-- PostgreSQL database dump complete/,
  mysql: /-- Dump completed/,
};

async function isCompleteDump(file: string, kind: DatabaseKind): Promise<boolean> {
  const marker = COMPLETE_MARKERS[kind];
  if (!marker) return true;
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 4096);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return marker.test(buffer.toString('latin1'));
  } finally {
    await handle.close();
  }
}

export async function inspectDatabase(database: Database): Promise<DatabaseContents> {
  const tables = await listTables(database.db, database.caps.kind);
  const rows: Partial<Record<DataTable, number>> = {};
  for (const table of DATA_TABLES) if (tables.includes(table)) rows[table] = await countRows(database.db, table);
  const schema = tables.includes('kysely_migration') ? ((await appliedMigrationNames(database.db)).at(-1) ?? null) : null;
  return { tables, rows, schema };
}

export function describeContents(contents: DatabaseContents): string {
  const { rows } = contents;
  const parts = [
    rows.devices !== undefined ? `${rows.devices} devices` : null,
    rows.device_transitions !== undefined ? `${rows.device_transitions} transitions` : null,
    rows.api_tokens !== undefined ? `${rows.api_tokens} API tokens` : null,
  ].filter((p) => p !== null);
  return `${contents.tables.length} tables${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

function counter(onProgress: OpsOptions['onProgress'], total: number | null, start = 0): Transform {
  let done = start;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      onProgress?.({ done, total, unit: 'bytes' });
      callback(null, chunk);
    },
  });
}

async function requireTool(spec: ToolSpec, env: Env): Promise<string> {
  const path = await findTool(spec, env);
  if (path === null) throw new OpsFailure(missingToolMessage(spec));
  return path;
}

/** An expected failure inside this module; the exported functions turn it into `{ok: false}`. */
class OpsFailure extends Error {}

async function asOutcome<T>(work: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, ...(await work()) };
  } catch (error) {
    if (error instanceof OpsFailure) return { ok: false, error: error.message };
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, error: message.split('\n')[0]! };
  }
}

/**
 * The SQLite online backup API, a step at a time for the progress display.
 * Writes by a serving process restart a stepped backup; after the first
 * restart it copies the rest in one step, so a busy server cannot starve it.
 */
async function backupSqlite(path: string, out: string, options: OpsOptions): Promise<void> {
  const source = new SqliteDatabase(path, { fileMustExist: true });
  try {
    source.pragma('busy_timeout = 5000');
    let lastRemaining = Infinity;
    let oneStep = false;
    await source.backup(out, {
      progress: ({ totalPages, remainingPages }) => {
        if (remainingPages > lastRemaining) oneStep = true;
        lastRemaining = remainingPages;
        options.onProgress?.({ done: totalPages - remainingPages, total: totalPages, unit: 'pages' });
        return oneStep ? 0x7fffffff : Math.max(256, Math.ceil(totalPages / 50));
      },
    });
    const copy = new SqliteDatabase(out, { fileMustExist: true });
    try {
      // One self-contained file: no -wal/-shm beside it when it is opened later.
      copy.pragma('journal_mode = DELETE');
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new OpsFailure(`the copy failed its integrity check: ${String(check)}`);
    } finally {
      copy.close();
    }
  } finally {
    source.close();
  }
}

function header(kind: DatabaseKind, now: number): string {
  return `${HEADER_PREFIX}${JSON.stringify({ format: 1, database: kind, created_at: new Date(now).toISOString() })}\n`;
}

/** Runs a dump program, its stdout into `out` after our header line. */
async function dumpWith(tool: string, args: string[], extraEnv: Record<string, string>, out: string, prefix: string, options: OpsOptions) {
  const file = createWriteStream(out, { flags: 'wx' });
  file.write(prefix);
  const child = spawnTool(tool, args, options.env, extraEnv);
  child.stdin!.end();
  const exited = waitForExit(child);
  const copied = pipeline(child.stdout!, counter(options.onProgress, null, Buffer.byteLength(prefix)), file).then(
    () => null,
    (error: unknown) => error,
  );
  const [exit, copyError] = await Promise.all([exited, copied]);
  const name = tool.split('/').at(-1)!;
  if (exit.code !== 0) throw new OpsFailure(describeExit(name, exit));
  if (copyError) throw copyError;
}

async function backupPostgres(config: Config, out: string, now: number, options: OpsOptions): Promise<void> {
  const tool = await requireTool(TOOLS.pgDump, options.env);
  const { dbname, env } = postgresConnection(config.database.url);
  await dumpWith(tool, ['--format=plain', '--no-owner', '--no-privileges', `--dbname=${dbname}`], env, out, header('postgres', now), options);
}

async function backupMysql(config: Config, out: string, now: number, options: OpsOptions): Promise<void> {
  const tool = await requireTool(TOOLS.mysqlDump, options.env);
  const connection = await mysqlConnection(config.database.url);
  try {
    // --single-transaction: one consistent InnoDB snapshot while the servers keep writing, no table locks.
    const args = [...connection.args, '--single-transaction', '--quick', '--skip-lock-tables', '--no-tablespaces', '--hex-blob', connection.database];
    await dumpWith(tool, args, {}, out, header('mysql', now), options);
  } finally {
    await connection.cleanup();
  }
}

/**
 * A consistent copy of the whole database, taken while servers keep serving.
 * Written to `<out>.partial` and renamed, so a file at `out` is always complete.
 */
export async function backupDatabase(
  config: Config,
  out: string,
  options: OpsOptions & { now?: number },
): Promise<Outcome<{ file: string; bytes: number; ms: number }>> {
  return asOutcome(async () => {
    const started = performance.now();
    const now = options.now ?? Date.now();
    const { kind, sqlitePath } = config.database;
    if (kind === 'sqlite' && (sqlitePath === undefined || sqlitePath === ':memory:')) {
      throw new OpsFailure('sqlite::memory: has nothing to back up: every process has its own empty database');
    }
    const exists = await stat(out).then(
      () => true,
      () => false,
    );
    if (exists) throw new OpsFailure(`${out} already exists; choose another --out`);
    await mkdir(dirname(resolve(out)), { recursive: true });
    const partial = `${out}.partial`;
    await rm(partial, { force: true });
    try {
      if (kind === 'sqlite') await backupSqlite(sqlitePath!, partial, options);
      else if (kind === 'postgres') await backupPostgres(config, partial, now, options);
      else await backupMysql(config, partial, now, options);
      await rename(partial, out);
    } catch (error) {
      await rm(partial, { force: true });
      if (error instanceof TypeError && /does not exist|unable to open/i.test(error.message)) throw new OpsFailure(error.message);
      if (error instanceof SqliteDatabase.SqliteError || (error as { code?: string }).code === 'SQLITE_CANTOPEN') {
        throw new OpsFailure(`cannot read ${sqlitePath}: ${(error as Error).message}`);
      }
      throw error;
    }
    return { file: out, bytes: (await stat(out)).size, ms: performance.now() - started };
  });
}

/** The backup's pages copied over the live file through SQLite itself, so open connections see it whole. */
async function restoreSqlite(path: string, file: string, options: OpsOptions): Promise<void> {
  const source = new SqliteDatabase(file, { readonly: true, fileMustExist: true });
  try {
    const check = source.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new OpsFailure(`${file} failed its integrity check: ${String(check)}`);
    await mkdir(dirname(resolve(path)), { recursive: true });
    await source.backup(path, {
      progress: ({ totalPages, remainingPages }) => {
        options.onProgress?.({ done: totalPages - remainingPages, total: totalPages, unit: 'pages' });
        return 0x7fffffff;
      },
    });
  } finally {
    source.close();
  }
}

/** Feeds `prefix` then the file into a client program's stdin, with byte progress over the file. */
async function feedTo(tool: string, args: string[], extraEnv: Record<string, string>, file: string, prefix: string, options: OpsOptions) {
  const size = (await stat(file)).size;
  const child = spawnTool(tool, args, options.env, extraEnv);
  child.stdout!.resume();
  const exited = waitForExit(child);
  async function* input() {
    yield Buffer.from(prefix);
    for await (const chunk of createReadStream(file)) yield chunk as Buffer;
  }
  const fed = pipeline(Readable.from(input()), counter(options.onProgress, size + Buffer.byteLength(prefix)), child.stdin!).then(
    () => null,
    (error: unknown) => error,
  );
  const [exit, feedError] = await Promise.all([exited, fed]);
  const name = tool.split('/').at(-1)!;
  if (exit.code !== 0) throw new OpsFailure(describeExit(name, exit));
  if (feedError) throw feedError;
}

/** psql in one transaction: the old tables are dropped and the dump loaded, or nothing changes. */
async function restorePostgres(config: Config, file: string, tables: readonly string[], options: OpsOptions): Promise<void> {
  const tool = await requireTool(TOOLS.psql, options.env);
  const { dbname, env } = postgresConnection(config.database.url);
  const args = ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', '--single-transaction', `--dbname=${dbname}`, '--file=-'];
  await feedTo(tool, args, env, file, dropTablesScript(tables), options);
}

/** MySQL runs DDL outside transactions: the old tables are dropped first, then the dump is loaded. */
async function restoreMysql(config: Config, database: Database, file: string, tables: readonly string[], options: OpsOptions) {
  const tool = await requireTool(TOOLS.mysqlClient, options.env);
  const connection = await mysqlConnection(config.database.url);
  try {
    await dropTables(database.db, 'mysql', tables);
    await feedTo(tool, [...connection.args, '--batch', connection.database], {}, file, '', options);
  } finally {
    await connection.cleanup();
  }
}

/**
 * Replaces the database's contents with a backup. Refuses a database that has
 * tables unless `force`; with `force`, every table in it is replaced.
 */
export async function restoreDatabase(
  config: Config,
  file: string,
  options: OpsOptions & { force: boolean },
): Promise<Outcome<{ before: DatabaseContents; after: DatabaseContents; ms: number }>> {
  return asOutcome(async () => {
    const started = performance.now();
    const { kind, sqlitePath } = config.database;
    const fileExists = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!fileExists) throw new OpsFailure(`${file}: no such backup file`);
    const backupKind = await detectBackupKind(file);
    if (backupKind === null) throw new OpsFailure(`${file} is not a fleetpulse backup (neither a SQLite file nor a PostgreSQL or MySQL dump)`);
    if (backupKind !== kind) {
      throw new OpsFailure(`${file} is a ${KIND_NAMES[backupKind]} backup but DATABASE_URL is ${KIND_NAMES[kind]}; restore it into a ${KIND_NAMES[backupKind]} database`);
    }
    if (!(await isCompleteDump(file, kind))) {
      throw new OpsFailure(`${file} is incomplete (it lacks the dump program's closing line); nothing was changed`);
    }
    if (kind === 'sqlite' && (sqlitePath === undefined || sqlitePath === ':memory:')) {
      throw new OpsFailure('cannot restore into sqlite::memory:; point DATABASE_URL at a file');
    }
    const database = openDatabase(config.database, { poolSize: 1, onPoolError: () => {} });
    try {
      const before = await inspectDatabase(database);
      if (before.tables.length > 0 && !options.force) {
        throw new OpsFailure(`the database is not empty: ${describeContents(before)}; restore replaces all of it: pass --force to go ahead`);
      }
      if (kind === 'sqlite') await restoreSqlite(sqlitePath!, file, options);
      else if (kind === 'postgres') await restorePostgres(config, file, before.tables, options);
      else await restoreMysql(config, database, file, before.tables, options);
      const after = await inspectDatabase(database);
      return { before, after, ms: performance.now() - started };
    } finally {
      await database.close();
    }
  });
}
