// Seeds large fleets straight through fleetpulse's own repository (the bulk API
// would take minutes for a million devices). Imports the built code in dist/.
import { randomBytes } from 'node:crypto';
import { generateToken, hashToken } from '../../dist/auth/tokens.js';
import { parseDatabaseUrl } from '../../dist/config.js';
import { openDatabase } from '../../dist/db/database.js';
import { migrateUp } from '../../dist/db/migrate.js';
import { inTransaction } from '../../dist/db/transaction.js';
import { insertDevices } from '../../dist/devices/device.repository.js';

const PER_TRANSACTION = 20_000;
export const THRESHOLDS = { heartbeat_interval_seconds: 15, heartbeat_timeout_seconds: 30, grace_period_seconds: 60 };

/** @typedef {ReturnType<typeof openDatabase>} FleetDatabase */

/** @param {string} url */
export async function openFleetDatabase(url) {
  const database = openDatabase(parseDatabaseUrl(url));
  await migrateUp(database);
  return database;
}

/**
 * Inserts `count` devices, all connected: their last heartbeat is the moment
 * seeding ends (a million take a while), due a timeout later. The first
 * `withTokens` get real tokens, returned in order.
 * @param {FleetDatabase} database
 * @param {number} count
 * @param {{ withTokens?: number }} [options]
 */
export async function seedConnectedFleet(database, count, { withTokens = 0 } = {}) {
  const createdAt = Date.now();
  /** @type {string[]} */
  const tokens = [];
  for (let start = 0; start < count; start += PER_TRANSACTION) {
    const rows = [];
    for (let i = start; i < Math.min(count, start + PER_TRANSACTION); i++) {
      let tokenHash;
      if (i < withTokens) {
        const token = generateToken();
        tokens.push(token);
        tokenHash = hashToken(token);
      } else {
        tokenHash = randomBytes(32).toString('hex');
      }
      rows.push({ name: `bench-${i}`, token_hash: tokenHash, remote_control_enabled: true, ...THRESHOLDS });
    }
    await inTransaction(database, (trx) => insertDevices(trx, database.caps, rows, createdAt));
  }
  const now = Date.now();
  await database.db
    .updateTable('devices')
    .set({ status: 'connected', last_heartbeat_at: now, next_check_at: now + THRESHOLDS.heartbeat_timeout_seconds * 1000 + 1 })
    .execute();
  return tokens;
}
