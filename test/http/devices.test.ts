import { describe, expect, it } from 'vitest';

import { hashToken } from '../../src/auth/tokens.js';
import { dataOf, expectError, getDevice, startApp, walk } from './support.js';
import type { DeviceView, Page, TestApp } from './support.js';

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

async function names(app: TestApp, query: string): Promise<string[]> {
  return dataOf<Page<DeviceView>>(await app.admin('GET', `/api/devices?${query}`)).items.map((d) => d.name);
}

describe('registering a device', () => {
  it('answers 201 with the device and a URL-safe 256-bit token, stored only as its hash', async () => {
    const app = await startApp();
    const data = dataOf<{ device: DeviceView; token: string }>(await app.admin('POST', '/api/devices', { name: 'Lobby kiosk' }), 201);

    expect(data.token).toMatch(TOKEN_SHAPE);
    expect(data.device).toMatchObject({
      id: expect.any(Number),
      name: 'Lobby kiosk',
      status: 'never_connected',
      previous_status: null,
      last_status_change_at: null,
      status_change_reason: null,
      last_heartbeat_at: null,
      heartbeat_interval_seconds: 15,
      heartbeat_timeout_seconds: 30,
      grace_period_seconds: 60,
      remote_control_enabled: true,
      battery_level: null,
      wifi_strength: null,
      created_at: '2026-02-02T10:00:00.000Z',
    });
    expect(JSON.stringify(data.device)).not.toContain(data.token);

    const row = await app.ctx.database.db.selectFrom('devices').selectAll().where('id', '=', data.device.id).executeTakeFirstOrThrow();
    expect(row.token_hash).not.toBe(data.token);
    expect(row.token_hash).toBe(hashToken(data.token));
    expect(Object.values(row).map(String).some((value) => value.includes(data.token))).toBe(false);
  });

  it('issues a different token to every device', async () => {
    const app = await startApp();
    const tokens = new Set<string>();
    for (let i = 0; i < 20; i++) tokens.add((await app.addDevice()).token);
    expect(tokens.size).toBe(20);
  });

  it('takes thresholds and remote_control_enabled at registration', async () => {
    const app = await startApp();
    const fields = { name: 'n', heartbeat_interval_seconds: 5, heartbeat_timeout_seconds: 10, grace_period_seconds: 20, remote_control_enabled: false };
    const { device } = dataOf<{ device: DeviceView }>(await app.admin('POST', '/api/devices', fields), 201);
    expect(device).toMatchObject(fields);
    expect(await getDevice(app, device.id)).toMatchObject(fields);
  });

  it('uses the fleet defaults from the environment', async () => {
    const app = await startApp({
      env: { FLEETPULSE_HEARTBEAT_INTERVAL_SECONDS: '7', FLEETPULSE_HEARTBEAT_TIMEOUT_SECONDS: '21', FLEETPULSE_GRACE_PERIOD_SECONDS: '99' },
    });
    const { id } = await app.addDevice();
    expect(await getDevice(app, id)).toMatchObject({ heartbeat_interval_seconds: 7, heartbeat_timeout_seconds: 21, grace_period_seconds: 99 });
  });

  it.each([
    { fields: { heartbeat_interval_seconds: 40 }, field: 'heartbeat_timeout_seconds', why: 'interval above the default timeout' },
    { fields: { heartbeat_timeout_seconds: 60 }, field: 'grace_period_seconds', why: 'timeout equal to the default grace' },
    { fields: { heartbeat_interval_seconds: 5, heartbeat_timeout_seconds: 10, grace_period_seconds: 10 }, field: 'grace_period_seconds', why: 'grace equal to timeout' },
    { fields: { grace_period_seconds: 86_401 }, field: 'grace_period_seconds', why: 'grace over a day' },
    { fields: { heartbeat_interval_seconds: 0 }, field: 'heartbeat_interval_seconds', why: 'interval 0' },
  ])('refuses $why with a 400 naming $field', async ({ fields, field }) => {
    const app = await startApp();
    expectError(await app.admin('POST', '/api/devices', { name: 'n', ...fields }), 400, 'invalid_request', field);
  });

  it('accepts the widest legal thresholds: 1 ≤ interval = timeout < grace = 86400', async () => {
    const app = await startApp();
    const fields = { heartbeat_interval_seconds: 1, heartbeat_timeout_seconds: 1, grace_period_seconds: 86_400 };
    const { device } = dataOf<{ device: DeviceView }>(await app.admin('POST', '/api/devices', { name: 'n', ...fields }), 201);
    expect(device).toMatchObject(fields);
  });

  it.each(['status', 'previous_status', 'last_heartbeat_at'])('refuses a registration that sets %s, naming it', async (field) => {
    const app = await startApp();
    expectError(await app.admin('POST', '/api/devices', { name: 'n', [field]: 'connected' }), 400, 'invalid_request', field);
    expect(await names(app, '')).toEqual([]);
  });
});

