/**
 * The race test of issue 3: real replicas and monitors on one database,
 * heartbeats through random replicas with random pauses (now and then the
 * same device on two replicas at once), then the history
 * must be exactly what the status rules say, and every process's count of the
 * transitions it committed must add up to the rows written.
 *
 * Beside the five processes, the test itself runs a sweeper that ignores the
 * monitor lease (plain `sweepOnce` in a loop): correctness must not depend on
 * leader election, so this one competes with the leader all the time.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, describe, expect, it } from 'vitest';

import { parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { sweepOnce } from '../../src/monitor/sweep.js';
import { createLogger } from '../../src/observability/logger.js';
import type { NewTransition } from '../../src/transitions/transition.repository.js';
import { createTestDatabase, DIALECTS } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { chainProblems, expectedHistory, historyProblems, readHistory, summarize, transitionsByDevice } from '../support/history.js';
import { startHeartbeatLoad, statusCounts } from '../support/heartbeat-load.js';
import type { LoadDevice } from '../support/heartbeat-load.js';
import { HttpClient } from '../support/http-client.js';
import { startFleetpulse, stopAllProcesses, sumMetric, waitUntil } from '../support/processes.js';
import type { FleetpulseProcess, LogLine } from '../support/processes.js';

const ADMIN_TOKEN = 'race-admin-token-0123456789abcdef';
const DEVICES = 240;
const LOAD_MS = 20_000;
const TIMEOUT_MS = 1000;
const GRACE_MS = 2000;
const MONITOR_INTERVAL_MS = 200;

/** How long a device waits before its next heartbeat. Most are quick; some cross the timeout, some the grace period. */
function pause(): number {
  const roll = Math.random();
  if (roll < 0.05) return 1200 + Math.random() * 500; // between timeout and grace: temporarily offline, then back
  if (roll < 0.08) return 2200 + Math.random() * 1000; // past grace: offline, then back
  return 200 + Math.random() * 400;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const transitionKey = (deviceId: unknown, from: unknown, to: unknown, at: number) => `${String(deviceId)}|${String(from)}|${String(to)}|${at}`;

const RACE_DIALECTS = DIALECTS.filter((d) => d === 'postgres' || d === 'mysql');

describe.runIf(RACE_DIALECTS.length > 0)('replicas and monitors racing on one database', () => {
  afterAll(() => stopAllProcesses());

  for (const dialect of RACE_DIALECTS) {
    it(
      `records exactly one transition per threshold crossing, in unbroken chains, with every process's count adding up (${dialect})`,
      async () => {
        const testStarted = Date.now();
        const database: TestDatabase = await createTestDatabase(dialect);
        const client = new HttpClient({ maxSockets: 128 });
        const sweeperDb = openDatabase(parseDatabaseUrl(database.url), { poolSize: 2 });
        let sweeping = true;
        let stopRogue = async () => {
          sweeping = false;
        };
        try {
          const env = {
            DATABASE_URL: database.url,
            FLEETPULSE_ADMIN_TOKEN: ADMIN_TOKEN,
            FLEETPULSE_MONITOR_INTERVAL_MS: String(MONITOR_INTERVAL_MS),
            FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0',
          };
          // All five start at once on an empty database: the migration lock must make that safe.
          const processes = await Promise.all([
            ...[1, 2, 3].map((n) => startFleetpulse('serve', { name: `replica-${n}`, env: { ...env, FLEETPULSE_MONITOR: 'on' } })),
            ...[1, 2].map((n) => startFleetpulse('monitor', { name: `monitor-${n}`, env })),
          ]);
          const replicas = processes.filter((p) => p.command === 'serve');
          const monitors = processes.filter((p) => p.command === 'monitor');
          const started = Date.now() - testStarted;
          // Five processes migrated an empty database at once: the migration lock let one of them apply everything.
          expect(replicas.filter((p) => p.logs.some((l) => l.msg === 'Migrations applied')).length).toBeLessThanOrEqual(1);

          const created = await client.expect<{ devices: { device: { id: number }; token: string }[] }>(201, `${replicas[0]!.url}/api/devices/bulk`, {
            method: 'POST',
            token: ADMIN_TOKEN,
            body: {
              devices: Array.from({ length: DEVICES }, (_, i) => ({
                name: `race-${i}`,
                heartbeat_interval_seconds: 1,
                heartbeat_timeout_seconds: TIMEOUT_MS / 1000,
                grace_period_seconds: GRACE_MS / 1000,
              })),
            },
          });
          const devices: LoadDevice[] = created.devices.map((d) => ({ id: d.device.id, token: d.token }));

          // A sweeper that ignores the lease, competing with whichever monitor leads.
          const rogue: NewTransition[] = [];
          const sweepDeps = {
            database: sweeperDb,
            logger: createLogger('silent'),
            recordTransitions: (ts: readonly NewTransition[]) => void rogue.push(...ts),
            livenessGapMs: 3000,
          };
          const rogueErrors: unknown[] = [];
          const rogueLoop = (async () => {
            while (sweeping) {
              try {
                while ((await sweepOnce(sweepDeps, Date.now())).more);
              } catch (error) {
                rogueErrors.push(error);
              }
              await sleep(150 + Math.random() * 100);
            }
          })();
          stopRogue = async () => {
            sweeping = false;
            await rogueLoop;
          };

          const loadStarted = Date.now();
          const load = startHeartbeatLoad({
            client,
            devices,
            targets: () => replicas,
            pauseMs: pause,
            deadline: loadStarted + LOAD_MS,
            rampMs: 500,
            duplicateRate: 0.03, // the same device on two replicas at once
          });
          await load.done;
          const loadMs = Date.now() - loadStarted;
          const accepted = new Map<number, number[]>(devices.map((d) => [d.id, []]));
          for (const r of load.records) if (r.serverTime !== undefined) accepted.get(r.deviceId)!.push(r.serverTime);
          for (const times of accepted.values()) times.sort((a, b) => a - b);

          // Settle: every device goes offline once the last heartbeat is older than the grace period.
          await waitUntil(
            'every device to be offline with nothing left to check',
            async () => {
              const { devices: rows } = await readHistory(database.url);
              return rows.every((d) => d.status === 'offline');
            },
            { timeoutMs: 10_000, intervalMs: 250 },
          );
          await sleep(2 * MONITOR_INTERVAL_MS);
          sweeping = false;
          await rogueLoop;
          stopRogue = async () => {};

          const metrics = await Promise.all(
            replicas.map(async (r) => {
              const response = await client.request(`${r.url}/metrics`);
              expect(response.status, `${r.name} /metrics`).toBe(200);
              return sumMetric(String(response.body), 'fleetpulse_status_transitions_total');
            }),
          );
          await Promise.all(processes.map((p) => p.stop()));
          for (const p of processes) expect(p.exit, `${p.name} exit\n${p.tail()}`).toEqual({ code: 0, signal: null });

          const history = await readHistory(database.url);
          const byDevice = transitionsByDevice(history);
          const logLines = (p: FleetpulseProcess): LogLine[] => p.logsWith('Device status changed');

          const sorted = load.records.map((r) => r.doneAt - r.sentAt).sort((a, b) => a - b);
          const summary = {
            dialect,
            startMs: started,
            loadMs,
            requests: load.records.length,
            statuses: statusCounts(load.records),
            p50Ms: Math.round(percentile(sorted, 50)),
            p99Ms: Math.round(percentile(sorted, 99)),
            maxMs: Math.round(sorted.at(-1) ?? 0),
            transitions: history.transitions.length,
            perReplica: replicas.map((r, i) => `${r.name}=${metrics[i]}`).join(' '),
            perMonitor: monitors.map((m) => `${m.name}=${logLines(m).length}`).join(' '),
            rogueSweeper: rogue.length,
            leaders: processes.filter((p) => p.logs.some((l) => l.msg === 'Monitor leadership acquired')).map((p) => p.name).join(' '),
          };
          console.log(JSON.stringify(summary));

          // No request failed: no 5xx, no refused or reset connection, nothing rate limited.
          expect(statusCounts(load.records)).toEqual({ 200: load.records.length });
          expect(rogueErrors).toEqual([]);
          // Nothing went wrong quietly either: no failed sweep, no exhausted retry, no warning at all.
          const complaints = processes.flatMap((p) => p.logs.filter((l) => l.level !== 'info').map((l) => `${p.name}: ${l.level} ${l.msg}`));
          expect(complaints).toEqual([]);

          // Every device's history is an unbroken chain that agrees with its row.
          expect(summarize(chainProblems(history))).toBe('');

          // Exactly what the rules say, given when each heartbeat arrived: one transition per crossing.
          const problems = devices.flatMap((d) => historyProblems(d.id, expectedHistory(accepted.get(d.id)!, { timeoutMs: TIMEOUT_MS, graceMs: GRACE_MS }), byDevice.get(d.id) ?? []));
          expect(summarize(problems)).toBe('');

          // A pause between timeout and grace shows exactly connected -> temporarily_offline -> connected.
          let shortOutages = 0;
          for (const d of devices) {
            const list = byDevice.get(d.id)!;
            const times = accepted.get(d.id)!;
            for (let i = 1; i < times.length; i++) {
              const [before, after] = [times[i - 1]!, times[i]!];
              if (after - before <= TIMEOUT_MS || after - before > GRACE_MS) continue;
              shortOutages++;
              const during = list.filter((t) => t.at > before && t.at <= after).map((t) => `${t.from_status}->${t.to_status}`);
              expect(during, `device ${d.id}, silent ${after - before} ms`).toEqual(['connected->temporarily_offline', 'temporarily_offline->connected']);
            }
          }
          expect(shortOutages, 'pauses between timeout and grace').toBeGreaterThan(10);
          expect(history.transitions.some((t) => t.from_status === 'temporarily_offline' && t.to_status === 'offline')).toBe(true);

          // Counted once, by the process that committed it: metrics and log lines add up to the rows.
          replicas.forEach((r, i) => expect(metrics[i], `${r.name}: metric vs its own log lines`).toBe(logLines(r).length));
          const counted = metrics.reduce((a, b) => a + b, 0) + monitors.reduce((n, m) => n + logLines(m).length, 0) + rogue.length;
          expect(counted).toBe(history.transitions.length);

          const rows = history.transitions.map((t) => transitionKey(t.device_id, t.from_status, t.to_status, t.at)).sort();
          const logged = [
            ...processes.flatMap((p) => logLines(p).map((l) => transitionKey(l.device_id, l.from_status, l.to_status, Date.parse(String(l.at))))),
            ...rogue.map((t) => transitionKey(t.device_id, t.from_status, t.to_status, t.at)),
          ].sort();
          expect(logged).toEqual(rows);
        } finally {
          await stopRogue();
          client.close();
          await stopAllProcesses();
          await sweeperDb.close();
          await database.drop();
        }
      },
      90_000,
    );
  }
});
