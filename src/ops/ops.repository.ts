import { sql } from 'kysely';

import type { DatabaseKind } from '../config.js';
import type { Executor } from '../db/transaction.js';

/** The tables whose rows make a database "hold data" for `restore`. */
export const DATA_TABLES = ['devices', 'device_transitions', 'api_tokens'] as const;
export type DataTable = (typeof DATA_TABLES)[number];

/** Kysely's bookkeeping: which migrations ran. */
const MIGRATION_TABLE = 'kysely_migration';

export async function ping(db: Executor): Promise<void> {
  await sql`SELECT 1`.execute(db);
}

/** The database server's own clock, in epoch ms. */
export async function databaseClockMs(db: Executor, kind: DatabaseKind): Promise<number> {
  const query =
    kind === 'postgres'
      ? sql<{ now_ms: number | string }>`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms`
      : kind === 'mysql'
        ? sql<{ now_ms: number | string }>`SELECT ROUND(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000) AS now_ms`
        : sql<{ now_ms: number | string }>`SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) AS now_ms`;
  const { rows } = await query.execute(db);
  return Number(rows[0]!.now_ms);
}

/** Every base table in the connection's own schema (SQLite: the main database). */
export async function listTables(db: Executor, kind: DatabaseKind): Promise<string[]> {
  const query =
    kind === 'postgres'
      ? sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
      : kind === 'mysql'
        ? sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name`
        : sql<{ name: string }>`SELECT name FROM sqlite_master
          WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`;
  const { rows } = await query.execute(db);
  return rows.map((r) => r.name);
}

export async function countRows(db: Executor, table: DataTable): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM ${sql.table(table)}`.execute(db);
  return Number(rows[0]!.n);
}

/** Names of the migrations the database says ran (including ones this build may not know). */
export async function appliedMigrationNames(db: Executor): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`SELECT name FROM ${sql.table(MIGRATION_TABLE)} ORDER BY name`.execute(db);
  return rows.map((r) => r.name);
}

/** Drops the named tables (MySQL: with foreign-key checks off on this connection). */
export async function dropTables(db: Executor, kind: DatabaseKind, tables: readonly string[]): Promise<void> {
  if (tables.length === 0) return;
  await db.connection().execute(async (connection) => {
    if (kind === 'mysql') await sql`SET FOREIGN_KEY_CHECKS = 0`.execute(connection);
    try {
      for (const table of tables) {
        await sql`DROP TABLE IF EXISTS ${sql.table(table)}${kind === 'postgres' ? sql` CASCADE` : sql``}`.execute(connection);
      }
    } finally {
      if (kind === 'mysql') await sql`SET FOREIGN_KEY_CHECKS = 1`.execute(connection);
    }
  });
}

/** The same drops as SQL text, for a client (psql) that runs them in the restore's own transaction. */
export function dropTablesScript(tables: readonly string[]): string {
  return tables.map((t) => `DROP TABLE IF EXISTS "${t.replaceAll('"', '""')}" CASCADE;\n`).join('');
}