describe('registering devices in bulk', () => {
  it('registers 10,000 devices in one call, each with its own token, in the order given', async () => {
    const app = await startApp();
    const devices = Array.from({ length: 10_000 }, (_, i) => ({ name: `bulk-${i}` }));
    const data = dataOf<{ devices: { device: DeviceView; token: string }[] }>(await app.admin('POST', '/api/devices/bulk', { devices }), 201);

    expect(data.devices).toHaveLength(10_000);
    expect(data.devices.map((d) => d.device.name)).toEqual(devices.map((d) => d.name));
    expect(data.devices.every((d) => TOKEN_SHAPE.test(d.token))).toBe(true);
    expect(new Set(data.devices.map((d) => d.token)).size).toBe(10_000);
    expect(new Set(data.devices.map((d) => d.device.id)).size).toBe(10_000);
    const count = await app.ctx.database.db.selectFrom('devices').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(10_000);

    // A bulk-issued token works like any other.
    const last = data.devices.at(-1)!;
    expect((await app.heartbeat(last.token)).statusCode).toBe(200);
  });

  it('refuses 10,001 devices with a 400 naming devices, and registers none', async () => {
    const app = await startApp();
    const devices = Array.from({ length: 10_001 }, (_, i) => ({ name: `bulk-${i}` }));
    expectError(await app.admin('POST', '/api/devices/bulk', { devices }), 400, 'invalid_request', 'devices');
    expect(await names(app, '')).toEqual([]);
  });

  it.each([
    { why: 'an empty list', body: { devices: [] }, field: 'devices' },
    { why: 'a missing list', body: {}, field: 'devices' },
    { why: 'a list that is not an array', body: { devices: { name: 'x' } }, field: 'devices' },
    { why: 'an item without a name', body: { devices: [{ name: 'ok' }, {}] }, field: 'name' },
    { why: 'an item with bad thresholds', body: { devices: [{ name: 'ok' }, { name: 'b', grace_period_seconds: 5 }] }, field: 'grace_period_seconds' },
    { why: 'an item setting status', body: { devices: [{ name: 'ok' }, { name: 'b', status: 'connected' }] }, field: 'status' },
  ])('refuses $why atomically (400 naming $field, nothing registered)', async ({ body, field }) => {
    const app = await startApp();
    expectError(await app.admin('POST', '/api/devices/bulk', body), 400, 'invalid_request', field);
    expect(await names(app, '')).toEqual([]);
  });
});

