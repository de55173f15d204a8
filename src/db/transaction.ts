import { setTimeout as sleep } from 'node:timers/promises';

import type { Kysely } from 'kysely';

import type { Database } from './database.js';
import { classifyDbError } from './db-errors.js';
import type { Schema } from './schema.js';

export type Executor = Kysely<Schema>;

const MAX_ATTEMPTS = 6;

/**
 * Runs `fn` in one transaction, retried with jittered backoff on deadlocks
 * and serialization failures. SQLite transactions take the write lock up
 * front (`BEGIN IMMEDIATE`, see sqlite.ts) so a read inside one can never be stale.
 */
export async function inTransaction<T>(database: Database, fn: (trx: Executor) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await database.db.transaction().execute(fn);
    } catch (error) {
      if (attempt >= MAX_ATTEMPTS || classifyDbError(error) !== 'retryable') throw error;
      const backoff = Math.min(200, 5 * 2 ** attempt);
      await sleep(backoff / 2 + Math.random() * backoff);
    }
  }
}
