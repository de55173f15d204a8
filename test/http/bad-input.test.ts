import { describe, expect, it } from 'vitest';

import { ADMIN_TOKEN, dataOf, expectError, getDevice, startApp } from './support.js';
import type { DeviceView, Page, TestApp } from './support.js';

type Who = 'admin' | 'device';

interface Target {
  readonly method: string;
  /** `:id` is replaced by a real device id. */
  readonly url: string;
  readonly who: Who;
}

const HEARTBEAT: Target = { method: 'POST', url: '/api/devices/heartbeat', who: 'device' };
const CREATE: Target = { method: 'POST', url: '/api/devices', who: 'admin' };
const BULK: Target = { method: 'POST', url: '/api/devices/bulk', who: 'admin' };
const PATCH: Target = { method: 'PATCH', url: '/api/devices/:id', who: 'admin' };
const RECONNECT_ONE: Target = { method: 'POST', url: '/api/devices/:id/reconnect', who: 'admin' };
const RECONNECT_FLEET: Target = { method: 'POST', url: '/api/devices/reconnect', who: 'admin' };
const BODY_ROUTES = [HEARTBEAT, CREATE, BULK, PATCH, RECONNECT_ONE, RECONNECT_FLEET];

async function send(app: TestApp, target: Target, body?: unknown, headers: Record<string, string> = {}) {
  const device = await app.addDevice({ name: 'subject' });
  const token = target.who === 'device' ? device.token : ADMIN_TOKEN;
  const response = await app.request(target.method, target.url.replace(':id', String(device.id)), { body, token, headers });
  return { response, device };
}

const label = (t: Target) => `${t.method} ${t.url}`;

