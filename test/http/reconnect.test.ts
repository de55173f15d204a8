import { describe, expect, it } from 'vitest';

import { dataOf, expectError, getDevice, metric, startApp } from './support.js';
import type { TestApp } from './support.js';

interface Beat {
  should_reconnect: boolean;
  reconnect_delay_seconds: number | null;
}

async function beat(app: TestApp, token: string): Promise<Beat> {
  return dataOf<Beat>(await app.heartbeat(token));
}

describe('signalling one device to reconnect', () => {
  it('answers 202 and rides on the next heartbeat response exactly once', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    expect(await beat(app, token)).toMatchObject({ should_reconnect: false, reconnect_delay_seconds: null });

    const accepted = await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 42 });
    expect(dataOf(accepted, 202)).toMatchObject({ device_id: id, delay_seconds: 42 });
    expect(await beat(app, token)).toMatchObject({ should_reconnect: true, reconnect_delay_seconds: 42 });
    expect(await beat(app, token)).toMatchObject({ should_reconnect: false, reconnect_delay_seconds: null });
    expect(await beat(app, token)).toMatchObject({ should_reconnect: false, reconnect_delay_seconds: null });
  });

  it('defaults to no delay, with or without a body', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    expect((await app.admin('POST', `/api/devices/${id}/reconnect`)).statusCode).toBe(202);
    expect(await beat(app, token)).toMatchObject({ should_reconnect: true, reconnect_delay_seconds: 0 });
    expect((await app.admin('POST', `/api/devices/${id}/reconnect`, {})).statusCode).toBe(202);
    expect(await beat(app, token)).toMatchObject({ should_reconnect: true, reconnect_delay_seconds: 0 });
  });

  it('waits for a device that has not connected yet', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    dataOf(await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 3 }), 202);
    expect(await beat(app, token)).toMatchObject({ should_reconnect: true, reconnect_delay_seconds: 3 });
  });

  it('waits for an offline device and is delivered when it comes back', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await beat(app, token);
    await app.advance(70_000);
    await app.sweep();
    expect((await getDevice(app, id)).status).toBe('offline');
    dataOf(await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 3 }), 202);
    await app.advance(60_000);
    await app.sweep();
    expect(await beat(app, token)).toMatchObject({ should_reconnect: true, reconnect_delay_seconds: 3 });
  });

  it('replaces an undelivered signal with the newer one', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 10 });
    await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 20 });
    expect(await beat(app, token)).toMatchObject({ should_reconnect: true, reconnect_delay_seconds: 20 });
    expect(await beat(app, token)).toMatchObject({ should_reconnect: false });
  });

  it('signals only that device', async () => {
    const app = await startApp();
    const a = await app.addDevice();
    const b = await app.addDevice();
    await app.admin('POST', `/api/devices/${a.id}/reconnect`, { delay_seconds: 1 });
    expect(await beat(app, b.token)).toMatchObject({ should_reconnect: false });
    expect(await beat(app, a.token)).toMatchObject({ should_reconnect: true });
  });

  it('is not delivered by a heartbeat refused for its rate', async () => {
    const app = await startApp({ env: { FLEETPULSE_HEARTBEAT_BURST: '1' } });
    const { id, token } = await app.addDevice();
    await beat(app, token);
    await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 7 });
    expectError(await app.heartbeat(token), 429, 'rate_limited');
    app.clock.advance(5000);
    expect(await beat(app, token)).toMatchObject({ should_reconnect: true, reconnect_delay_seconds: 7 });
  });

  it('records the delivery on the device and in the metrics', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 4 });
    expect((await getDevice(app, id)).pending_reconnect).toMatchObject({ delay_seconds: 4 });
    app.clock.advance(2500);
    await beat(app, token);
    expect(await getDevice(app, id)).toMatchObject({ pending_reconnect: null, last_reconnect_delivered_at: '2026-02-02T10:00:02.500Z' });
    expect(await metric(app, 'fleetpulse_reconnect_signals_delivered_total')).toBe(1);
  });

  it('answers 404 for an unknown device', async () => {
    const app = await startApp();
    expectError(await app.admin('POST', '/api/devices/777/reconnect', { delay_seconds: 1 }), 404, 'not_found');
  });

  it.each([
    { body: { delay_seconds: -1 }, field: 'delay_seconds' },
    { body: { delay_seconds: 86_401 }, field: 'delay_seconds' },
    { body: { delay_seconds: 0.5 }, field: 'delay_seconds' },
    { body: { delay_seconds: 'soon' }, field: 'delay_seconds' },
    { body: { delay_seconds: null }, field: 'delay_seconds' },
    { body: { spread_seconds: 5 }, field: 'spread_seconds' },
  ])('refuses $body with a 400 naming $field and queues nothing', async ({ body, field }) => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    expectError(await app.admin('POST', `/api/devices/${id}/reconnect`, body), 400, 'invalid_request', field);
    expect(await beat(app, token)).toMatchObject({ should_reconnect: false });
  });
});