describe('listing devices', () => {
  it('filters by status', async () => {
    const app = await startApp();
    const quiet = await app.addDevice({ name: 'quiet' });
    const live = await app.addDevice({ name: 'live' });
    await app.heartbeat(live.token);

    expect(await names(app, 'status=connected')).toEqual(['live']);
    expect(await names(app, 'status=never_connected')).toEqual(['quiet']);
    expect(await names(app, 'status=offline')).toEqual([]);
    expect(await names(app, '')).toEqual(['quiet', 'live']);
    expect(quiet.id).toBeLessThan(live.id);
  });

  it('refuses an unknown status filter with a 400 naming status', async () => {
    const app = await startApp();
    expectError(await app.admin('GET', '/api/devices?status=online'), 400, 'invalid_request', 'status');
  });

  it('searches names case-insensitively by substring', async () => {
    const app = await startApp();
    for (const name of ['Lobby North', 'lobby south', 'Cafeteria', 'LOBBY']) await app.addDevice({ name });
    expect(await names(app, 'q=lobby')).toEqual(['Lobby North', 'lobby south', 'LOBBY']);
    expect(await names(app, 'q=LOBBY%20S')).toEqual(['lobby south']);
    expect(await names(app, 'q=teria')).toEqual(['Cafeteria']);
    expect(await names(app, 'q=nothing')).toEqual([]);
  });

  it.each([
    { q: '%', expected: ['100% ready'] },
    { q: '_', expected: ['a_b'] },
    { q: '!', expected: ['wow!'] },
    { q: '\\', expected: ['back\\slash'] },
    { q: "'", expected: ["it's"] },
  ])('treats $q in a search literally', async ({ q, expected }) => {
    const app = await startApp();
    for (const name of ['100% ready', '100 ready', 'a_b', 'axb', 'wow!', 'wow', 'back\\slash', "it's", 'its']) await app.addDevice({ name });
    expect(await names(app, `q=${encodeURIComponent(q)}`)).toEqual(expected);
  });

  it('searches names case-insensitively beyond ASCII too', async () => {
    const app = await startApp();
    for (const name of ['ÉCOLE Nord', 'ΣΧΟΛΕΙΟ', 'Ärzte']) await app.addDevice({ name });
    expect(await names(app, `q=${encodeURIComponent('école')}`)).toEqual(['ÉCOLE Nord']);
    expect(await names(app, `q=${encodeURIComponent('σχολειο')}`)).toEqual(['ΣΧΟΛΕΙΟ']);
    expect(await names(app, `q=${encodeURIComponent('ÄRZTE')}`)).toEqual(['Ärzte']);
  });

  it('combines status, search and paging', async () => {
    const app = await startApp();
    const devices = [];
    for (let i = 0; i < 9; i++) devices.push(await app.addDevice({ name: i % 2 === 0 ? `even-${i}` : `odd-${i}` }));
    for (const d of devices.slice(0, 5)) await app.heartbeat(d.token);
    const { items, pages } = await walk<DeviceView>(app, '/api/devices?status=connected&q=even&limit=2');
    expect(items.map((d) => d.name)).toEqual(['even-0', 'even-2', 'even-4']);
    expect(pages).toBe(2);
  });

  it('walks every device exactly once with cursor paging', async () => {
    const app = await startApp();
    const devices = Array.from({ length: 257 }, (_, i) => ({ name: `page-${i}` }));
    const created = dataOf<{ devices: { device: DeviceView }[] }>(await app.admin('POST', '/api/devices/bulk', { devices }), 201);
    for (const limit of [1, 7, 50, 256, 257, 1000]) {
      const { items, pages } = await walk<DeviceView>(app, `/api/devices?limit=${limit}`);
      expect(items.map((d) => d.id), `limit ${limit}`).toEqual(created.devices.map((d) => d.device.id));
      expect(pages, `limit ${limit}`).toBeGreaterThanOrEqual(Math.ceil(257 / limit));
      expect(pages, `limit ${limit}`).toBeLessThanOrEqual(Math.ceil(257 / limit) + 1);
    }
  });

  it('answers a page with items and next_cursor, 50 items by default', async () => {
    const app = await startApp();
    await app.admin('POST', '/api/devices/bulk', { devices: Array.from({ length: 60 }, (_, i) => ({ name: `d${i}` })) });
    const first = dataOf<Page<DeviceView>>(await app.admin('GET', '/api/devices'));
    expect(Object.keys(first).sort()).toEqual(['items', 'next_cursor']);
    expect(first.items).toHaveLength(50);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = dataOf<Page<DeviceView>>(await app.admin('GET', `/api/devices?cursor=${first.next_cursor}`));
    expect(second.items.map((d) => d.name)).toEqual(Array.from({ length: 10 }, (_, i) => `d${50 + i}`));
    expect(second.next_cursor).toBeNull();
  });

  it('accepts limits 1 and 1000', async () => {
    const app = await startApp();
    await app.addDevice();
    await app.addDevice();
    expect(dataOf<Page<DeviceView>>(await app.admin('GET', '/api/devices?limit=1')).items).toHaveLength(1);
    expect(dataOf<Page<DeviceView>>(await app.admin('GET', '/api/devices?limit=1000')).items).toHaveLength(2);
  });

  it.each(['0', '1001', 'abc', '-1', '1.5', '', '99999999999999999999'])('refuses limit=%s with a 400 naming limit', async (limit) => {
    const app = await startApp();
    expectError(await app.admin('GET', `/api/devices?limit=${limit}`), 400, 'invalid_request', 'limit');
  });

  it.each(['garbage', 'aXg', '%00', 'x'.repeat(100)])('refuses cursor=%s with a 400 naming cursor', async (cursor) => {
    const app = await startApp();
    expectError(await app.admin('GET', `/api/devices?cursor=${cursor}`), 400, 'invalid_request', 'cursor');
  });
});

