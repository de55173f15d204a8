import type { Generated } from 'kysely';

import type { Status, TransitionSource } from '../status/status.js';

export interface TransitionTable {
  /** Assigned under the feed lock, so ascending ids are commit order. */
  id: Generated<number>;
  device_id: number;
  device_name: string;
  from_status: Status;
  to_status: Status;
  reason: string;
  source: TransitionSource;
  /** When it happened (heartbeat arrival, or the moment a threshold was crossed). */
  at: number;
  /** When it was committed. */
  recorded_at: number;
}

/** One row; transaction that write transitions lock it last, serialising their commits. */
export interface FeedLockTable {
  id: number;
  version: number;
}
