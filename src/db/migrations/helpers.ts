import { MysqlAdapter, PostgresAdapter, sql } from 'kysely';
import type { CreateTableBuilder, Kysely } from 'kysely';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';

export function dialectOf(db: Kysely<any>): Dialect {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof PostgresAdapter) return 'postgres';
  if (adapter instanceof MysqlAdapter) return 'mysql';
  return 'sqlite';
}

/** A table with an auto-incrementing 64-bit `id`, in each dialect's own spelling. */
export function createTableWithId(db: Kysely<any>, name: string): CreateTableBuilder<string, 'id'> {
  const dialect = dialectOf(db);
  const table = db.schema.createTable(name);
  switch (dialect) {
    case 'sqlite':
      return table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
    case 'postgres':
      return table.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity());
    case 'mysql':
      return withMysqlOptions(db, table.addColumn('id', 'bigint', (c) => c.primaryKey().autoIncrement()));
  }
}

/** MySQL tables are utf8mb4 so any Unicode name is stored verbatim. */
export function withMysqlOptions<T extends string, C extends string>(
  db: Kysely<any>,
  table: CreateTableBuilder<T, C>,
): CreateTableBuilder<T, C> {
  return dialectOf(db) === 'mysql'
    ? table.modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`)
    : table;
}