describe('reading one device', () => {
  it('returns the device with every contract field, timestamps in ISO-8601 UTC', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice({ name: 'reader' });
    await app.heartbeat(token, { battery_level: 80, wifi_strength: -60 });
    const device = await getDevice(app, id);
    for (const field of [
      'id', 'name', 'status', 'previous_status', 'last_status_change_at', 'status_change_reason', 'last_heartbeat_at',
      'heartbeat_interval_seconds', 'heartbeat_timeout_seconds', 'grace_period_seconds', 'remote_control_enabled',
      'battery_level', 'wifi_strength', 'created_at',
    ]) {
      expect(device, field).toHaveProperty(field);
    }
    expect(device).toMatchObject({ id, name: 'reader', status: 'connected', previous_status: 'never_connected', battery_level: 80, wifi_strength: -60 });
    for (const field of ['last_status_change_at', 'last_heartbeat_at', 'created_at'] as const) expect(device[field]).toMatch(ISO);
  });

  it('answers 404 not_found for an unknown id', async () => {
    const app = await startApp();
    expectError(await app.admin('GET', '/api/devices/424242'), 404, 'not_found');
  });
});

describe('changing a device', () => {
  it('changes the name, thresholds and remote_control_enabled, and the device sees them', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice({ name: 'before' });
    const changes = { name: 'after', heartbeat_interval_seconds: 20, heartbeat_timeout_seconds: 40, grace_period_seconds: 120, remote_control_enabled: false };
    expect(dataOf<DeviceView>(await app.admin('PATCH', `/api/devices/${id}`, changes))).toMatchObject(changes);
    expect(await getDevice(app, id)).toMatchObject(changes);

    const beat = dataOf<Record<string, unknown>>(await app.heartbeat(token));
    expect(beat).toMatchObject({ remote_control_enabled: false, heartbeat_interval_seconds: 20 });
  });

  it('changes one field and leaves the others', async () => {
    const app = await startApp();
    const { id } = await app.addDevice({ name: 'keep', grace_period_seconds: 90 });
    const device = dataOf<DeviceView>(await app.admin('PATCH', `/api/devices/${id}`, { heartbeat_timeout_seconds: 45 }));
    expect(device).toMatchObject({ name: 'keep', heartbeat_interval_seconds: 15, heartbeat_timeout_seconds: 45, grace_period_seconds: 90, remote_control_enabled: true });
  });

  it.each(['status', 'previous_status', 'last_status_change_at', 'status_change_reason', 'last_heartbeat_at'])(
    'refuses to set %s (400 naming it) and changes nothing',
    async (field) => {
      const app = await startApp();
      const { id } = await app.addDevice({ name: 'fixed' });
      const value = field.endsWith('_at') ? '2026-01-01T00:00:00.000Z' : field === 'status_change_reason' ? 'because' : 'connected';
      expectError(await app.admin('PATCH', `/api/devices/${id}`, { name: 'renamed', [field]: value }), 400, 'invalid_request', field);
      expect(await getDevice(app, id)).toMatchObject({ name: 'fixed', status: 'never_connected', status_change_reason: null });
    },
  );

  it.each([
    { existing: {}, patch: { heartbeat_timeout_seconds: 60 }, field: 'grace_period_seconds' },
    { existing: {}, patch: { grace_period_seconds: 30 }, field: 'grace_period_seconds' },
    { existing: {}, patch: { heartbeat_interval_seconds: 31 }, field: 'heartbeat_timeout_seconds' },
    { existing: { heartbeat_timeout_seconds: 50, grace_period_seconds: 100 }, patch: { heartbeat_timeout_seconds: 10 }, field: 'heartbeat_timeout_seconds' },
    { existing: {}, patch: { heartbeat_timeout_seconds: 0 }, field: 'heartbeat_timeout_seconds' },
    { existing: {}, patch: { grace_period_seconds: 86_401 }, field: 'grace_period_seconds' },
    { existing: {}, patch: { heartbeat_interval_seconds: 2.5 }, field: 'heartbeat_interval_seconds' },
    { existing: {}, patch: { remote_control_enabled: 'yes' }, field: 'remote_control_enabled' },
    { existing: {}, patch: { name: '' }, field: 'name' },
    { existing: {}, patch: { name: '   ' }, field: 'name' },
    { existing: {}, patch: { name: null }, field: 'name' },
    { existing: {}, patch: { colour: 'red' }, field: 'colour' },
  ])('refuses $patch on a device with $existing (400 naming $field) and changes nothing', async ({ existing, patch, field }) => {
    const app = await startApp();
    const { id } = await app.addDevice({ name: 'same', ...existing });
    const before = await getDevice(app, id);
    expectError(await app.admin('PATCH', `/api/devices/${id}`, patch), 400, 'invalid_request', field);
    expect(await getDevice(app, id)).toEqual(before);
  });

  it('refuses an empty change with a 400', async () => {
    const app = await startApp();
    const { id } = await app.addDevice();
    expectError(await app.admin('PATCH', `/api/devices/${id}`, {}), 400, 'invalid_request');
  });

  it('answers 404 for an unknown device', async () => {
    const app = await startApp();
    expectError(await app.admin('PATCH', '/api/devices/999', { name: 'x' }), 404, 'not_found');
  });
});

