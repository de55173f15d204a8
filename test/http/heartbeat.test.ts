import { describe, expect, it } from 'vitest';

import { dataOf, expectError, getDevice, historyOf, metric, seconds, startApp, transitionLogs } from './support.js';
import type { TestApp } from './support.js';

const T0 = '2026-02-02T10:00:00.000Z';

describe('the heartbeat response', () => {
  it('has exactly the contract fields, with the server clock', async () => {
    const app = await startApp();
    const { token } = await app.addDevice({ heartbeat_interval_seconds: 12 });
    const data = dataOf<Record<string, unknown>>(await app.heartbeat(token));
    expect(data).toStrictEqual({
      status: 'connected',
      remote_control_enabled: true,
      should_reconnect: false,
      reconnect_delay_seconds: null,
      heartbeat_interval_seconds: 12,
      server_time: T0,
    });
  });

  it('uses only the server clock, whatever times the device sends', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    app.clock.advance(1234);
    const sent = { server_time: '1999-01-01T00:00:00.000Z', timestamp: 1, last_heartbeat_at: '2030-01-01T00:00:00.000Z', at: 5 };
    expect(dataOf(await app.heartbeat(token, sent))).toMatchObject({ server_time: '2026-02-02T10:00:01.234Z' });
    expect(await getDevice(app, id)).toMatchObject({ last_heartbeat_at: '2026-02-02T10:00:01.234Z', last_status_change_at: '2026-02-02T10:00:01.234Z' });
  });

  it('tells the device its current interval and remote-control setting', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice({ remote_control_enabled: false });
    expect(dataOf(await app.heartbeat(token))).toMatchObject({ remote_control_enabled: false, heartbeat_interval_seconds: 15 });
    await app.admin('PATCH', `/api/devices/${id}`, { remote_control_enabled: true, heartbeat_interval_seconds: 25 });
    expect(dataOf(await app.heartbeat(token))).toMatchObject({ remote_control_enabled: true, heartbeat_interval_seconds: 25 });
  });

  it('is refused to anyone but a device (403 for an admin)', async () => {
    const app = await startApp();
    expectError(await app.admin('POST', '/api/devices/heartbeat', {}), 403, 'forbidden');
  });
});

describe('telemetry', () => {
  it('is stored on the device; fields left out keep their last value', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token, { battery_level: 87, wifi_strength: -55, app_version: '2.4.1', uptime_seconds: 3600 });
    expect(await getDevice(app, id)).toMatchObject({ battery_level: 87, wifi_strength: -55, app_version: '2.4.1', uptime_seconds: 3600 });

    await app.heartbeat(token, { battery_level: 86 });
    expect(await getDevice(app, id)).toMatchObject({ battery_level: 86, wifi_strength: -55, app_version: '2.4.1', uptime_seconds: 3600 });

    await app.heartbeat(token, {});
    expect(await getDevice(app, id)).toMatchObject({ battery_level: 86, wifi_strength: -55 });
  });

  it('of one device never lands on another', async () => {
    const app = await startApp();
    const a = await app.addDevice();
    const b = await app.addDevice();
    await Promise.all([app.heartbeat(a.token, { battery_level: 10 }), app.heartbeat(b.token, { battery_level: 90 })]);
    expect((await getDevice(app, a.id)).battery_level).toBe(10);
    expect((await getDevice(app, b.id)).battery_level).toBe(90);
  });
});

