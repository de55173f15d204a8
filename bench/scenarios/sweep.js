// Scenario "sweep": the cost of one monitor sweep with 100,000 and 1,000,000
// registered devices, first with none due, then with 1% due.
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { sweepOnce } from '../../dist/monitor/sweep.js';
import { createDatabase } from '../lib/databases.js';
import { openFleetDatabase, seedConnectedFleet, THRESHOLDS } from '../lib/fleet.js';
import { onCleanup } from '../lib/processes.js';
import { num, table } from '../lib/report.js';

const SIZES = [100_000, 1_000_000];
const SMOKE_SIZES = [2_000, 10_000];
const NONE_DUE_RUNS = 7;
const GOALS = { noneDueMs: 20, onePercentMs: 1000 };

/**
 * Marks the service alive now and available for long before (so silence
 * counts from the last heartbeats, as on a server that has been up all along).
 * @param {import('../lib/fleet.js').FleetDatabase} database
 * @param {number} now
 */
const upAllAlong = (database, now) => database.db.updateTable('service_state').set({ alive_at: now, available_since: 0 }).execute();

/**
 * @param {Parameters<typeof sweepOnce>[0]} deps
 * @param {number} now
 */
async function timedSweep(deps, now) {
  let steps = 0;
  let transitions = 0;
  const started = performance.now();
  for (;;) {
    const result = await sweepOnce(deps, now);
    steps++;
    transitions += result.transitions.length;
    if (!result.more) break;
  }
  return { ms: performance.now() - started, steps, transitions };
}

/**
 * @param {import('../lib/databases.js').DbKind} kind
 * @param {number} size
 */
async function measureSize(kind, size) {
  const bench = await createDatabase(kind);
  const drop = onCleanup(`drop ${kind} database`, bench.drop);
  const database = await openFleetDatabase(bench.url);
  try {
    const seedStarted = Date.now();
    await seedConnectedFleet(database, size);
    const seedSeconds = (Date.now() - seedStarted) / 1000;
    const deps = { database, logger: pino({ level: 'silent' }), recordTransitions: () => {}, livenessGapMs: 3_000 };

    const noneDue = [];
    for (let i = 0; i < NONE_DUE_RUNS; i++) {
      const now = Date.now();
      await upAllAlong(database, now);
      noneDue.push((await timedSweep(deps, now)).ms);
    }
    noneDue.sort((a, b) => a - b);

    // 1% of the fleet went silent a timeout ago.
    const now = Date.now();
    const silentSince = now - THRESHOLDS.heartbeat_timeout_seconds * 1000 - 1_000;
    const due = Math.floor(size / 100);
    await database.db
      .updateTable('devices')
      .set({ last_heartbeat_at: silentSince, next_check_at: now - 1 })
      .where('id', '<=', due * 100)
      .where((eb) => eb(eb('id', '%', 100), '=', 0))
      .execute();
    await upAllAlong(database, now);
    const onePercent = await timedSweep(deps, now);
    return { size, seedSeconds, noneDueMedianMs: noneDue[Math.floor(noneDue.length / 2)], noneDueMaxMs: noneDue.at(-1), due, onePercent };
  } finally {
    await database.close();
    await drop();
  }
}

/** @param {import('../run.js').ScenarioContext} ctx */
export async function sweep({ options, db }) {
  const sizes = options.smoke ? SMOKE_SIZES : SIZES;
  const results = [];
  for (const size of sizes) results.push(await measureSize(db, size));
  const largest = results.at(-1);
  const lines = [
    table([
      ['devices', 'seeded in s', 'none due: median ms', 'max ms', 'due', '1% due: ms', 'steps', 'transitions'],
      ...results.map((r) => [
        num(r.size),
        num(r.seedSeconds, 1),
        num(r.noneDueMedianMs, 2),
        num(r.noneDueMaxMs, 2),
        num(r.due),
        num(r.onePercent.ms, 1),
        num(r.onePercent.steps),
        num(r.onePercent.transitions),
      ]),
    ]),
  ];
  const label = `${num(largest.size)} devices, ${db}`;
  return {
    data: { results },
    lines,
    checks: results.map((r) => ({
      name: `sweep (${db}, ${num(r.size)}): every due device transitioned`,
      ok: r.onePercent.transitions === r.due,
      detail: `${r.onePercent.transitions} of ${r.due}`,
    })),
    goals: [
      { metric: `sweep, ${label}, none due`, goal: `≤ ${GOALS.noneDueMs} ms`, value: `${num(largest.noneDueMedianMs, 2)} ms`, met: largest.noneDueMedianMs <= GOALS.noneDueMs },
      {
        metric: `sweep, ${label}, ${num(largest.due)} due`,
        goal: `≤ ${GOALS.onePercentMs} ms`,
        value: `${num(largest.onePercent.ms, 1)} ms`,
        met: largest.onePercent.ms <= GOALS.onePercentMs,
      },
    ],
  };
}