describe('wrong, out-of-range and missing fields', () => {
  const cases: { target: Target; body: unknown; field: string }[] = [
    // The heartbeat: all optional, each typed and bounded.
    { target: HEARTBEAT, body: { battery_level: '50' }, field: 'battery_level' },
    { target: HEARTBEAT, body: { battery_level: 50.5 }, field: 'battery_level' },
    { target: HEARTBEAT, body: { battery_level: 101 }, field: 'battery_level' },
    { target: HEARTBEAT, body: { battery_level: -1 }, field: 'battery_level' },
    { target: HEARTBEAT, body: '{"battery_level": 1e999}', field: 'battery_level' },
    { target: HEARTBEAT, body: '{"battery_level": -1e999}', field: 'battery_level' },
    { target: HEARTBEAT, body: { battery_level: true }, field: 'battery_level' },
    { target: HEARTBEAT, body: { wifi_strength: 1 }, field: 'wifi_strength' },
    { target: HEARTBEAT, body: { wifi_strength: -128 }, field: 'wifi_strength' },
    { target: HEARTBEAT, body: { wifi_strength: '-50' }, field: 'wifi_strength' },
    { target: HEARTBEAT, body: '{"wifi_strength": -1e999}', field: 'wifi_strength' },
    { target: HEARTBEAT, body: { app_version: 'v'.repeat(65) }, field: 'app_version' },
    { target: HEARTBEAT, body: { app_version: 123 }, field: 'app_version' },
    { target: HEARTBEAT, body: { app_version: { major: 1 } }, field: 'app_version' },
    { target: HEARTBEAT, body: { uptime_seconds: -1 }, field: 'uptime_seconds' },
    { target: HEARTBEAT, body: { uptime_seconds: 1.5 }, field: 'uptime_seconds' },
    { target: HEARTBEAT, body: { uptime_seconds: '100' }, field: 'uptime_seconds' },
    { target: HEARTBEAT, body: '{"uptime_seconds": 1e999}', field: 'uptime_seconds' },
    { target: HEARTBEAT, body: [], field: 'body' },
    { target: HEARTBEAT, body: '"alive"', field: 'body' },
    { target: HEARTBEAT, body: '42', field: 'body' },
    // Registration.
    { target: CREATE, body: {}, field: 'name' },
    { target: CREATE, body: { name: 42 }, field: 'name' },
    { target: CREATE, body: { name: '' }, field: 'name' },
    { target: CREATE, body: { name: 'n', heartbeat_timeout_seconds: '30' }, field: 'heartbeat_timeout_seconds' },
    { target: CREATE, body: '{"name": "n", "grace_period_seconds": 1e999}', field: 'grace_period_seconds' },
    { target: CREATE, body: { name: 'n', grace_period_seconds: -60 }, field: 'grace_period_seconds' },
    { target: CREATE, body: { name: 'n', heartbeat_interval_seconds: 1.5 }, field: 'heartbeat_interval_seconds' },
    { target: CREATE, body: { name: 'n', heartbeat_interval_seconds: null }, field: 'heartbeat_interval_seconds' },
    { target: CREATE, body: { name: 'n', remote_control_enabled: 'true' }, field: 'remote_control_enabled' },
    { target: CREATE, body: { name: 'n', remote_control_enabled: 1 }, field: 'remote_control_enabled' },
    { target: CREATE, body: { name: 'n', colour: 'red' }, field: 'colour' },
    { target: CREATE, body: [{ name: 'n' }], field: 'body' },
    { target: CREATE, body: 'null', field: 'body' },
    { target: BULK, body: { devices: [{ name: 'a' }, { name: 7 }] }, field: 'name' },
    { target: BULK, body: { devices: 'all of them' }, field: 'devices' },
    // Changes.
    { target: PATCH, body: { name: ['x'] }, field: 'name' },
    { target: PATCH, body: '{"heartbeat_timeout_seconds": 1e999}', field: 'heartbeat_timeout_seconds' },
    { target: PATCH, body: { grace_period_seconds: -1 }, field: 'grace_period_seconds' },
    { target: PATCH, body: { id: 5 }, field: 'id' },
    // Reconnect signals.
    { target: RECONNECT_ONE, body: { delay_seconds: -1 }, field: 'delay_seconds' },
    { target: RECONNECT_ONE, body: { delay_seconds: '5' }, field: 'delay_seconds' },
    { target: RECONNECT_ONE, body: { delay_seconds: 2.5 }, field: 'delay_seconds' },
    { target: RECONNECT_ONE, body: '{"delay_seconds": 1e999}', field: 'delay_seconds' },
    { target: RECONNECT_ONE, body: { delay_seconds: 86_401 }, field: 'delay_seconds' },
    { target: RECONNECT_ONE, body: { delay: 5 }, field: 'delay' },
    { target: RECONNECT_FLEET, body: {}, field: 'spread_seconds' },
    { target: RECONNECT_FLEET, body: { spread_seconds: -10 }, field: 'spread_seconds' },
    { target: RECONNECT_FLEET, body: { spread_seconds: '10' }, field: 'spread_seconds' },
    { target: RECONNECT_FLEET, body: '{"spread_seconds": 1e999}', field: 'spread_seconds' },
    { target: RECONNECT_FLEET, body: { spread_seconds: 10, status: 'online' }, field: 'status' },
  ];

  // One app per route, every bad body of the table against it: each must be refused and change nothing.
  it.each(BODY_ROUTES.map((target) => ({ target, route: label(target), bodies: cases.filter((c) => c.target === target) })))(
    '$route refuses each wrong, out-of-range or missing field with a 400 naming it',
    async ({ target, bodies }) => {
      expect(bodies.length).toBeGreaterThan(0);
      const app = await startApp();
      const device = await app.addDevice({ name: 'subject' });
      const token = target.who === 'device' ? device.token : ADMIN_TOKEN;
      const url = target.url.replace(':id', String(device.id));
      for (const { body, field } of bodies) {
        const shown = typeof body === 'string' ? body : JSON.stringify(body);
        const response = await app.request(target.method, url, { body, token });
        expect(response.statusCode, `${shown}: ${response.body}`).toBe(400);
        expectError(response, 400, 'invalid_request', field);
        // A refused request changes nothing.
        expect(await getDevice(app, device.id), shown).toMatchObject({ name: 'subject', status: 'never_connected', last_heartbeat_at: null, pending_reconnect: null });
      }
      expect(await app.ctx.database.db.selectFrom('devices').select('id').execute(), 'no device was registered').toHaveLength(1);
    },
  );

  it.each([
    { body: { battery_level: 0, wifi_strength: -127, app_version: '', uptime_seconds: 0 } },
    { body: { battery_level: 100, wifi_strength: 0, app_version: 'v'.repeat(64), uptime_seconds: 2 ** 40 } },
    { body: { mood: 'happy', nested: { anything: [1, 2] } } },
    { body: undefined },
    { body: '' },
  ])('the heartbeat accepts boundary values and ignores unknown fields: $body', async ({ body }) => {
    const app = await startApp();
    const { token } = await app.addDevice();
    const response = await app.request('POST', '/api/devices/heartbeat', { body, token });
    expect(dataOf(response)).toMatchObject({ status: 'connected' });
  });
});

