import { describe, expect, it } from 'vitest';

import { insertApiToken } from '../../src/auth/api-token.repository.js';
import type { StaffRole } from '../../src/auth/api-token.table.js';
import { generateToken, hashToken } from '../../src/auth/tokens.js';
import { ADMIN_TOKEN, dataOf, expectError, requestFrom, startApp } from './support.js';
import type { TestApp } from './support.js';

async function staffToken(app: TestApp, role: StaffRole): Promise<string> {
  const token = generateToken();
  await insertApiToken(app.ctx.database.db, { role, token_hash: hashToken(token), label: `${role} for tests` }, app.clock());
  return token;
}

type Principal = 'admin' | 'viewer' | 'external' | 'device';

interface Route {
  readonly method: string;
  readonly url: string;
  readonly body?: unknown;
  readonly ok: number;
  readonly allowed: readonly Principal[];
}

const READERS: Principal[] = ['admin', 'viewer', 'external'];

/** Every route of CONTRACT.md §3 but /healthz, /readyz and /metrics. `:id` is a fresh device per request. */
const ROUTES: Route[] = [
  { method: 'POST', url: '/api/devices/heartbeat', body: { battery_level: 50 }, ok: 200, allowed: ['device'] },
  { method: 'POST', url: '/api/devices', body: { name: 'new' }, ok: 201, allowed: ['admin'] },
  { method: 'POST', url: '/api/devices/bulk', body: { devices: [{ name: 'new' }] }, ok: 201, allowed: ['admin'] },
  { method: 'GET', url: '/api/devices', ok: 200, allowed: READERS },
  { method: 'GET', url: '/api/devices/:id', ok: 200, allowed: READERS },
  { method: 'PATCH', url: '/api/devices/:id', body: { name: 'renamed' }, ok: 200, allowed: ['admin'] },
  { method: 'DELETE', url: '/api/devices/:id', ok: 200, allowed: ['admin'] },
  { method: 'POST', url: '/api/devices/:id/token', ok: 200, allowed: ['admin'] },
  { method: 'GET', url: '/api/devices/:id/transitions', ok: 200, allowed: READERS },
  { method: 'POST', url: '/api/devices/:id/reconnect', body: { delay_seconds: 5 }, ok: 202, allowed: ['admin', 'external'] },
  { method: 'POST', url: '/api/devices/reconnect', body: { spread_seconds: 10 }, ok: 202, allowed: ['admin'] },
  { method: 'GET', url: '/api/transitions', ok: 200, allowed: READERS },
];

describe('roles on every route', () => {
  it.each(ROUTES.map((route) => ({ ...route, name: `${route.method} ${route.url}` })))('$name admits exactly $allowed', async (route) => {
    const app = await startApp();
    const tokens: Record<Principal, () => Promise<string>> = {
      admin: async () => ADMIN_TOKEN,
      viewer: () => staffToken(app, 'viewer'),
      external: () => staffToken(app, 'external'),
      device: async () => (await app.addDevice()).token,
    };
    let address = 0;
    // A fresh client address per request keeps the failed-auth limiter out of the way.
    const send = async (token: string | null, body = route.body) => {
      const { id } = await app.addDevice();
      return requestFrom(app, `10.1.0.${++address}`, route.method, route.url.replace(':id', String(id)), { token, body });
    };

    expectError(await send(null), 401, 'unauthorized');
    expectError(await send('not-a-token-anyone-issued-xxxxxxxxxxxxxxxxx'), 401, 'unauthorized');
    expectError(await send(generateToken()), 401, 'unauthorized');

    for (const principal of ['admin', 'viewer', 'external', 'device'] as const) {
      const token = await tokens[principal]();
      const response = await send(token);
      if (route.allowed.includes(principal)) {
        expect(response.statusCode, `${principal}: ${response.body}`).toBe(route.ok);
        expect(response.json().success, principal).toBe(true);
      } else {
        expectError(response, 403, 'forbidden');
      }
    }

    // Authentication and roles come before the body is looked at.
    if (route.body !== undefined) {
      expectError(await send(null, {}), 401, 'unauthorized');
      expectError(await send(null, '{"broken'), 401, 'unauthorized');
      for (const principal of ['admin', 'viewer', 'external', 'device'] as const) {
        if (!route.allowed.includes(principal)) expectError(await send(await tokens[principal](), { status: 'connected' }), 403, 'forbidden');
      }
    }
  });

  it('needs no token for /healthz, /readyz and /metrics', async () => {
    const app = await startApp();
    for (const url of ['/healthz', '/readyz', '/metrics']) expect((await app.request('GET', url)).statusCode, url).toBe(200);
  });
});

