import { setTimeout as sleep } from 'node:timers/promises';

import { describe, expect, it } from 'vitest';

import { parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { migrateUp } from '../../src/db/migrate.js';
import { readLease } from '../../src/monitor/service-state.repository.js';
import { databaseChainProblems as chainProblems } from '../support/history.js';
import { createTestDatabase } from '../support/databases.js';
import { startProxy } from './proxy.js';
import { ADMIN_TOKEN, adminRequest, freePort, startServe } from './support.js';
import type { Served } from './support.js';

const DEVICES = 50;
const BEAT_EVERY_MS = 200;
const REPLICAS = 3;

interface FleetStats {
  sent: number;
  ok: number;
  /** Heartbeats that failed even after the device's retries: must stay zero. */
  failed: { status: number | string; at: number }[];
  /** Attempts a device repeated after a connection error or 502/503/504. */
  retries: number;
}

/**
 * What docs/operations.md asks of device firmware: on a connection error or a
 * 502/503/504, retry the same heartbeat after a short, jittered backoff
 * (Retry-After when given); give up on this beat after a few tries.
 */
async function heartbeatWithRetry(baseUrl: string, token: string, stats: FleetStats): Promise<void> {
  stats.sent++;
  let outcome: number | string = 'not sent';
  for (let attempt = 1; attempt <= 5; attempt++) {
    try {
      const response = await fetch(`${baseUrl}/api/devices/heartbeat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ battery_level: 90 }),
        signal: AbortSignal.timeout(3000),
      });
      await response.arrayBuffer();
      outcome = response.status;
      if (response.status === 200) {
        stats.ok++;
        return;
      }
      if (![502, 503, 504].includes(response.status)) break;
    } catch (error) {
      outcome = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    }
    stats.retries++;
    await sleep(100 * attempt + Math.random() * 100);
  }
  stats.failed.push({ status: outcome, at: Date.now() });
}

describe('rolling restart behind a load balancer (PostgreSQL, three replicas)', () => {
  it('loses no heartbeat and breaks no transition chain while every replica is restarted in turn', { timeout: 90_000 }, async () => {
    const test = await createTestDatabase('postgres');
    const database = openDatabase(parseDatabaseUrl(test.url), { poolSize: 2 });
    const replicas: Served[] = [];
    let proxy: Awaited<ReturnType<typeof startProxy>> | null = null;
    let running = true;
    try {
      await migrateUp(database);
      const env = {
        DATABASE_URL: test.url,
        FLEETPULSE_ADMIN_TOKEN: ADMIN_TOKEN,
        FLEETPULSE_HEARTBEAT_INTERVAL_SECONDS: '1',
        FLEETPULSE_HEARTBEAT_TIMEOUT_SECONDS: '3',
        FLEETPULSE_GRACE_PERIOD_SECONDS: '6',
        FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0',
        FLEETPULSE_MONITOR_INTERVAL_MS: '500',
        FLEETPULSE_TRUST_PROXY: 'on',
        LOG_LEVEL: 'warn',
      };
      const ports = await Promise.all(Array.from({ length: REPLICAS }, () => freePort()));
      for (const [i, port] of ports.entries()) replicas.push(await startServe(`replica-${i + 1}`, env, port));
      // Probing only once a second, like a lazy health check: requests still reach a replica after it closed, and are passed on.
      proxy = await startProxy(ports, { probeIntervalMs: 1000 });
      const baseUrl = `http://127.0.0.1:${proxy.port}`;

      const { devices } = (await adminRequest(baseUrl, 'POST', '/api/devices/bulk', {
        devices: Array.from({ length: DEVICES }, (_, i) => ({ name: `kiosk-${String(i).padStart(2, '0')}` })),
      })) as { devices: { token: string }[] };

      const stats: FleetStats = { sent: 0, ok: 0, failed: [], retries: 0 };
      const fleet = devices.map(async ({ token }, i) => {
        await sleep((i * BEAT_EVERY_MS) / DEVICES);
        while (running) {
          const started = Date.now();
          await heartbeatWithRetry(baseUrl, token, stats);
          await sleep(Math.max(0, BEAT_EVERY_MS - (Date.now() - started)));
        }
      });

      await sleep(2000);
      const restarts: { name: string; exitCode: number | null; drainMs: number }[] = [];
      for (let i = 0; i < REPLICAS; i++) {
        const old = replicas[i]!;
        const exit = await old.stop();
        restarts.push({ name: old.name, exitCode: exit.code, drainMs: Math.round(exit.ms) });
        replicas[i] = await startServe(old.name, env, old.port);
        await sleep(1000);
      }
      await sleep(2000);
      running = false;
      await Promise.all(fleet);

      expect(restarts.map((r) => r.exitCode)).toEqual([0, 0, 0]);
      expect(stats.failed).toEqual([]);
      expect(stats.ok).toBe(stats.sent);
      expect(stats.ok).toBeGreaterThan(DEVICES * 20);

      expect(await chainProblems(database.db)).toEqual([]);
      const statuses = await database.db.selectFrom('devices').select('status').execute();
      expect(statuses.every((d) => d.status === 'connected')).toBe(true);
      const lapses = await database.db.selectFrom('device_transitions').select(['device_name', 'to_status']).where('to_status', '!=', 'connected').execute();
      expect(lapses).toEqual([]);
      expect((await readLease(database.db, 'monitor'))?.holder).toBeTruthy();
      console.info(
        `rolling restart: ${stats.ok} heartbeats, ${stats.retries} device retries, ${proxy.retried.count} proxy retries, drains ${restarts.map((r) => `${r.drainMs} ms`).join(', ')}`,
      );
    } finally {
      running = false;
      await proxy?.close();
      await Promise.all(replicas.map((r) => r.stop()));
      await database.close();
      await test.drop();
    }
  });
});
