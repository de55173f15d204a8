import { Kysely, MysqlDialect, PostgresDialect } from 'kysely';

import type { DatabaseConfig, DatabaseKind } from '../config.js';
import type { Schema } from './schema.js';
import { FleetpulseSqliteDialect } from './sqlite.js';

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

/** A value as the driver binds it: PostgreSQL takes booleans; SQLite and MySQL store them as 0/1. */
export function bindable(caps: Capabilities, value: unknown): unknown {
  return typeof value === 'boolean' && caps.kind !== 'postgres' ? Number(value) : value;
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
  /** Called when a pooled connection fails, idle or in use (e.g. the server restarted). */
  readonly onPoolError?: (error: Error) => void;
}

const INT8_OID = 20;

export function openDatabase(config: DatabaseConfig, options: OpenOptions = {}): Database {
  const poolSize = options.poolSize ?? 10;
  const onPoolError = options.onPoolError ?? (() => {});
  let dialect;
  switch (config.kind) {
    case 'sqlite':
      dialect = new FleetpulseSqliteDialect(config.sqlitePath ?? ':memory:');
      break;
    case 'postgres': {
      // Drivers load only for the database in use (each costs several MB of memory).
      const createPool = async () => {
        const { default: pg } = await import('pg');
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
        // A connection that fails emits 'error' on its client. pg-pool listens only while the
        // client is idle; one that fails while checked out (mid-transaction, when the server
        // restarts or the network drops) would throw an uncaught exception and kill the process.
        // So every client gets a listener of its own for its whole life; the failed query
        // rejects as usual and pg-pool discards the client when it is released.
        pool.on('connect', (client) => client.on('error', onPoolError));
        pool.on('error', () => {}); // already reported by the client's own listener
        return pool;
      };
      dialect = new PostgresDialect({ pool: createPool });
      break;
    }
    case 'mysql': {
      const createPool = async () => {
        const { createPool: createMysqlPool } = await import('mysql2');
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
        return pool;
      };
      dialect = new MysqlDialect({ pool: createPool });
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
