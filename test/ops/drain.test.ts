import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import { describe, expect, it } from 'vitest';

import { parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { readLease } from '../../src/monitor/service-state.repository.js';
import { createTestDatabase, DIALECTS } from '../support/databases.js';
import { ADMIN_TOKEN, adminRequest, startServe } from './support.js';

/** GET on a connection of its own: what a load balancer's fresh health probe sees. */
function probe(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function heartbeat(baseUrl: string, token: string): Promise<number | string> {
  try {
    const response = await fetch(`${baseUrl}/api/devices/heartbeat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    await response.arrayBuffer();
    return response.status;
  } catch (error) {
    return (error as { cause?: { code?: string } }).cause?.code ?? 'fetch failed';
  }
}

describe.each(DIALECTS)('graceful drain on %s', (kind) => {
  it('on SIGTERM: /readyz stops answering 200 at once, in-flight requests finish, the lease is released, exit 0 within 10 s', async () => {
    const test = await createTestDatabase(kind, { file: true });
    const database = openDatabase(parseDatabaseUrl(test.url), { poolSize: 1 });
    try {
      const server = await startServe(`drain-${kind}`, {
        DATABASE_URL: test.url,
        FLEETPULSE_ADMIN_TOKEN: ADMIN_TOKEN,
        FLEETPULSE_MONITOR_INTERVAL_MS: '200',
        FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0',
        LOG_LEVEL: 'info',
      });
      const { devices } = (await adminRequest(server.url, 'POST', '/api/devices/bulk', {
        devices: Array.from({ length: 40 }, (_, i) => ({ name: `kiosk-${i}` })),
      })) as { devices: { token: string }[] };
      const deadline = Date.now() + 5000;
      while ((await readLease(database.db, 'monitor'))?.holder == null && Date.now() < deadline) await sleep(50);
      expect((await readLease(database.db, 'monitor'))?.holder).toBeTruthy();
      expect(await Promise.all(devices.map((d) => heartbeat(server.url, d.token)))).toEqual(devices.map(() => 200));

      // In flight at SIGTERM: a slow bulk registration and a wave of heartbeats.
      const slow = adminRequest(server.url, 'POST', '/api/devices/bulk', {
        devices: Array.from({ length: 2000 }, (_, i) => ({ name: `late-${i}` })),
      }).then(
        (data) => (data as { devices: unknown[] }).devices.length,
        (error: Error) => error.message,
      );
      const wave = devices.map((d) => heartbeat(server.url, d.token));
      await sleep(60);
      const signalledAt = performance.now();
      server.child.kill('SIGTERM');

      const probes: (number | string)[] = [];
      while (performance.now() - signalledAt < 2000) {
        probes.push(await probe(`${server.url}/readyz`));
        if (probes.at(-1) !== 200) break;
      }
      const readyGoneAfter = performance.now() - signalledAt;

      const exit = await server.stop(12_000);
      const exitAfter = performance.now() - signalledAt;
      expect(exit, server.output.slice(-8).join("\n")).toMatchObject({ code: 0, signal: null });
      expect(exitAfter).toBeLessThan(10_000);
      // The listener stays open for a moment (DRAIN_GRACE_MS) so a fresh probe reads 503 rather than a refusal.
      expect(probes.at(-1)).toBe(503);
      // "At once", as far as a server still busy with the slow request can answer at all.
      expect(readyGoneAfter).toBeLessThan(1000);

      expect(await slow).toBe(2000);
      const outcomes = await Promise.all(wave);
      // Even heartbeats still unread in socket buffers when the signal came (the bulk insert kept the server busy) are answered.
      expect(outcomes).toEqual(devices.map(() => 200));

      expect(await readLease(database.db, 'monitor')).toMatchObject({ holder: null });
      expect(server.output.join('\n')).toContain('"msg":"Stopped"');
    } finally {
      await database.close();
      await test.drop();
    }
  });
});