describe('bodies that are not JSON', () => {
  it.each(BODY_ROUTES.map((target) => ({ target, route: label(target) })))('$route refuses malformed JSON with a 400', async ({ target }) => {
    const app = await startApp();
    for (const raw of ['{"name": "x"', '{name: "x"}', "{'name': 'x'}", '{"a":1}}', '\u0000']) {
      const { response } = await send(app, target, raw);
      expectError(response, 400, 'invalid_request', 'JSON');
    }
  });

  const contentTypes = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/jsonx'];
  it.each(BODY_ROUTES.map((target) => ({ target, route: label(target) })))('$route refuses non-JSON content types with a 415', async ({ target }) => {
    const app = await startApp();
    for (const contentType of contentTypes) {
      const { response } = await send(app, target, 'name=x', { 'content-type': contentType });
      expectError(response, 415, 'unsupported_media_type');
    }
  });

  it('refuses a body without a content type with a 415', async () => {
    const app = await startApp();
    const response = await app.app.inject({
      method: 'POST',
      url: '/api/devices',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      payload: Buffer.from('{"name":"x"}'),
    });
    expectError(response, 415, 'unsupported_media_type');
  });

  it('refuses a body that is not valid UTF-8 with a 400, rather than storing a mangled name', async () => {
    const app = await startApp();
    const payload = Buffer.concat([Buffer.from('{"name": "kiosk '), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
    const response = await app.app.inject({
      method: 'POST',
      url: '/api/devices',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      payload,
    });
    expectError(response, 400, 'invalid_request', 'UTF-8');
    expect(dataOf<Page<DeviceView>>(await app.admin('GET', '/api/devices')).items).toEqual([]);
  });

  it.each([
    { target: CREATE, raw: '{"name": "x", "__proto__": {"status": "connected"}}', field: '__proto__' },
    { target: PATCH, raw: '{"__proto__": {"name": "y"}}', field: '__proto__' },
    { target: PATCH, raw: '{"constructor": {"prototype": {"name": "y"}}}', field: 'constructor' },
  ])('$target.method $target.url refuses prototype-poisoning keys: $raw', async ({ target, raw, field }) => {
    const app = await startApp();
    const { response, device } = await send(app, target, raw);
    expectError(response, 400, 'invalid_request', field);
    expect(await getDevice(app, device.id)).toMatchObject({ name: 'subject', status: 'never_connected' });
    expect(({} as Record<string, unknown>).status).toBeUndefined();
  });

  it('accepts application/json with a charset', async () => {
    const app = await startApp();
    const response = await app.request('POST', '/api/devices', {
      body: { name: 'charset' },
      token: ADMIN_TOKEN,
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(response.statusCode).toBe(201);
  });
});

describe('body size limits', () => {
  const padded = (json: string, length: number) => json + ' '.repeat(length - Buffer.byteLength(json));

  it('takes a 16 KiB heartbeat and refuses one byte more with a 413', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    const body = '{"battery_level": 42}';
    expectError(await app.request('POST', '/api/devices/heartbeat', { body: padded(body, 16 * 1024 + 1), token }), 413, 'payload_too_large');
    expect(await getDevice(app, id)).toMatchObject({ status: 'never_connected', battery_level: null });
    expect((await app.request('POST', '/api/devices/heartbeat', { body: padded(body, 16 * 1024), token })).statusCode).toBe(200);
  });

  it('refuses a heartbeat of 100 KiB (a device must not send more than 16 KiB)', async () => {
    const app = await startApp();
    const { token } = await app.addDevice();
    expectError(await app.heartbeat(token, { app_version: '1', junk: 'x'.repeat(100 * 1024) }), 413, 'payload_too_large');
  });

  it('takes a 4 MiB admin request and refuses one byte more with a 413', async () => {
    const app = await startApp();
    const body = JSON.stringify({ devices: [{ name: 'big' }] });
    expectError(await app.request('POST', '/api/devices/bulk', { body: padded(body, 4 * 1024 * 1024 + 1), token: ADMIN_TOKEN }), 413, 'payload_too_large');
    expect((await app.request('POST', '/api/devices/bulk', { body: padded(body, 4 * 1024 * 1024), token: ADMIN_TOKEN })).statusCode).toBe(201);
  });

  it.each([CREATE, PATCH, RECONNECT_ONE, RECONNECT_FLEET].map((target) => ({ target, route: label(target) })))(
    '$route refuses a body over 4 MiB with a 413',
    async ({ target }) => {
      const app = await startApp();
      const { response } = await send(app, target, { name: 'x', junk: 'x'.repeat(4 * 1024 * 1024) });
      expectError(response, 413, 'payload_too_large');
    },
  );
});

describe('ids that name no device', () => {
  const routes = [
    { method: 'GET', path: '' },
    { method: 'PATCH', path: '', body: { name: 'x' } },
    { method: 'DELETE', path: '' },
    { method: 'POST', path: '/token' },
    { method: 'GET', path: '/transitions' },
    { method: 'POST', path: '/reconnect', body: { delay_seconds: 1 } },
  ];
  const ids = ['999999', 'abc', '-1', '0', '1.5', '1e3', '0x10', '99999999999999999999', '9'.repeat(40), '%20', '%00', 'null'];

  it.each(routes.map((r) => ({ ...r, route: `${r.method} /api/devices/:id${r.path}` })))('$route answers a 4xx with the error shape for odd ids', async ({ method, path, body }) => {
    const app = await startApp();
    await app.addDevice(); // id 1 exists; none of the ids below name it
    for (const id of ids) {
      const response = await app.request(method, `/api/devices/${id}${path}`, { body, token: ADMIN_TOKEN });
      expect(response.statusCode, `${method} id ${id}: ${response.body}`).toBeGreaterThanOrEqual(400);
      expect(response.statusCode, `${method} id ${id}: ${response.body}`).toBeLessThan(500);
      expect(response.json()).toEqual({ success: false, error: { code: expect.any(String), message: expect.any(String) } });
    }
    expectError(await app.request(method, `/api/devices/999999${path}`, { body, token: ADMIN_TOKEN }), 404, 'not_found');
  });

  it.each(['/api/devices/%E0%A4%A', '/api/devices/%', '/api/%ZZ'])('answers a URL that does not decode (%s) with a 400 in the error shape', async (url) => {
    const app = await startApp();
    expectError(await app.admin('GET', url), 400, 'invalid_request');
  });

  it('answers an unknown route with a 404 in the error shape', async () => {
    const app = await startApp();
    expectError(await app.admin('GET', '/api/nothing-here'), 404, 'not_found');
  });
});

describe('query strings', () => {
  it.each([
    { url: '/api/devices?limit=abc', field: 'limit' },
    { url: '/api/devices?limit=1&limit=2', field: 'limit' },
    { url: '/api/devices?status=connected&status=offline', field: 'status' },
    { url: `/api/devices?q=${'q'.repeat(201)}`, field: 'q' },
    { url: '/api/devices?q=%00', field: 'q' },
    { url: '/api/devices?q=kiosk%00', field: 'q' },
    { url: '/api/devices/1/transitions?limit=0', field: 'limit' },
    { url: '/api/devices/1/transitions?limit=1001', field: 'limit' },
    { url: '/api/devices/1/transitions?cursor=nope', field: 'cursor' },
    { url: '/api/transitions?limit=-5', field: 'limit' },
    { url: '/api/transitions?limit=1001', field: 'limit' },
    { url: '/api/transitions?after=nope', field: 'after' },
  ])('GET $url answers a 400 naming $field', async ({ url, field }) => {
    const app = await startApp();
    await app.addDevice();
    expectError(await app.admin('GET', url), 400, 'invalid_request', field);
  });
});

describe('names', () => {
  const verbatim = [
    { why: '200 emoji', name: '😀'.repeat(200) },
    { why: '200 CJK characters', name: '大'.repeat(100) + '堂屏幕'.repeat(33) + '幕' },
    { why: 'right-to-left text', name: 'شاشة الاستقبال ٣ — مدخل' },
    { why: 'SQL-looking text', name: "Robert'); DROP TABLE devices;-- \"x\" `y` \\ %_" },
    { why: 'a mix of scripts, combining marks and joiners', name: 'Cafe\u0301 👨‍👩‍👧 ελληνικά עברית ​zero​width' },
    { why: 'leading and trailing spaces', name: '  padded  ' },
    { why: 'newlines and tabs', name: 'line one\nline\ttwo' },
    { why: 'HTML', name: '<script>alert(1)</script>' },
  ];

  it.each(verbatim)('stores $why verbatim and finds it by search', async ({ name }) => {
    expect([...name].length).toBeLessThanOrEqual(200);
    const app = await startApp();
    await app.addDevice({ name: 'other' });
    const { device } = dataOf<{ device: DeviceView }>(await app.admin('POST', '/api/devices', { name }), 201);
    expect(device.name).toBe(name);
    expect((await getDevice(app, device.id)).name).toBe(name);
    const found = dataOf<Page<DeviceView>>(await app.admin('GET', `/api/devices?q=${encodeURIComponent([...name].slice(0, 20).join(''))}`));
    expect(found.items.map((d) => d.name)).toEqual([name]);

    // Renaming stores it verbatim too.
    const renamed = `${[...name].slice(0, 199).join('')}!`;
    expect(dataOf<DeviceView>(await app.admin('PATCH', `/api/devices/${device.id}`, { name: renamed })).name).toBe(renamed);
    expect((await getDevice(app, device.id)).name).toBe(renamed);
  });

  it('finds a name by its own exact text, whatever the script', async () => {
    const app = await startApp();
    for (const name of ['École', 'Ελληνικά', 'ÜBER', 'Ярлык']) {
      await app.addDevice({ name });
      const found = dataOf<Page<DeviceView>>(await app.admin('GET', `/api/devices?q=${encodeURIComponent(name)}`));
      expect(found.items.map((d) => d.name), name).toEqual([name]);
    }
  });

  it('takes exactly 200 characters and refuses 201 with a 400 naming name', async () => {
    const app = await startApp();
    for (const char of ['a', '😀', '大']) {
      expect((await app.admin('POST', '/api/devices', { name: char.repeat(200) })).statusCode).toBe(201);
      expectError(await app.admin('POST', '/api/devices', { name: char.repeat(201) }), 400, 'invalid_request', 'name');
    }
  });

  it.each([
    { why: 'a NUL character', raw: '{"name": "kiosk\\u0000one"}' },
    { why: 'a lone high surrogate', raw: '{"name": "kiosk\\ud800one"}' },
    { why: 'a lone low surrogate', raw: '{"name": "kiosk\\udc00"}' },
  ])('refuses a name with $why (400 naming name), on create and on change', async ({ raw }) => {
    const app = await startApp();
    expectError(await app.request('POST', '/api/devices', { body: raw, token: ADMIN_TOKEN }), 400, 'invalid_request', 'name');
    const { id } = await app.addDevice({ name: 'fine' });
    expectError(await app.request('PATCH', `/api/devices/${id}`, { body: raw, token: ADMIN_TOKEN }), 400, 'invalid_request', 'name');
    expect((await getDevice(app, id)).name).toBe('fine');
  });

  it('stores app_version telemetry verbatim too', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    const version = "1.0'; DELETE FROM devices;-- 🚀";
    expect((await app.heartbeat(token, { app_version: version })).statusCode).toBe(200);
    expect((await getDevice(app, id)).app_version).toBe(version);
  });
});
