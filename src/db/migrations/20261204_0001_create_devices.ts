import type { Kysely } from 'kysely';

import { createTableWithId } from './helpers.js';

export async function up(db: Kysely<any>): Promise<void> {
  await createTableWithId(db, 'devices')
    .addColumn('name', 'varchar(200)', (c) => c.notNull())
    .addColumn('token_hash', 'char(64)', (c) => c.notNull())
    .addColumn('status', 'varchar(32)', (c) => c.notNull().defaultTo('never_connected'))
    .addColumn('previous_status', 'varchar(32)')
    .addColumn('last_status_change_at', 'bigint')
    .addColumn('status_change_reason', 'varchar(255)')
    .addColumn('last_heartbeat_at', 'bigint')
    .addColumn('next_check_at', 'bigint')
    .addColumn('heartbeat_interval_seconds', 'integer', (c) => c.notNull())
    .addColumn('heartbeat_timeout_seconds', 'integer', (c) => c.notNull())
    .addColumn('grace_period_seconds', 'integer', (c) => c.notNull())
    .addColumn('remote_control_enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('battery_level', 'integer')
    .addColumn('wifi_strength', 'integer')
    .addColumn('app_version', 'varchar(64)')
    .addColumn('uptime_seconds', 'bigint')
    .addColumn('reconnect_delay_seconds', 'integer')
    .addColumn('reconnect_requested_at', 'bigint')
    .addColumn('reconnect_delivered_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('devices_token_hash_unique').on('devices').column('token_hash').unique().execute();
  await db.schema.createIndex('devices_next_check_at').on('devices').column('next_check_at').execute();
  await db.schema.createIndex('devices_status_id').on('devices').columns(['status', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('devices').execute();
}
