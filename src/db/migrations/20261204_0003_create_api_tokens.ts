import type { Kysely } from 'kysely';

import { createTableWithId } from './helpers.js';

export async function up(db: Kysely<any>): Promise<void> {
  await createTableWithId(db, 'api_tokens')
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('token_hash', 'char(64)', (c) => c.notNull())
    .addColumn('label', 'varchar(200)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('api_tokens_token_hash_unique').on('api_tokens').column('token_hash').unique().execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('api_tokens').execute();
}