describe('signalling the fleet to reconnect', () => {
  async function fleet(app: TestApp, n: number) {
    const devices = [];
    for (let i = 0; i < n; i++) devices.push(await app.addDevice({ name: `f${i}` }));
    return devices;
  }

  it('signals every device with delays floor(i × spread / n), spread evenly over [0, spread)', async () => {
    const app = await startApp();
    const devices = await fleet(app, 7);
    const accepted = dataOf<{ signalled: number }>(await app.admin('POST', '/api/devices/reconnect', { spread_seconds: 60 }), 202);
    expect(accepted.signalled).toBe(7);

    const delays = [];
    for (const d of devices) delays.push((await beat(app, d.token)).reconnect_delay_seconds);
    expect(delays).toEqual(devices.map((_, i) => Math.floor((i * 60) / 7)));
    expect(delays).toEqual([0, 8, 17, 25, 34, 42, 51]);
    for (const d of devices) expect(await beat(app, d.token)).toMatchObject({ should_reconnect: false, reconnect_delay_seconds: null });
  });

  it('keeps every delay inside [0, spread) and hits 0 for the first device', async () => {
    const app = await startApp();
    const devices = await fleet(app, 3);
    await app.admin('POST', '/api/devices/reconnect', { spread_seconds: 2 });
    const delays = [];
    for (const d of devices) delays.push((await beat(app, d.token)).reconnect_delay_seconds!);
    expect(delays).toEqual([0, 0, 1]);
    expect(Math.max(...delays)).toBeLessThan(2);
  });

  it('signals with no delay at all when spread_seconds is 0', async () => {
    const app = await startApp();
    const devices = await fleet(app, 3);
    await app.admin('POST', '/api/devices/reconnect', { spread_seconds: 0 });
    for (const d of devices) expect(await beat(app, d.token)).toMatchObject({ should_reconnect: true, reconnect_delay_seconds: 0 });
  });

  it('signals only devices with the given status, spreading over those', async () => {
    const app = await startApp();
    const devices = await fleet(app, 6);
    const connected = [devices[1]!, devices[3]!, devices[4]!];
    for (const d of connected) await beat(app, d.token);

    const accepted = dataOf<{ signalled: number }>(await app.admin('POST', '/api/devices/reconnect', { status: 'connected', spread_seconds: 30 }), 202);
    expect(accepted.signalled).toBe(3);
    const delays = [];
    for (const d of connected) delays.push((await beat(app, d.token)).reconnect_delay_seconds);
    expect(delays).toEqual([0, 10, 20]);
    for (const d of [devices[0]!, devices[2]!, devices[5]!]) expect(await beat(app, d.token)).toMatchObject({ should_reconnect: false });
  });

  it('signals nobody when no device has the status', async () => {
    const app = await startApp();
    await fleet(app, 2);
    expect(dataOf(await app.admin('POST', '/api/devices/reconnect', { status: 'offline', spread_seconds: 10 }), 202)).toMatchObject({ signalled: 0 });
  });

  it.each([
    { body: {}, field: 'spread_seconds' },
    { body: { spread_seconds: -1 }, field: 'spread_seconds' },
    { body: { spread_seconds: 1.5 }, field: 'spread_seconds' },
    { body: { spread_seconds: '60' }, field: 'spread_seconds' },
    { body: { spread_seconds: 86_401 }, field: 'spread_seconds' },
    { body: { spread_seconds: 10, status: 'everyone' }, field: 'status' },
    { body: { spread_seconds: 10, delay_seconds: 3 }, field: 'delay_seconds' },
  ])('refuses $body with a 400 naming $field and signals nobody', async ({ body, field }) => {
    const app = await startApp();
    const [d] = await fleet(app, 1);
    expectError(await app.admin('POST', '/api/devices/reconnect', body), 400, 'invalid_request', field);
    expect(await beat(app, d!.token)).toMatchObject({ should_reconnect: false });
  });
});
