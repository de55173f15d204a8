/**
 * Processes die with SIGKILL in the middle of the load: first a serving
 * replica (replaced by a new one, as an orchestrator would), then whichever
 * process leads the monitor at that moment. A transaction cut short must
 * leave nothing behind: no partial transition, no broken chain, and the
 * history of every device whose requests all got an answer is exactly what
 * the status rules say. Leadership must move, so every device still ends
 * offline once the load stops.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, describe, expect, it } from 'vitest';

import { createTestDatabase, DIALECTS } from '../support/databases.js';
import { startHeartbeatLoad } from '../support/heartbeat-load.js';
import { chainProblems, expectedHistory, historyProblems, readHistory, summarize, transitionsByDevice } from '../support/history.js';
import { HttpClient } from '../support/http-client.js';
import { startFleetpulse, stopAllProcesses, waitUntil } from '../support/processes.js';
import type { FleetpulseProcess } from '../support/processes.js';

const ADMIN_TOKEN = 'kill-admin-token-0123456789abcdef';
const DEVICES = 120;
const TIMEOUT_MS = 1000;
const GRACE_MS = 2000;
const LOAD_MS = 10_000;

function pause(): number {
  const roll = Math.random();
  if (roll < 0.05) return 1200 + Math.random() * 500;
  if (roll < 0.08) return 2200 + Math.random() * 1000;
  return 150 + Math.random() * 300;
}

/** Processes whose latest leadership log line says they lead the monitor. */
function leaders(processes: readonly FleetpulseProcess[]): FleetpulseProcess[] {
  return processes.filter((p) => {
    if (!p.running) return false;
    const last = p.logs.filter((l) => l.msg === 'Monitor leadership acquired' || l.msg === 'Monitor leadership lost').at(-1);
    return last?.msg === 'Monitor leadership acquired';
  });
}

const ROW_LOCK_DIALECTS = DIALECTS.filter((d) => d === 'postgres' || d === 'mysql');

describe.runIf(ROW_LOCK_DIALECTS.length > 0)('a process killed with SIGKILL mid-load', () => {
  afterAll(() => stopAllProcesses());

  for (const dialect of ROW_LOCK_DIALECTS) {
    it(`leaves no partial transition and no broken chain, and leadership moves (${dialect})`, async () => {
      const database = await createTestDatabase(dialect);
      const client = new HttpClient();
      try {
        const env = {
          DATABASE_URL: database.url,
          FLEETPULSE_ADMIN_TOKEN: ADMIN_TOKEN,
          FLEETPULSE_MONITOR_INTERVAL_MS: '200',
          FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0',
        };
        const all: FleetpulseProcess[] = await Promise.all([
          startFleetpulse('serve', { name: 'replica-1', env }),
          startFleetpulse('serve', { name: 'replica-2', env }),
          startFleetpulse('monitor', { name: 'monitor', env }),
        ]);
        const serving = () => all.filter((p) => p.command === 'serve' && p.running);
        const created = await client.expect<{ devices: { device: { id: number }; token: string }[] }>(201, `${all[0]!.url}/api/devices/bulk`, {
          method: 'POST',
          token: ADMIN_TOKEN,
          body: {
            devices: Array.from({ length: DEVICES }, (_, i) => ({
              name: `kill-${i}`,
              heartbeat_interval_seconds: 1,
              heartbeat_timeout_seconds: TIMEOUT_MS / 1000,
              grace_period_seconds: GRACE_MS / 1000,
            })),
          },
        });
        const devices = created.devices.map((d) => ({ id: d.device.id, token: d.token }));
        const loadStarted = Date.now();
        const load = startHeartbeatLoad({ client, devices, targets: serving, pauseMs: pause, deadline: loadStarted + LOAD_MS, rampMs: 300 });

        // 1. A serving replica under load (the leading one if a replica leads), then a replacement.
        await sleep(3000);
        const firstVictim = leaders(serving())[0] ?? serving()[0]!;
        expect((await firstVictim.kill()).signal).toBe('SIGKILL');
        all.push(await startFleetpulse('serve', { name: 'replica-3', env }));

        // 2. Whoever leads the monitor now, mid-sweep.
        await sleep(3000);
        await waitUntil('a monitor leader', () => leaders(all).length > 0, { timeoutMs: 5000 });
        const secondVictim = leaders(all)[0]!;
        const secondKillAt = Date.now();
        expect((await secondVictim.kill()).signal).toBe('SIGKILL');
        const killed = new Set([firstVictim.name, secondVictim.name]);

        await load.done;
        // A new leader takes over once the lease lapses (3 s) and marks every silent device offline.
        await waitUntil(
          'every device to be offline',
          async () => (await readHistory(database.url)).devices.every((d) => d.status === 'offline'),
          { timeoutMs: 15_000, intervalMs: 250 },
        );
        const newLeader = all.find((p) => p.running && p.logs.some((l) => l.msg === 'Monitor leadership acquired' && Date.parse(String(l.time)) > secondKillAt));
        expect(newLeader, 'a survivor took the monitor lease after the leader died').toBeDefined();

        const survivors = all.filter((p) => !killed.has(p.name));
        for (const p of survivors) expect(await p.stop(), `${p.name}\n${p.tail()}`).toEqual({ code: 0, signal: null });

        const failed = load.records.filter((r) => r.status !== 200);
        console.log(
          JSON.stringify({
            dialect,
            requests: load.records.length,
            failed: failed.map((r) => `${r.target}:${r.status === 0 ? r.code : r.status}`).reduce<Record<string, number>>((n, k) => ({ ...n, [k]: (n[k] ?? 0) + 1 }), {}),
            killed: [...killed],
            newLeader: newLeader?.name,
          }),
        );
        // Only requests in flight to a dying process may fail, and only by losing the connection: never a 5xx.
        expect(failed.filter((r) => r.status !== 0 || !killed.has(r.target))).toEqual([]);

        const history = await readHistory(database.url);
        expect(summarize(chainProblems(history))).toBe('');
        // A device whose every request was answered has exactly the history the rules give.
        const uncertain = new Set(failed.map((r) => r.deviceId));
        const byDevice = transitionsByDevice(history);
        const problems = devices
          .filter((d) => !uncertain.has(d.id))
          .flatMap((d) => {
            const accepted = load.records.filter((r) => r.deviceId === d.id && r.serverTime !== undefined).map((r) => r.serverTime!);
            return historyProblems(d.id, expectedHistory(accepted, { timeoutMs: TIMEOUT_MS, graceMs: GRACE_MS }), byDevice.get(d.id) ?? []);
          });
        expect(summarize(problems)).toBe('');
      } finally {
        client.close();
        await stopAllProcesses();
        await database.drop();
      }
    }, 60_000);
  }
});
