/**
 * One outage, whatever causes it: a `serve` replica and a standalone monitor
 * under heartbeat load, the database taken away for longer than the devices'
 * grace period, then brought back. The caller says how (a cut proxy, a
 * stopped server); the expectations are those of issue 3:
 *
 * - every request meanwhile is a 503 `unavailable` with Retry-After: never a
 *   500, never a dropped connection, never a crash;
 * - /readyz is 503 while the database is away, /healthz stays 200;
 * - everything recovers by itself within 5 s of the database coming back;
 * - the monitor blames no device for the outage (no system transition at all:
 *   the devices never stopped trying);
 * - a replica told to stop during the outage drains and exits 0 promptly;
 * - the others drain cleanly afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { expect } from 'vitest';

import { startHeartbeatLoad, statusCounts } from '../support/heartbeat-load.js';
import type { HeartbeatRecord } from '../support/heartbeat-load.js';
import { chainProblems, readHistory, summarize } from '../support/history.js';
import { HttpClient } from '../support/http-client.js';
import { httpStatus, startFleetpulse, stopAllProcesses, waitUntil } from '../support/processes.js';

const ADMIN_TOKEN = 'fault-admin-token-0123456789abcdef';
const DEVICES = 40;
const CADENCE_MS = 150;
const TIMEOUT_S = 2;
const GRACE_S = 4;
/** Longer than the grace period and than the liveness gap (3 s): without downtime awareness every device would go offline. */
export const OUTAGE_MS = 6000;
export const RECOVERY_BOUND_MS = 5000;
/** Well under the default drain timeout (8 s), after which `serve` gives up and exits 1. */
const SHUTDOWN_BOUND_MS = 5000;

interface Probe {
  readonly at: number;
  readonly readyz: number;
  readonly healthz: number;
}

export interface OutageOptions {
  /** For the log line. */
  readonly name: string;
  /** What the processes connect to. */
  readonly databaseUrl: string;
  /** Where the test reads the history afterwards (default: databaseUrl). */
  readonly checkUrl?: string;
  /** Makes the database unreachable; resolves once it is. */
  takeAway(): Promise<void>;
  /** Makes it reachable again; resolves once it is. */
  bringBack(): Promise<void>;
}