describe('status changes from heartbeats', () => {
  it('moves a never-connected device to connected, recording who and why', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice({ name: 'first light' });
    await app.heartbeat(token);
    expect(await getDevice(app, id)).toMatchObject({
      status: 'connected',
      previous_status: 'never_connected',
      last_status_change_at: T0,
      last_heartbeat_at: T0,
      status_change_reason: expect.any(String),
    });
    const [t, ...rest] = await historyOf(app, id);
    expect(rest).toEqual([]);
    expect(t).toMatchObject({ from_status: 'never_connected', to_status: 'connected', source: 'device', at: T0, reason: expect.stringMatching(/heartbeat/i) });
  });

  it('records nothing more while the device keeps reporting on time', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    for (let i = 0; i < 5; i++) {
      expect((await app.heartbeat(token)).statusCode).toBe(200);
      await app.advance(seconds(15));
      await app.sweep();
    }
    expect(await historyOf(app, id)).toHaveLength(1);
    expect(transitionLogs(app)).toHaveLength(1);
  });

  it('after a timeout nobody swept, records connected → temporarily_offline → connected', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(45));
    const response = await app.heartbeat(token);
    expect(dataOf(response)).toMatchObject({ status: 'connected' });

    const history = await historyOf(app, id);
    expect(history.map((t) => [t.from_status, t.to_status, t.source])).toEqual([
      ['never_connected', 'connected', 'device'],
      ['connected', 'temporarily_offline', 'system'],
      ['temporarily_offline', 'connected', 'device'],
    ]);
    expect(history[1]).toMatchObject({ at: '2026-02-02T10:00:30.000Z', reason: 'No heartbeat for 45s (grace period: 60s)' });
    expect(history[2]).toMatchObject({ at: '2026-02-02T10:00:45.000Z', reason: 'Heartbeat received after 45s of silence' });
    expect(await getDevice(app, id)).toMatchObject({ status: 'connected', previous_status: 'temporarily_offline', status_change_reason: history[2]!.reason });
  });

  it('after the grace period nobody swept, records connected → offline → connected', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(95));
    await app.heartbeat(token);
    const history = await historyOf(app, id);
    expect(history.slice(1).map((t) => `${t.from_status}>${t.to_status}:${t.reason}`)).toEqual([
      'connected>offline:No heartbeat for 95s; grace period of 60s exceeded',
      'offline>connected:Heartbeat received after 95s of silence',
    ]);
    expect(history[1]!.at).toBe('2026-02-02T10:01:00.000Z');
  });

  it('brings back a device the monitor marked temporarily offline, and one it marked offline', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(40));
    await app.sweep();
    expect((await getDevice(app, id)).status).toBe('temporarily_offline');
    await app.heartbeat(token);
    await app.advance(seconds(100));
    await app.sweep();
    expect((await getDevice(app, id)).status).toBe('offline');
    await app.heartbeat(token);
    expect((await historyOf(app, id)).map((t) => `${t.from_status}>${t.to_status}`)).toEqual([
      'never_connected>connected',
      'connected>temporarily_offline',
      'temporarily_offline>connected',
      'connected>offline',
      'offline>connected',
    ]);
  });

  it('records one transition when a never-connected device sends several heartbeats at once', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    const responses = await Promise.all(Array.from({ length: 5 }, () => app.heartbeat(token)));
    expect(responses.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200]);
    expect(await historyOf(app, id)).toHaveLength(1);
    expect(transitionLogs(app)).toHaveLength(1);
  });

  it('logs exactly one "Device status changed" line per transition, with the contract fields', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice({ name: 'Lobby 😀' });
    await app.heartbeat(token);
    await app.advance(seconds(45));
    await app.heartbeat(token);
    await app.advance(seconds(35));
    await app.sweep();

    const history = await historyOf(app, id);
    const logs = transitionLogs(app);
    expect(history).toHaveLength(4);
    expect(logs).toHaveLength(history.length);
    logs.forEach((line, i) => {
      const t = history[i]!;
      expect(line).toMatchObject({
        msg: 'Device status changed',
        device_id: id,
        device_name: 'Lobby 😀',
        from_status: t.from_status,
        to_status: t.to_status,
        reason: t.reason,
        source: t.source,
      });
    });
  });
});