describe('bearer tokens', () => {
  it('accepts FLEETPULSE_ADMIN_TOKEN as an admin', async () => {
    const token = 'another-admin-token-from-the-environment';
    const app = await startApp({ env: { FLEETPULSE_ADMIN_TOKEN: token } });
    expect((await app.request('POST', '/api/devices', { token, body: { name: 'by env admin' } })).statusCode).toBe(201);
    expectError(await app.request('GET', '/api/devices', { token: ADMIN_TOKEN }), 401, 'unauthorized');
    expectError(await app.request('GET', '/api/devices', { token: token.slice(0, -1) }), 401, 'unauthorized');
    expectError(await app.request('GET', '/api/devices', { token: `${token}x` }), 401, 'unauthorized');
  });

  it('accepts admin tokens stored in the database (fleetpulse tokens create --role admin)', async () => {
    const app = await startApp();
    const token = await staffToken(app, 'admin');
    expect((await app.request('POST', '/api/devices', { token, body: { name: 'by db admin' } })).statusCode).toBe(201);
    expect((await app.request('DELETE', '/api/devices/1', { token })).statusCode).toBe(200);
  });

  it('refuses a revoked database token', async () => {
    const app = await startApp();
    const token = await staffToken(app, 'admin');
    await app.ctx.database.db.updateTable('api_tokens').set({ revoked_at: app.clock() }).where('token_hash', '=', hashToken(token)).execute();
    expectError(await app.request('GET', '/api/devices', { token }), 401, 'unauthorized');
  });

  it('stores database tokens only as hashes', async () => {
    const app = await startApp();
    const token = await staffToken(app, 'viewer');
    const rows = await app.ctx.database.db.selectFrom('api_tokens').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it.each([
    { why: 'another scheme', header: `Basic ${ADMIN_TOKEN}` },
    { why: 'no token after Bearer', header: 'Bearer' },
    { why: 'two tokens', header: `Bearer ${ADMIN_TOKEN} ${ADMIN_TOKEN}` },
    { why: 'the bare token', header: ADMIN_TOKEN },
    { why: 'characters outside the token alphabet', header: 'Bearer abc$def/ghi+jkl=mnopqrstuvwxyz' },
    { why: 'an enormous token', header: `Bearer ${'a'.repeat(5000)}` },
  ])('refuses an Authorization header with $why (401)', async ({ header }) => {
    const app = await startApp();
    expectError(await app.request('GET', '/api/devices', { headers: { authorization: header } }), 401, 'unauthorized');
  });

  it('accepts the Bearer scheme in any case', async () => {
    const app = await startApp();
    expect((await app.request('GET', '/api/devices', { headers: { authorization: `bearer ${ADMIN_TOKEN}` } })).statusCode).toBe(200);
  });

  it("a device token is not another device's: it always acts as its own device", async () => {
    const app = await startApp();
    const a = await app.addDevice({ name: 'a' });
    const b = await app.addDevice({ name: 'b' });
    await app.heartbeat(a.token, { battery_level: 11 });
    const devices = await app.ctx.database.db.selectFrom('devices').select(['id', 'battery_level', 'status']).orderBy('id').execute();
    expect(devices).toEqual([
      { id: a.id, battery_level: 11, status: 'connected' },
      { id: b.id, battery_level: null, status: 'never_connected' },
    ]);
  });
});

describe('failed authentication limits per client address', () => {
  it('answers 429 with Retry-After once an address has failed 20 times, and lets it try again later', async () => {
    const app = await startApp();
    const attacker = '203.0.113.7';
    for (let i = 0; i < 20; i++) {
      expectError(await requestFrom(app, attacker, 'GET', '/api/devices', { token: generateToken() }), 401, 'unauthorized');
    }
    const blocked = await requestFrom(app, attacker, 'GET', '/api/devices', { token: generateToken() });
    expectError(blocked, 429, 'rate_limited');
    expect(blocked.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expectError(await requestFrom(app, attacker, 'GET', '/api/devices'), 429, 'rate_limited');
    expectError(await requestFrom(app, attacker, 'POST', '/api/devices/heartbeat', { token: generateToken(), body: {} }), 429, 'rate_limited');

    // Other addresses are not affected.
    expectError(await requestFrom(app, '198.51.100.1', 'GET', '/api/devices', { token: generateToken() }), 401, 'unauthorized');
    expect((await requestFrom(app, '198.51.100.1', 'GET', '/api/devices', { token: ADMIN_TOKEN })).statusCode).toBe(200);

    // Honour Retry-After and one more attempt is allowed (and, failing, blocks again).
    app.clock.advance(Number(blocked.headers['retry-after']) * 1000);
    expectError(await requestFrom(app, attacker, 'GET', '/api/devices', { token: generateToken() }), 401, 'unauthorized');
    expectError(await requestFrom(app, attacker, 'GET', '/api/devices', { token: generateToken() }), 429, 'rate_limited');
  });

  it('keeps serving devices already known good behind a blocked address (a shared NAT)', async () => {
    const app = await startApp();
    const nat = '192.0.2.10';
    const { token } = await app.addDevice();
    expect((await requestFrom(app, nat, 'POST', '/api/devices/heartbeat', { token, body: {} })).statusCode).toBe(200);
    for (let i = 0; i < 21; i++) await requestFrom(app, nat, 'POST', '/api/devices/heartbeat', { token: generateToken(), body: {} });
    expectError(await requestFrom(app, nat, 'POST', '/api/devices/heartbeat', { token: generateToken(), body: {} }), 429, 'rate_limited');
    app.clock.advance(5000); // past the device's own heartbeat rate limit
    expect((await requestFrom(app, nat, 'POST', '/api/devices/heartbeat', { token, body: {} })).statusCode).toBe(200);
  });

  it('does not count a valid token used on the wrong route as a failure', async () => {
    const app = await startApp();
    const { token } = await app.addDevice();
    for (let i = 0; i < 30; i++) expectError(await requestFrom(app, '192.0.2.20', 'GET', '/api/devices', { token }), 403, 'forbidden');
    expect(dataOf(await requestFrom(app, '192.0.2.20', 'GET', '/api/devices', { token: ADMIN_TOKEN }))).toBeTruthy();
  });
});
