import type { Executor } from '../db/transaction.js';
import type { ServiceLiveness } from '../status/status.js';

/**
 * Records that a server can receive heartbeats now. After a gap longer than
 * `gapMs` a new stretch of availability starts at `now`. Returns the record as written.
 */
export async function beatLiveness(db: Executor, now: number, gapMs: number): Promise<ServiceLiveness> {
  // available_since is assigned before alive_at: MySQL evaluates SET left to right.
  // alive_at only moves forward: a beat that waited (busy pool, pause) must not
  // land after a newer one and open a gap that the next beat would take for an outage.
  await db
    .updateTable('service_state')
    .set((eb) => ({
      available_since: eb.case().when('alive_at', '<', now - gapMs).then(now).else(eb.ref('available_since')).end(),
      alive_at: eb.case().when('alive_at', '<', now).then(now).else(eb.ref('alive_at')).end(),
    }))
    .where('id', '=', 1)
    .execute();
  return readLiveness(db);
}

export async function readLiveness(db: Executor): Promise<ServiceLiveness> {
  const row = await db.selectFrom('service_state').select(['alive_at', 'available_since']).where('id', '=', 1).executeTakeFirstOrThrow();
  return { aliveAt: Number(row.alive_at), availableSince: Number(row.available_since) };
}

/**
 * Takes or renews the named lease for `holder`. Returns true while `holder` has it.
 */
export async function acquireLease(db: Executor, name: string, holder: string, now: number, ttlMs: number): Promise<boolean> {
  const result = await db
    .updateTable('leases')
    .set({ holder, expires_at: now + ttlMs })
    .where('name', '=', name)
    .where((eb) => eb.or([eb('holder', '=', holder), eb('expires_at', '<', now), eb('holder', 'is', null)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function releaseLease(db: Executor, name: string, holder: string): Promise<void> {
  await db.updateTable('leases').set({ holder: null, expires_at: 0 }).where('name', '=', name).where('holder', '=', holder).execute();
}

export async function readLease(db: Executor, name: string): Promise<{ holder: string | null; expires_at: number } | undefined> {
  return db.selectFrom('leases').select(['holder', 'expires_at']).where('name', '=', name).executeTakeFirst();
}
