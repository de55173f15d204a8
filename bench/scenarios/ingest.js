// Scenario "ingest": authenticated heartbeats against fleetpulse and, with the
// same generator and connection count, against a bare node:http server.
import { setTimeout as sleep } from 'node:timers/promises';
import { startLoadgen } from '../lib/loadgen-client.js';
import { num, table } from '../lib/report.js';
import { registerDevices, withBareServer, withFleetpulse } from '../lib/servers.js';

/**
 * A request rate no 2-core machine reaches; it sizes the per-device burst so the
 * rotation can never exceed it, whatever the server manages. The limiter stays on.
 */
const RATE_CEILING = 100_000;
const REFILL_SECONDS = 5;
const RATIO_GOALS = /** @type {const} */ ({ sqlite: 0.5, postgres: 0.4, mysql: null });
const P99_GOAL_MS = 25;

/** @typedef {import('../lib/loadgen-client.js').RunResult} RunResult */

/**
 * Reads a counter until two reads 200 ms apart agree: a request the generator
 * gave up on (timeout, reset) may still be in flight in the server.
 * @param {() => Promise<number>} read
 */
async function settled(read) {
  let previous = await read();
  for (let i = 0; i < 25; i++) {
    await sleep(200);
    const current = await read();
    if (current === previous) return current;
    previous = current;
  }
  return previous;
}

/**
 * Warm-up for `warmup` seconds, then the measured run of `duration` seconds. Runs
 * end with every request answered, so the server's counter must match the 2xx.
 * @param {Awaited<ReturnType<typeof startLoadgen>>} loadgen
 * @param {string} url
 * @param {import('../run.js').Options} options
 * @param {() => Promise<number>} [counter] the server's accepted-heartbeats counter
 */
async function measure(loadgen, url, { connections, warmup, duration, devices }, counter) {
  // Every device's first heartbeat moves it from never_connected (a transition):
  // send those first, so the measured run is the steady state of a running fleet.
  await loadgen.run({ url, connections, duration: 600, amount: devices });
  const warm = await loadgen.run({ url, connections, duration: warmup });
  const before = counter ? await settled(counter) : null;
  const run = await loadgen.run({ url, connections, duration });
  const after = counter ? await settled(counter) : null;
  return { warmup: warm, run, counterDelta: before === null || after === null ? null : after - before };
}

/** @param {RunResult} r */
const clean = (r) => r.non2xx === 0 && r.errors === 0 && r.drained;

/**
 * One heartbeat by hand first: a broken endpoint should fail with its answer,
 * not as a wall of non-2xx.
 * @param {import('../lib/servers.js').Fleetpulse} server
 * @param {string} token
 */
async function checkHeartbeatAnswer(server, token) {
  const body = { battery_level: 85, wifi_strength: -45, app_version: '3.2.1', uptime_seconds: 12345 };
  const { status, json } = await server.request('POST', '/api/devices/heartbeat', body, token);
  const data = json?.data;
  if (status !== 200 || json?.success !== true || data?.status !== 'connected' || typeof data?.server_time !== 'string') {
    throw new Error(`POST /api/devices/heartbeat answered ${status}: ${JSON.stringify(json).slice(0, 300)}`);
  }
}

/** @param {import('../run.js').ScenarioContext} ctx */
export async function ingest({ options, db, shared }) {
  const { devices, warmup, duration } = options;
  const burst = Math.min(1_000_000, Math.ceil((RATE_CEILING * (warmup + duration)) / devices) + 2);
  const limiterEnv = {
    FLEETPULSE_HEARTBEAT_BURST: String(burst),
    FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: String(REFILL_SECONDS),
  };
  const loadgen = await startLoadgen();
  try {
    const fleet = await withFleetpulse(db, limiterEnv, async (server) => {
      const started = Date.now();
      const registered = await registerDevices(server, devices);
      const registerSeconds = (Date.now() - started) / 1000;
      await checkHeartbeatAnswer(server, /** @type {{ token: string }} */ (registered[0]).token);
      await loadgen.setTokens(registered.map((d) => d.token));
      const result = await measure(loadgen, server.url, options, () => server.metric('fleetpulse_heartbeats_total'));
      server.assertRunning();
      const rateLimited = await server.metric('fleetpulse_heartbeats_rate_limited_total').catch(() => null);
      const rss = server.rssBytes();
      return { ...result, registerSeconds, rateLimited, rssMB: rss === null ? null : rss / 2 ** 20 };
    });
    // The baseline is measured once per invocation (after the first database, with its tokens).
    const firstBare = !shared.has('bare');
    if (firstBare) shared.set('bare', await withBareServer((url) => measure(loadgen, url, options)));
    const bare = /** @type {Awaited<ReturnType<typeof measure>>} */ (shared.get('bare'));
    return report(db, options, burst, fleet, bare, firstBare);
  } finally {
    await loadgen.stop();
  }
}

