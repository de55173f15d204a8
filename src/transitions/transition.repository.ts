import type { Selectable } from 'kysely';

import type { Capabilities } from '../db/database.js';
import type { Executor } from '../db/transaction.js';
import type { Status, TransitionSource } from '../status/status.js';
import type { TransitionTable } from './transition.table.js';

export type TransitionRow = Selectable<TransitionTable>;

export interface NewTransition {
  readonly device_id: number;
  readonly device_name: string;
  readonly from_status: Status;
  readonly to_status: Status;
  readonly reason: string;
  readonly source: TransitionSource;
  readonly at: number;
}

/**
 * Appends transitions. Call it last in the transaction: it takes the feed
 * lock, so transactions that record transitions commit one after another and
 * ascending ids are commit order (what the feed's cursor relies on).
 */
export async function insertTransitions(trx: Executor, caps: Capabilities, transitions: readonly NewTransition[], now: number): Promise<void> {
  if (transitions.length === 0) return;
  if (caps.rowLocks) {
    await trx.updateTable('feed_lock').set((eb) => ({ version: eb('version', '+', 1) })).where('id', '=', 1).execute();
  }
  const rows = transitions.map((t) => ({ ...t, recorded_at: now }));
  for (let start = 0; start < rows.length; start += 500) {
    await trx.insertInto('device_transitions').values(rows.slice(start, start + 500)).execute();
  }
}

/** A device's history, newest first, before the cursor id. */
export function listDeviceTransitions(db: Executor, deviceId: number, limit: number, beforeId?: number): Promise<TransitionRow[]> {
  let select = db.selectFrom('device_transitions').selectAll().where('device_id', '=', deviceId).orderBy('id', 'desc').limit(limit);
  if (beforeId !== undefined) select = select.where('id', '<', beforeId);
  return select.execute();
}

/** The fleet-wide feed in commit order, after the cursor id. */
export function listTransitionFeed(db: Executor, limit: number, afterId = 0): Promise<TransitionRow[]> {
  return db.selectFrom('device_transitions').selectAll().where('id', '>', afterId).orderBy('id').limit(limit).execute();
}