export async function runOutage(options: OutageOptions): Promise<void> {
  const client = new HttpClient();
  try {
    const env = {
      DATABASE_URL: options.databaseUrl,
      FLEETPULSE_ADMIN_TOKEN: ADMIN_TOKEN,
      FLEETPULSE_MONITOR_INTERVAL_MS: '200',
      FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0',
    };
    const [replica, monitor, leaving] = await Promise.all([
      startFleetpulse('serve', { name: 'replica', env }),
      startFleetpulse('monitor', { name: 'monitor', env }),
      // Told to stop in the middle of the outage: draining must not hang on a database that is gone.
      startFleetpulse('serve', { name: 'leaving', env: { ...env, FLEETPULSE_MONITOR: 'off' } }),
    ]);
    const created = await client.expect<{ devices: { device: { id: number }; token: string }[] }>(201, `${replica.url}/api/devices/bulk`, {
      method: 'POST',
      token: ADMIN_TOKEN,
      body: {
        devices: Array.from({ length: DEVICES }, (_, i) => ({
          name: `outage-${i}`,
          heartbeat_interval_seconds: 1,
          heartbeat_timeout_seconds: TIMEOUT_S,
          grace_period_seconds: GRACE_S,
        })),
      },
    });
    const devices = created.devices.map((d) => ({ id: d.device.id, token: d.token }));
    const probeDevice = devices[0]!.id;

    // Devices keep their cadence through the outage, as firmware retrying would.
    const load = startHeartbeatLoad({
      client,
      devices,
      targets: () => [replica],
      pauseMs: () => CADENCE_MS,
      deadline: Date.now() + 30_000,
      rampMs: 400,
    });
    const probes: Probe[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const [readyz, healthz] = await Promise.all([httpStatus(`${replica.url}/readyz`, 3000), httpStatus(`${replica.url}/healthz`, 3000)]);
        probes.push({ at: Date.now(), readyz, healthz });
        await sleep(200);
      }
    })();

    await sleep(2500);
    expect(statusCounts(load.records)).toEqual({ 200: load.records.length });
    await options.takeAway();
    const cutAt = Date.now();

    await sleep(1000);
    // Admin reads and writes during the outage: 503 as well.
    const adminRead = await client.request(`${replica.url}/api/devices/${probeDevice}`, { token: ADMIN_TOKEN });
    const adminWrite = await client.request(`${replica.url}/api/devices`, { method: 'POST', token: ADMIN_TOKEN, body: { name: 'during-outage' } });
    const stopStarted = Date.now();
    const leavingExit = await leaving.stop(SHUTDOWN_BOUND_MS + 5000);
    const leavingMs = Date.now() - stopStarted;
    await sleep(cutAt + OUTAGE_MS - Date.now());

    for (const p of [replica, monitor]) expect(p.running, `${p.name} died during the outage\n${p.tail()}`).toBe(true);
    const bringingBackAt = Date.now();
    await options.bringBack();
    const restoredAt = Date.now();
    await waitUntil('a heartbeat to be accepted again', () => load.records.some((r) => r.sentAt >= restoredAt && r.status === 200), {
      timeoutMs: RECOVERY_BOUND_MS + 2000,
    });
    const firstAccepted = Math.min(...load.records.filter((r) => r.sentAt >= restoredAt && r.status === 200).map((r) => r.doneAt));
    await waitUntil('/readyz to answer 200 again', () => probes.some((p) => p.at > restoredAt && p.readyz === 200), {
      timeoutMs: RECOVERY_BOUND_MS + 2000,
    });
    const readyAgain = Math.min(...probes.filter((p) => p.at > restoredAt && p.readyz === 200).map((p) => p.at));
    // Healthy again for longer than the grace period: time for the monitor to act if it (wrongly) blamed anyone.
    await sleep(restoredAt + RECOVERY_BOUND_MS + 1500 - Date.now());
    await load.stop();
    probing = false;
    await prober;

    const outage = (r: HeartbeatRecord) => r.sentAt >= cutAt + 100 && r.doneAt < bringingBackAt;
    const during = load.records.filter(outage);
    const afterRecovery = load.records.filter((r) => r.sentAt >= restoredAt + RECOVERY_BOUND_MS);
    console.log(
      JSON.stringify({
        scenario: options.name,
        all: statusCounts(load.records),
        during: statusCounts(during),
        recoveryMs: { heartbeat: firstAccepted - restoredAt, readyz: readyAgain - restoredAt },
        shutdownDuringOutageMs: leavingMs,
      }),
    );

    // Never a 500, never a dropped connection: only 200 or 503.
    expect(load.records.filter((r) => r.status !== 200 && r.status !== 503).slice(0, 5)).toEqual([]);
    // While the database is away every heartbeat is a 503 `unavailable` with Retry-After.
    expect(during.length).toBeGreaterThan(DEVICES * 5);
    for (const r of during) expect({ status: r.status, code: r.code, retryAfter: /^\d+$/.test(r.retryAfter ?? '') }).toEqual({ status: 503, code: 'unavailable', retryAfter: true });
    for (const response of [adminRead, adminWrite]) {
      expect(response.status).toBe(503);
      expect(response.body).toMatchObject({ success: false, error: { code: 'unavailable' } });
      expect(response.headers['retry-after']).toMatch(/^\d+$/);
    }
    // Readiness follows the database; liveness never wavers.
    expect(probes.filter((p) => p.at > cutAt + 2500 && p.at < bringingBackAt).every((p) => p.readyz === 503)).toBe(true);
    expect(probes.every((p) => p.healthz === 200)).toBe(true);
    // Back by itself within the bound, and fully: everything after it is accepted.
    expect(firstAccepted - restoredAt).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
    expect(readyAgain - restoredAt).toBeLessThanOrEqual(RECOVERY_BOUND_MS);
    expect(afterRecovery.length).toBeGreaterThan(0);
    expect(statusCounts(afterRecovery)).toEqual({ 200: afterRecovery.length });

    // A replica stopped during the outage drained and exited cleanly, in bounded time.
    expect(leavingExit, leaving.tail()).toEqual({ code: 0, signal: null });
    expect(leavingMs).toBeLessThan(SHUTDOWN_BOUND_MS);

    // Nobody crashed, and both drain cleanly.
    expect(replica.running && monitor.running).toBe(true);
    for (const p of [replica, monitor]) {
      expect(await p.stop(), `${p.name}\n${p.tail()}`).toEqual({ code: 0, signal: null });
      expect(p.logsWith('Unhandled error'), p.name).toEqual([]);
    }

    // The outage was the service's, not the devices': no system transition at all.
    const history = await readHistory(options.checkUrl ?? options.databaseUrl);
    expect(summarize(chainProblems(history))).toBe('');
    expect(history.transitions.filter((t) => t.source === 'system')).toEqual([]);
    expect(history.devices.every((d) => d.status === 'connected')).toBe(true);
  } finally {
    client.close();
    await stopAllProcesses();
  }
}
