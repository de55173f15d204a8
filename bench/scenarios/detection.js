// Scenario "detection": devices heartbeat once and go silent; for each, how long
// after its deadline (last heartbeat + timeout) its connected → temporarily_offline
// transition shows up in GET /api/transitions, at the default monitor interval.
import { setTimeout as sleep } from 'node:timers/promises';
import { URLSearchParams } from 'node:url';
import { distribution, num, table } from '../lib/report.js';
import { registerDevices, withFleetpulse } from '../lib/servers.js';

/** Long enough to heartbeat every device and start polling before the first deadline. */
const TIMEOUT_SECONDS = 5;
/** Long enough that nothing goes on to `offline` while we watch. */
const THRESHOLDS = { heartbeat_interval_seconds: 1, heartbeat_timeout_seconds: TIMEOUT_SECONDS, grace_period_seconds: 20 };
const POLL_MS = 50;
/** Give up on devices not detected this long after the last deadline. */
const GIVE_UP_MS = 15_000;
const GOAL_P99_MS = 1_500;
const PAGE = 1000;

/**
 * Reads the fleet-wide feed incrementally and returns transitions not seen before.
 * Resumes from the last item's `cursor` (fleetpulse puts one on each item);
 * without it, from `next_cursor`, and when that is null at the end of the feed
 * the last page is read again and de-duplicated.
 * @param {import('../lib/servers.js').Fleetpulse} server
 */
function transitionFeed(server) {
  /** @type {string | null} */
  let cursor = null;
  const seen = new Set();
  return async function poll() {
    /** @type {any[]} */
    const fresh = [];
    for (let page = 0; page < 100; page++) {
      const query = new URLSearchParams({ limit: String(PAGE), ...(cursor === null ? {} : { after: cursor }) });
      const { status, json } = await server.request('GET', `/api/transitions?${query}`);
      const items = json?.data?.items;
      if (status !== 200 || !Array.isArray(items)) {
        throw new Error(`GET /api/transitions answered ${status}: ${JSON.stringify(json).slice(0, 300)}`);
      }
      for (const item of items) {
        const key = item.id ?? `${item.device_id}|${item.from_status}|${item.to_status}|${item.at}`;
        if (!seen.has(key)) {
          seen.add(key);
          fresh.push(item);
        }
      }
      const next = items.at(-1)?.cursor ?? json.data.next_cursor;
      if (next !== null && next !== undefined) cursor = next;
      if (items.length < PAGE) break;
    }
    return fresh;
  };
}

/**
 * Runs `fn` over `items` with at most `limit` at a time.
 * @template T
 * @param {T[]} items
 * @param {number} limit
 * @param {(item: T) => Promise<void>} fn
 */