describe('the per-device rate limit', () => {
  it('answers 429 with Retry-After in whole seconds once the burst is spent, and the refused heartbeat changes nothing', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    for (let i = 0; i < 5; i++) expect((await app.heartbeat(token, { battery_level: 50 + i })).statusCode).toBe(200);
    const before = await getDevice(app, id);
    app.clock.advance(500);

    const refused = await app.heartbeat(token, { battery_level: 1, app_version: 'refused' });
    expectError(refused, 429, 'rate_limited');
    expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(await getDevice(app, id)).toEqual(before);
    expect(await metric(app, 'fleetpulse_heartbeats_total')).toBe(5);
    expect(await metric(app, 'fleetpulse_heartbeats_rate_limited_total')).toBe(1);

    app.clock.advance(Number(refused.headers['retry-after']) * 1000);
    expect((await app.heartbeat(token, { battery_level: 2 })).statusCode).toBe(200);
    expect((await getDevice(app, id)).battery_level).toBe(2);
  });

  it('does not let a refused heartbeat rescue an overdue device', async () => {
    const app = await startApp({ env: { FLEETPULSE_HEARTBEAT_BURST: '1', FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '60' } });
    const { id, token } = await app.addDevice({ heartbeat_interval_seconds: 5, heartbeat_timeout_seconds: 10, grace_period_seconds: 20 });
    await app.heartbeat(token);
    await app.advance(seconds(15));
    expectError(await app.heartbeat(token), 429, 'rate_limited');
    expect(await getDevice(app, id)).toMatchObject({ status: 'connected', last_heartbeat_at: T0 });
    expect(await historyOf(app, id)).toHaveLength(1);
    expect(transitionLogs(app)).toHaveLength(1);
    await app.sweep();
    expect((await getDevice(app, id)).status).toBe('temporarily_offline');
  });

  it('follows FLEETPULSE_HEARTBEAT_BURST and FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS', async () => {
    const app = await startApp({ env: { FLEETPULSE_HEARTBEAT_BURST: '3', FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '10' } });
    const { token } = await app.addDevice();
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await app.heartbeat(token)).statusCode);
    expect(codes).toEqual([200, 200, 200, 429]);
    const refused = await app.heartbeat(token);
    expect(refused.headers['retry-after']).toBe('10');
    app.clock.advance(9_999);
    expect((await app.heartbeat(token)).statusCode).toBe(429);
    app.clock.advance(1);
    expect((await app.heartbeat(token)).statusCode).toBe(200);
    expect((await app.heartbeat(token)).statusCode).toBe(429);
  });

  it('rounds a fractional wait up to a whole second', async () => {
    const app = await startApp({ env: { FLEETPULSE_HEARTBEAT_BURST: '1', FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0.25' } });
    const { token } = await app.addDevice();
    await app.heartbeat(token);
    const refused = await app.heartbeat(token);
    expectError(refused, 429, 'rate_limited');
    expect(refused.headers['retry-after']).toBe('1');
  });

  it('limits each device on its own', async () => {
    const app = await startApp({ env: { FLEETPULSE_HEARTBEAT_BURST: '1' } });
    const a = await app.addDevice();
    const b = await app.addDevice();
    expect((await app.heartbeat(a.token)).statusCode).toBe(200);
    expect((await app.heartbeat(a.token)).statusCode).toBe(429);
    expect((await app.heartbeat(b.token)).statusCode).toBe(200);
  });

  it('is off with FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS=0', async () => {
    const app = await startApp({ env: { FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0' } });
    const { token } = await app.addDevice();
    for (let i = 0; i < 50; i++) expect((await app.heartbeat(token)).statusCode).toBe(200);
    expect(await metric(app, 'fleetpulse_heartbeats_total')).toBe(50);
    expect(await metric(app, 'fleetpulse_heartbeats_rate_limited_total')).toBe(0);
  });
});

describe('metrics', () => {
  it('count accepted heartbeats, refused ones and transitions', async () => {
    const app = await startApp({ env: { FLEETPULSE_HEARTBEAT_BURST: '2' } });
    const a = await app.addDevice();
    const b = await app.addDevice();
    for (const token of [a.token, a.token, a.token, b.token]) await app.heartbeat(token);
    expect(await metric(app, 'fleetpulse_heartbeats_total')).toBe(3);
    expect(await metric(app, 'fleetpulse_heartbeats_rate_limited_total')).toBe(1);
    expect(await metric(app, 'fleetpulse_status_transitions_total', { from: 'never_connected', to: 'connected' })).toBe(2);
    expect(await metric(app, 'fleetpulse_devices', { status: 'connected' })).toBe(2);
    expect(await metric(app, 'fleetpulse_devices', { status: 'never_connected' })).toBe(0);
  });

  it('do not count heartbeats refused for bad input or a bad token', async () => {
    const app = await startApp();
    const { token } = await app.addDevice();
    await app.heartbeat(token, { battery_level: 500 });
    await app.heartbeat('x'.repeat(43));
    expect(await metric(app, 'fleetpulse_heartbeats_total')).toBe(0);
    expect(await metric(app, 'fleetpulse_heartbeats_rate_limited_total')).toBe(0);
  });
});

describe('the per-device token cache', () => {
  async function twoCachedDevices() {
    const app = await startApp();
    const a = await app.addDevice({ name: 'a' });
    const b = await app.addDevice({ name: 'b' });
    await app.heartbeat(a.token);
    await app.heartbeat(b.token);
    expect(app.ctx.authenticator.hasCachedDevice(a.id)).toBe(true);
    expect(app.ctx.authenticator.hasCachedDevice(b.id)).toBe(true);
    return { app, a, b };
  }

  it("keeps device B's entry when device A sends heartbeats", async () => {
    const { app, a, b } = await twoCachedDevices();
    for (let i = 0; i < 3; i++) await app.heartbeat(a.token, { battery_level: i });
    expect(app.ctx.authenticator.hasCachedDevice(b.id)).toBe(true);
  });

  it.each([
    { change: 'rotating its token', act: (app: TestApp, id: number) => app.admin('POST', `/api/devices/${id}/token`) },
    { change: 'deleting it', act: (app: TestApp, id: number) => app.admin('DELETE', `/api/devices/${id}`) },
    { change: 'changing its settings', act: (app: TestApp, id: number) => app.admin('PATCH', `/api/devices/${id}`, { heartbeat_interval_seconds: 20 }) },
  ])("forgets only device A's entry after $change", async ({ act }) => {
    const { app, a, b } = await twoCachedDevices();
    expect((await act(app, a.id)).statusCode).toBe(200);
    expect(app.ctx.authenticator.hasCachedDevice(a.id)).toBe(false);
    expect(app.ctx.authenticator.hasCachedDevice(b.id)).toBe(true);
  });

  it('accepts or refuses, never half-applies, a heartbeat racing a token rotation', async () => {
    const { app, a } = await twoCachedDevices();
    const [beat, rotated] = await Promise.all([app.heartbeat(a.token, { battery_level: 33 }), app.admin('POST', `/api/devices/${a.id}/token`)]);
    expect(rotated.statusCode).toBe(200);
    expect([200, 401], beat.body).toContain(beat.statusCode);
    expect((await getDevice(app, a.id)).battery_level).toBe(beat.statusCode === 200 ? 33 : null);
    expectError(await app.heartbeat(a.token), 401, 'unauthorized');
  });

  it('accepts or refuses, never fails on, a heartbeat racing the deletion of its device', async () => {
    const { app, a, b } = await twoCachedDevices();
    const [beat, deleted] = await Promise.all([app.heartbeat(a.token), app.admin('DELETE', `/api/devices/${a.id}`)]);
    expect(deleted.statusCode).toBe(200);
    expect([200, 401], beat.body).toContain(beat.statusCode);
    expectError(await app.heartbeat(a.token), 401, 'unauthorized');
    expect((await app.heartbeat(b.token)).statusCode).toBe(200);
  });

  it('refuses a rotated token on the very next request even while it was cached', async () => {
    const { app, a, b } = await twoCachedDevices();
    const { token } = dataOf<{ token: string }>(await app.admin('POST', `/api/devices/${a.id}/token`));
    expectError(await app.heartbeat(a.token), 401, 'unauthorized');
    expect((await app.heartbeat(token)).statusCode).toBe(200);
    expect((await app.heartbeat(b.token)).statusCode).toBe(200);
  });
});
