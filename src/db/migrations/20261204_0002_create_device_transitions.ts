import type { Kysely } from 'kysely';

import { createTableWithId, withMysqlOptions } from './helpers.js';

export async function up(db: Kysely<any>): Promise<void> {
  await createTableWithId(db, 'device_transitions')
    .addColumn('device_id', 'bigint', (c) => c.notNull())
    .addColumn('device_name', 'varchar(200)', (c) => c.notNull())
    .addColumn('from_status', 'varchar(32)', (c) => c.notNull())
    .addColumn('to_status', 'varchar(32)', (c) => c.notNull())
    .addColumn('reason', 'varchar(255)', (c) => c.notNull())
    .addColumn('source', 'varchar(16)', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('recorded_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('device_transitions_device_id_id')
    .on('device_transitions')
    .columns(['device_id', 'id'])
    .execute();

  await withMysqlOptions(
    db,
    db.schema
      .createTable('feed_lock')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('version', 'bigint', (c) => c.notNull()),
  ).execute();
  await db.insertInto('feed_lock').values({ id: 1, version: 0 }).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('feed_lock').execute();
  await db.schema.dropTable('device_transitions').execute();
}