async function forEachLimit(items, limit, fn) {
  const queue = [...items].reverse();
  const worker = async () => {
    for (let item = queue.pop(); item !== undefined; item = queue.pop()) await fn(item);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Each device's deadline from its stored last_heartbeat_at (the server's own
 * clock), via the device list.
 * @param {import('../lib/servers.js').Fleetpulse} server
 * @param {number} expected
 */
async function deadlines(server, expected) {
  /** @type {Map<string, number>} */
  const result = new Map();
  let cursor = null;
  for (let page = 0; page < Math.ceil(expected / PAGE) + 2; page++) {
    const query = new URLSearchParams({ limit: String(PAGE), ...(cursor === null ? {} : { cursor }) });
    const { status, json } = await server.request('GET', `/api/devices?${query}`);
    if (status !== 200 || !Array.isArray(json?.data?.items)) {
      throw new Error(`GET /api/devices answered ${status}: ${JSON.stringify(json).slice(0, 300)}`);
    }
    for (const device of json.data.items) {
      const last = Date.parse(device.last_heartbeat_at);
      if (Number.isFinite(last)) result.set(String(device.id), last + device.heartbeat_timeout_seconds * 1000);
    }
    cursor = json.data.next_cursor;
    if (!cursor) break;
  }
  return result;
}

/** @param {import('../run.js').ScenarioContext} ctx */
export async function detection({ options, db }) {
  const count = options.detectionDevices;
  return withFleetpulse(db, {}, async (server) => {
    const devices = await registerDevices(server, count, THRESHOLDS);
    const poll = transitionFeed(server);
    await forEachLimit(devices, 16, async ({ token }) => {
      const { status, json } = await server.request('POST', '/api/devices/heartbeat', { battery_level: 90 }, token);
      if (status !== 200) throw new Error(`heartbeat answered ${status}: ${JSON.stringify(json).slice(0, 300)}`);
    });
    const due = await deadlines(server, count);
    if (due.size !== count) throw new Error(`GET /api/devices showed a last heartbeat for ${due.size} of ${count} devices`);

    /** @type {Map<string, { observedMs: number, recordedMs: number, to: string }>} */
    const detected = new Map();
    const giveUpAt = Math.max(...due.values()) + GIVE_UP_MS;
    const lateStart = Date.now() > Math.min(...due.values());
    while (detected.size < count && Date.now() < giveUpAt) {
      const items = await poll();
      const observed = Date.now();
      for (const item of items) {
        const id = String(item.device_id);
        const deadline = due.get(id);
        if (deadline === undefined || detected.has(id) || item.from_status !== 'connected') continue;
        // `at` is the logical time (the deadline itself); `recorded_at` is when the sweep wrote it.
        const recorded = Date.parse(item.recorded_at ?? item.at);
        detected.set(id, { observedMs: observed - deadline, recordedMs: recorded - deadline, to: item.to_status });
      }
      await sleep(POLL_MS);
    }
    return report(db, count, detected, lateStart);
  });
}

/**
 * @param {import('../lib/databases.js').DbKind} db
 * @param {number} count
 * @param {Map<string, { observedMs: number, recordedMs: number, to: string }>} detected
 * @param {boolean} lateStart polling began after the first deadline (the first latencies are overstated)
 */
function report(db, count, detected, lateStart) {
  const found = [...detected.values()];
  const observed = distribution(found.map((d) => d.observedMs));
  const recorded = distribution(found.map((d) => d.recordedMs));
  const early = found.filter((d) => d.recordedMs < 0).length;
  const notTemporarily = found.filter((d) => d.to !== 'temporarily_offline').length;
  /** @param {string} name @param {ReturnType<typeof distribution>} d */
  const row = (name, d) => [name, num(d.p50), num(d.p99), num(d.max)];
  const lines = [
    table([
      ['deadline → transition (ms)', 'p50', 'p99', 'max'],
      row(`seen in the feed (poll ${POLL_MS} ms)`, observed),
      row('recorded_at (server clock)', recorded),
    ]),
    '',
    `${found.length} of ${count} devices detected (timeout ${TIMEOUT_SECONDS} s, default monitor interval)` +
      (notTemporarily ? `; ${notTemporarily} went straight to ${found.find((d) => d.to !== 'temporarily_offline')?.to}` : ''),
  ];
  if (lateStart) lines.push(`WARNING: polling began after the first deadline; raise TIMEOUT_SECONDS in ${import.meta.url}`);
  if (early) lines.push(`WARNING: ${early} transitions were recorded before their deadline (silence ≤ timeout?)`);
  return {
    data: { devices: count, thresholds: THRESHOLDS, pollMs: POLL_MS, detected: found.length, observedMs: observed, recordedMs: recorded, early, lateStart, notTemporarilyOffline: notTemporarily },
    lines,
    checks: [
      {
        name: `detection (${db}): every silent device went connected → temporarily_offline`,
        ok: found.length === count && notTemporarily === 0,
        detail: `${found.length}/${count} detected, ${notTemporarily} to another status`,
      },
    ],
    goals: [
      {
        metric: `detection latency p99, ${db}`,
        goal: `≤ ${GOAL_P99_MS / 1000} s`,
        value: observed.p99 === null ? '–' : `${num(observed.p99 / 1000, 2)} s`,
        met: observed.p99 !== null && observed.p99 <= GOAL_P99_MS,
      },
    ],
  };
}
