import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import BetterSqlite from 'better-sqlite3';
import { CompiledQuery, SqliteDialect, SqliteDriver } from 'kysely';
import type { DatabaseConnection, Driver, SqliteDialectConfig } from 'kysely';

/** WAL, and FULL sync: a commit is on disk before a 200 goes out (group commit keeps this affordable). */
const PRAGMAS = ['journal_mode = WAL', 'synchronous = FULL', 'busy_timeout = 5000', 'foreign_keys = ON'];
const STATEMENT_CACHE_SIZE = 256;

/**
 * Transactions take the write lock up front (`BEGIN IMMEDIATE`), so a read
 * inside one can never be stale: what heartbeats and sweeps rely on where
 * other databases have row locks.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  constructor(
    config: SqliteDialectConfig,
    private readonly handle: BetterSqlite.Database,
  ) {
    super(config);
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  /** A transaction whose BEGIN failed (SQLITE_BUSY) never began: nothing to undo, and the BEGIN's error stands. */
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.handle.inTransaction) await super.rollbackTransaction(connection);
  }
}

/**
 * SQLite on better-sqlite3, on the event loop. (A worker thread was tried:
 * the thread hand-offs of each batch's three statements cost more throughput
 * than the commit's fsync blocking the loop; group commit keeps that to one
 * fsync per batch.)
 */
export class FleetpulseSqliteDialect extends SqliteDialect {
  private readonly handle: BetterSqlite.Database;
  private readonly settings: SqliteDialectConfig;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const handle = new BetterSqlite(path);
    for (const pragma of PRAGMAS) handle.pragma(pragma);
    // SQLite's own lower() folds ASCII only; name search must fold all of Unicode, as on PostgreSQL and MySQL.
    handle.function('lower', { deterministic: true }, (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : value));
    const settings: SqliteDialectConfig = { database: withStatementCache(handle) };
    super(settings);
    this.handle = handle;
    this.settings = settings;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.settings, this.handle);
  }
}

/** Kysely prepares every query; the hot statements repeat, so prepared statements are kept by SQL text. */
function withStatementCache(handle: BetterSqlite.Database): SqliteDialectConfig['database'] {
  const cache = new Map<string, BetterSqlite.Statement>();
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