describe('deleting a device', () => {
  it('removes the device and revokes its token on the very next request', async () => {
    const app = await startApp();
    const gone = await app.addDevice({ name: 'gone' });
    const kept = await app.addDevice({ name: 'kept' });
    expect((await app.heartbeat(gone.token)).statusCode).toBe(200); // its token is now cached

    dataOf(await app.admin('DELETE', `/api/devices/${gone.id}`));
    expectError(await app.admin('GET', `/api/devices/${gone.id}`), 404, 'not_found');
    expectError(await app.heartbeat(gone.token), 401, 'unauthorized');
    expectError(await app.admin('DELETE', `/api/devices/${gone.id}`), 404, 'not_found');
    expect(await names(app, '')).toEqual(['kept']);
    expect((await app.heartbeat(kept.token)).statusCode).toBe(200);
  });

  it('never gives a new device the id, or the history, of a deleted one', async () => {
    const app = await startApp();
    const old = await app.addDevice({ name: 'old' });
    await app.heartbeat(old.token);
    dataOf(await app.admin('DELETE', `/api/devices/${old.id}`));
    const fresh = await app.addDevice({ name: 'fresh' });
    expect(fresh.id).not.toBe(old.id);
    expect(dataOf(await app.admin('GET', `/api/devices/${fresh.id}/transitions`))).toEqual({ items: [], next_cursor: null });
  });
});

describe('rotating a device token', () => {
  it('returns a new token; the old one is refused on the very next request and the new one works', async () => {
    const app = await startApp();
    const { id, token: old } = await app.addDevice();
    expect((await app.heartbeat(old)).statusCode).toBe(200); // cached

    const { token } = dataOf<{ token: string }>(await app.admin('POST', `/api/devices/${id}/token`));
    expect(token).toMatch(TOKEN_SHAPE);
    expect(token).not.toBe(old);
    expectError(await app.heartbeat(old), 401, 'unauthorized');
    expect(dataOf(await app.heartbeat(token))).toMatchObject({ status: 'connected' });
    expectError(await app.heartbeat(old), 401, 'unauthorized');

    const row = await app.ctx.database.db.selectFrom('devices').select('token_hash').where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.token_hash).toBe(hashToken(token));
  });

  it('keeps the device, its status and history', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    const before = await getDevice(app, id);
    dataOf(await app.admin('POST', `/api/devices/${id}/token`));
    expect(await getDevice(app, id)).toMatchObject({ status: 'connected', last_heartbeat_at: before.last_heartbeat_at });
  });

  it('answers 404 for an unknown device', async () => {
    const app = await startApp();
    expectError(await app.admin('POST', '/api/devices/31337/token'), 404, 'not_found');
  });
});
