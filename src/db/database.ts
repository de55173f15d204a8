import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import SqliteDatabase from 'better-sqlite3';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect } from 'kysely';
import { createPool as createMysqlPool } from 'mysql2';
import pg from 'pg';

import type { SqliteDialectConfig } from 'kysely';

import type { DatabaseConfig, DatabaseKind } from '../config.js';
import type { Schema } from './schema.js';

/**
 * What differs between dialects, as flags: repositories branch on these,
 * never on the dialect's name.
 */
export interface Capabilities {
  readonly kind: DatabaseKind;
  /** `INSERT … RETURNING` and `UPDATE … RETURNING`. */
  readonly returning: boolean;
  /** `SELECT … FOR UPDATE` row locks; without them a transaction holds the whole database. */
  readonly rowLocks: boolean;
  /** Bulk updates join a `UNION ALL` derived table instead of a `VALUES` CTE. */
  readonly unionAllValues: boolean;
  /** Placeholders in a VALUES list need explicit casts. */
  readonly castValues: boolean;
  /** Most bind parameters one statement may carry. */
  readonly maxParameters: number;
}

export interface Database {
  readonly db: Kysely<Schema>;
  readonly caps: Capabilities;
  /** Closes every connection; safe to call twice. */
  close(): Promise<void>;
}

const CAPABILITIES: Record<DatabaseKind, Capabilities> = {
  sqlite: { kind: 'sqlite', returning: true, rowLocks: false, unionAllValues: false, castValues: false, maxParameters: 30_000 },
  postgres: { kind: 'postgres', returning: true, rowLocks: true, unionAllValues: false, castValues: true, maxParameters: 60_000 },
  mysql: { kind: 'mysql', returning: false, rowLocks: true, unionAllValues: true, castValues: false, maxParameters: 60_000 },
};

export interface OpenOptions {
  readonly poolSize?: number;
  /** Called when an idle pooled connection fails (e.g. the server restarted). */
  readonly onPoolError?: (error: Error) => void;
}

const INT8_OID = 20;

const STATEMENT_CACHE_SIZE = 256;

/**
 * better-sqlite3 behind Kysely's SqliteDatabase interface, with prepared
 * statements cached by SQL text: Kysely prepares on every query, and the hot
 * statements (heartbeat batches, sweeps) repeat.
 */
function withStatementCache(handle: SqliteDatabase.Database): SqliteDialectConfig['database'] {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => handle.close(),
    prepare(text: string) {
      let statement = cache.get(text);
      if (statement === undefined) {
        statement = handle.prepare(text);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(text, statement);
      }
      return statement;
    },
  } as SqliteDialectConfig['database'];
}

function openSqlite(path: string): SqliteDatabase.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const handle = new SqliteDatabase(path);
  handle.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before a 200 goes out. Group commit keeps this affordable.
  handle.pragma('synchronous = FULL');
  handle.pragma('busy_timeout = 5000');
  handle.pragma('foreign_keys = ON');
  return handle;
}

export function openDatabase(config: DatabaseConfig, options: OpenOptions = {}): Database {
  const poolSize = options.poolSize ?? 10;
  const onPoolError = options.onPoolError ?? (() => {});
  let dialect;
  switch (config.kind) {
    case 'sqlite':
      dialect = new SqliteDialect({ database: withStatementCache(openSqlite(config.sqlitePath ?? ':memory:')) });
      break;
    case 'postgres': {
      const pool = new pg.Pool({
        connectionString: config.url,
        max: poolSize,
        connectionTimeoutMillis: 3000,
        idleTimeoutMillis: 30_000,
        types: {
          getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
            oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as never,
        },
      });
      pool.on('error', onPoolError);
      dialect = new PostgresDialect({ pool });
      break;
    }
    case 'mysql': {
      const pool = createMysqlPool({
        uri: config.url,
        connectionLimit: poolSize,
        connectTimeout: 3000,
        charset: 'utf8mb4',
        supportBigNumbers: true,
        bigNumberStrings: false,
        decimalNumbers: true,
        timezone: 'Z',
        enableKeepAlive: true,
      });
      pool.on('connection', (connection) => connection.on('error', onPoolError));
      dialect = new MysqlDialect({ pool });
      break;
    }
  }
  const db = new Kysely<Schema>({ dialect });
  let closed: Promise<void> | null = null;
  return {
    db,
    caps: CAPABILITIES[config.kind],
    close: () => (closed ??= db.destroy()),
  };
}
