/**
 * Deterministic versions of interleavings the race test can only hit by
 * chance: a heartbeat queued behind a sweep for the same row, and a liveness
 * beat from one replica landing after a newer one from another.
 */
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';

import { hashToken } from '../../src/auth/tokens.js';
import { parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import type { Database } from '../../src/db/database.js';
import { migrateUp } from '../../src/db/migrate.js';
import { insertDevices } from '../../src/devices/device.repository.js';
import { createHeartbeatProcessor } from '../../src/heartbeats/heartbeat.service.js';
import { beatLiveness, readLiveness } from '../../src/monitor/service-state.repository.js';
import { sweepOnce } from '../../src/monitor/sweep.js';
import { createLogger } from '../../src/observability/logger.js';
import { fakeClock } from '../support/clock.js';
import { createTestDatabase, DIALECTS } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { chainProblems, readHistory, summarize } from '../support/history.js';
import { waitUntil } from '../support/processes.js';

const GAP_MS = 3000;
/** InnoDB's lock tables are a cache refreshed only when not read for 100 ms: poll slower than that. */
const POLL = { timeoutMs: 5000, intervalMs: 150 };

/** Sessions of this database waiting for a row lock. */
async function lockWaiters(database: Database): Promise<number> {
  if (database.caps.kind === 'postgres') {
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(database.db);
    return rows[0]!.n;
  }
  const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM information_schema.innodb_trx t JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id WHERE t.trx_state = 'LOCK WAIT' AND p.db = database()`.execute(database.db);
  return Number(rows[0]!.n);
}

const ROW_LOCK_DIALECTS = DIALECTS.filter((d) => d === 'postgres' || d === 'mysql');

describe.runIf(ROW_LOCK_DIALECTS.length > 0)('a heartbeat queued behind a sweep for the same device', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  for (const dialect of ROW_LOCK_DIALECTS) {
    it(`is stamped with a time after the sweep it waited for, so a device's history never runs backwards (${dialect})`, async () => {
      const testDb: TestDatabase = await createTestDatabase(dialect);
      cleanup.push(() => testDb.drop());
      const database = openDatabase(parseDatabaseUrl(testDb.url), { poolSize: 4 });
      cleanup.push(() => database.close());
      await migrateUp(database);

      const clock = fakeClock();
      const t1 = clock();
      await beatLiveness(database.db, t1 - 1000, GAP_MS);
      await beatLiveness(database.db, t1 + 1000, GAP_MS);
      const [device] = await insertDevices(
        database.db,
        database.caps,
        [{ name: 'kiosk', token_hash: hashToken('k'), heartbeat_interval_seconds: 1, heartbeat_timeout_seconds: 1, grace_period_seconds: 2, remote_control_enabled: true }],
        t1 - 5000,
      );
      const heartbeat = createHeartbeatProcessor({ database, clock, recordTransitions: () => {}, livenessGapMs: GAP_MS });
      const item = { deviceId: device!.id, tokenHash: hashToken('k'), telemetry: {} };
      await heartbeat([item]); // connected at t1

      await beatLiveness(database.db, t1 + 2050, GAP_MS);
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      cleanup.push(async () => release());
      let locked!: () => void;
      const holding = new Promise<void>((resolve) => (locked = resolve));
      const holder = database.db.transaction().execute(async (trx) => {
        await trx.selectFrom('devices').select('id').where('id', '=', device!.id).forUpdate().execute();
        locked();
        await released;
      });
      await holding;

      // The monitor read its clock at t1 + 2050 and queues first; the heartbeat arrives at t1 + 1900 and queues behind it.
      const sweep = sweepOnce({ database, logger: createLogger('silent'), recordTransitions: () => {}, livenessGapMs: GAP_MS }, t1 + 2050);
      await waitUntil('the sweep to wait for the row', async () => (await lockWaiters(database)) === 1, POLL);
      clock.set(t1 + 1900);
      const late = heartbeat([item]);
      await waitUntil('the heartbeat to wait for the row', async () => (await lockWaiters(database)) === 2, POLL);
      clock.set(t1 + 2100); // by the time the heartbeat holds the row, the sweep has committed
      release();
      await holder;
      const [swept, [reply]] = await Promise.all([sweep, late]);

      expect(swept.transitions.map((t) => `${t.from_status}->${t.to_status}`)).toEqual(['connected->offline']);
      const history = await readHistory(testDb.url);
      expect(summarize(chainProblems(history))).toBe('');
      const times = history.transitions.map((t) => t.at);
      expect(times, 'transition times of one device, in commit order').toEqual([...times].sort((a, b) => a - b));
      expect(history.transitions.at(-1)).toMatchObject({ from_status: 'offline', to_status: 'connected', at: t1 + 2100 });
      expect(reply?.server_time).toBe(new Date(t1 + 2100).toISOString());
    }, 30_000);
  }
});

describe('liveness beats from several replicas', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  for (const dialect of DIALECTS) {
    it(`never move alive_at back, so a late beat cannot fake an outage (${dialect})`, async () => {
      const testDb = await createTestDatabase(dialect);
      cleanup.push(() => testDb.drop());
      const database = openDatabase(parseDatabaseUrl(testDb.url), { poolSize: 2 });
      cleanup.push(() => database.close());
      await migrateUp(database);

      const t = Date.parse('2026-02-02T10:00:00.000Z');
      await beatLiveness(database.db, t, GAP_MS); // the first server starts a stretch of availability
      await beatLiveness(database.db, t + 2000, GAP_MS);
      await beatLiveness(database.db, t + 4000, GAP_MS);
      // A replica read its clock at t + 500, then waited (a busy pool, a pause) before its UPDATE landed.
      await beatLiveness(database.db, t + 500, GAP_MS);
      expect(await readLiveness(database.db)).toEqual({ aliveAt: t + 4000, availableSince: t });
      // The next on-time beat sees no gap: the stretch of availability goes on.
      await beatLiveness(database.db, t + 5000, GAP_MS);
      expect(await readLiveness(database.db)).toEqual({ aliveAt: t + 5000, availableSince: t });
    });
  }
});
