import type { Executor } from '../db/transaction.js';
import type { StaffRole } from './api-token.table.js';

export async function insertApiToken(db: Executor, token: { role: StaffRole; token_hash: string; label: string | null }, now: number): Promise<void> {
  await db.insertInto('api_tokens').values({ ...token, created_at: now, revoked_at: null }).execute();
}

/** The role of a live (not revoked) token, or undefined. */
export async function findApiTokenRole(db: Executor, tokenHash: string): Promise<StaffRole | undefined> {
  const row = await db
    .selectFrom('api_tokens')
    .select('role')
    .where('token_hash', '=', tokenHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row?.role;
}
