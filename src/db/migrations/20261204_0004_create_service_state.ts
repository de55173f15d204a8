import type { Kysely } from 'kysely';

import { withMysqlOptions } from './helpers.js';

export async function up(db: Kysely<any>): Promise<void> {
  await withMysqlOptions(
    db,
    db.schema
      .createTable('service_state')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('alive_at', 'bigint', (c) => c.notNull())
      .addColumn('available_since', 'bigint', (c) => c.notNull()),
  ).execute();
  // alive_at = 0: the first server to start opens a fresh stretch of availability.
  await db.insertInto('service_state').values({ id: 1, alive_at: 0, available_since: 0 }).execute();

  await withMysqlOptions(
    db,
    db.schema
      .createTable('leases')
      .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('holder', 'varchar(128)')
      .addColumn('expires_at', 'bigint', (c) => c.notNull()),
  ).execute();
  await db.insertInto('leases').values({ name: 'monitor', holder: null, expires_at: 0 }).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('leases').execute();
  await db.schema.dropTable('service_state').execute();
}