/**
 * @param {import('../lib/databases.js').DbKind} db
 * @param {import('../run.js').Options} options
 * @param {number} burst
 * @param {Awaited<ReturnType<typeof measure>> & { registerSeconds: number, rateLimited: number | null, rssMB: number | null }} fleet
 * @param {Awaited<ReturnType<typeof measure>>} bare
 * @param {boolean} firstBare whether `bare` was measured for this report (not reused)
 */
function report(db, options, burst, fleet, bare, firstBare) {
  const ratio = bare.run.requestsPerSecond > 0 ? fleet.run.requestsPerSecond / bare.run.requestsPerSecond : null;
  const perDevice = Math.ceil((fleet.warmup.sent + fleet.run.sent) / options.devices) + 1;
  const metricOk = fleet.counterDelta === fleet.run.ok2xx;
  /** @param {string} name @param {RunResult} r */
  const row = (name, r) => [
    name,
    num(r.requestsPerSecond),
    num(r.latencyMs.p50),
    num(r.latencyMs.p99),
    num(r.latencyMs.max),
    num(r.ok2xx),
    num(r.non2xx),
    num(r.errors),
    num(r.elapsedSeconds, 1),
  ];
  const ratioGoal = RATIO_GOALS[db];
  const lines = [
    table([
      ['target', 'req/s', 'p50 ms', 'p99 ms', 'max ms', '2xx', 'non-2xx', 'errors', 'seconds'],
      row('bare node:http', bare.run),
      row(`fleetpulse (${db})`, fleet.run),
    ]),
    '',
    `ratio fleetpulse / bare: ${num(ratio, 3)}`,
    `fleetpulse_heartbeats_total delta ${num(fleet.counterDelta)} vs 2xx ${num(fleet.run.ok2xx)}: ${metricOk ? 'OK' : 'MISMATCH'}`,
    `rate limiter: ON, burst ${burst}, 1 token per ${REFILL_SECONDS} s; each device got at most ${perDevice} heartbeats` +
      ` (rate-limited total: ${num(fleet.rateLimited)})`,
    `${num(options.devices)} devices registered in ${num(fleet.registerSeconds, 1)} s; ` +
      `server RSS after the run: ${num(fleet.rssMB, 1)} MB; status codes: ${JSON.stringify(fleet.run.statusCodes)}`,
  ];
  const checks = [
    { name: `ingest (${db}): fleetpulse_heartbeats_total delta equals 2xx`, ok: metricOk, detail: `delta ${fleet.counterDelta}, 2xx ${fleet.run.ok2xx}` },
    {
      name: `ingest (${db}): every heartbeat answered 2xx`,
      ok: clean(fleet.run),
      detail: `non-2xx ${fleet.run.non2xx} ${JSON.stringify(fleet.run.statusCodes)}, errors ${fleet.run.errors}, timeouts ${fleet.run.timeouts}${fleet.run.drained ? '' : ', cut off before every response arrived'}`,
    },
  ];
  if (firstBare) {
    checks.push({ name: 'ingest: bare baseline answered every request', ok: clean(bare.run), detail: `non-2xx ${bare.run.non2xx}, errors ${bare.run.errors}` });
  }
  return {
    data: { devices: options.devices, connections: options.connections, rateLimiter: { burst, refillSeconds: REFILL_SECONDS }, ratio, fleetpulse: fleet, bare },
    lines,
    checks,
    goals: [
      {
        metric: `ingest ratio vs bare node:http, ${db}`,
        goal: ratioGoal === null ? 'report' : `≥ ${ratioGoal}`,
        value: num(ratio, 3),
        met: ratioGoal === null || ratio === null ? null : ratio >= ratioGoal,
      },
      {
        metric: `p99 at ${options.connections} connections, ${db}`,
        goal: `≤ ${P99_GOAL_MS} ms, zero non-2xx`,
        value: `${num(fleet.run.latencyMs.p99)} ms, ${num(fleet.run.non2xx + fleet.run.errors)} non-2xx/errors`,
        met: fleet.run.latencyMs.p99 <= P99_GOAL_MS && clean(fleet.run),
      },
    ],
  };
}
