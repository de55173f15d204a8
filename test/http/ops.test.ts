import { describe, expect, it } from 'vitest';

import { migrateDown, migrateUp } from '../../src/db/migrate.js';
import { dataOf, expectError, startApp } from './support.js';

describe('operations endpoints', () => {
  it('answers /healthz with 200', async () => {
    const app = await startApp();
    expect(dataOf(await app.request('GET', '/healthz'))).toBeTruthy();
  });

  it('answers /readyz with 200 when the database answers and every migration is applied', async () => {
    const app = await startApp();
    expect((await app.request('GET', '/readyz')).statusCode).toBe(200);
  });

  it('answers /readyz with 503 while a migration is pending, and 200 once it is applied', async () => {
    const app = await startApp();
    await migrateDown(app.ctx.database, 1);
    expectError(await app.request('GET', '/readyz'), 503, 'unavailable');
    await migrateUp(app.ctx.database);
    app.clock.advance(10_000);
    expect((await app.request('GET', '/readyz')).statusCode).toBe(200);
  });

  it('notices a migration rolled back after it last answered ready', async () => {
    const app = await startApp();
    expect((await app.request('GET', '/readyz')).statusCode).toBe(200);
    await migrateDown(app.ctx.database, 1);
    app.clock.advance(10_000);
    expectError(await app.request('GET', '/readyz'), 503, 'unavailable');
  });

  it('answers /readyz with 503 while draining and /healthz still with 200', async () => {
    const app = await startApp();
    app.ctx.draining = true;
    expectError(await app.request('GET', '/readyz'), 503, 'unavailable');
    expect((await app.request('GET', '/healthz')).statusCode).toBe(200);
  });

  it('exposes the five contract metrics in Prometheus text', async () => {
    const app = await startApp();
    const { token } = await app.addDevice();
    await app.heartbeat(token);
    await app.sweep();
    const response = await app.request('GET', '/metrics');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    for (const name of [
      'fleetpulse_heartbeats_total',
      'fleetpulse_heartbeats_rate_limited_total',
      'fleetpulse_status_transitions_total',
      'fleetpulse_devices',
      'fleetpulse_monitor_sweep_seconds',
    ]) {
      expect(response.body, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(response.body).toMatch(/^fleetpulse_status_transitions_total\{from="never_connected",to="connected"\} 1$/m);
    for (const status of ['never_connected', 'connected', 'temporarily_offline', 'offline']) {
      expect(response.body).toMatch(new RegExp(`^fleetpulse_devices\\{status="${status}"\\} ${status === 'connected' ? 1 : 0}$`, 'm'));
    }
  });
});

describe('a server that is closing', () => {
  it('answers new requests 503 unavailable with Retry-After, in the API error shape', async () => {
    const app = await startApp();
    const closing = app.app.close();
    const response = await app.request('GET', '/healthz');
    await closing;
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('1');
    expect(response.json()).toEqual({ success: false, error: { code: 'unavailable', message: expect.stringMatching(/shutting down/) } });
  });
});
