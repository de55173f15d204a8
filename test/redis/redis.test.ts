import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';

import { startTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';

const SHARED_REDIS = process.env.FLEETPULSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function prefix(): string {
  return `fptest:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 8)}:`;
}

/** Two "replicas": app contexts on one database and one Redis. */
async function twoReplicas(env: Record<string, string>): Promise<[TestApp, TestApp]> {
  const first = await startTestApp({ databaseFile: true, env });
  const second = await startTestApp({ databaseUrl: first.ctx.config.database.url, env });
  expect(await first.ctx.redis!.ready(3000)).toBe(true);
  expect(await second.ctx.redis!.ready(3000)).toBe(true);
  return [first, second];
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('with Redis', () => {
  it('shares each device bucket across replicas: together they accept exactly the burst', async () => {
    const [a, b] = await twoReplicas({
      REDIS_URL: SHARED_REDIS,
      FLEETPULSE_REDIS_PREFIX: prefix(),
      FLEETPULSE_HEARTBEAT_BURST: '5',
      FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '60',
    });
    const { token } = await a.addDevice();
    const codes: number[] = [];
    for (let i = 0; i < 12; i++) codes.push((await (i % 2 ? a : b).heartbeat(token)).statusCode);
    expect(codes.filter((c) => c === 200)).toHaveLength(5);
    expect(codes.filter((c) => c === 429)).toHaveLength(7);
    const refused = await b.heartbeat(token);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('drops a rotated token from every replica cache, and no replica accepts it meanwhile', async () => {
    const [a, b] = await twoReplicas({ REDIS_URL: SHARED_REDIS, FLEETPULSE_REDIS_PREFIX: prefix() });
    const { id, token } = await a.addDevice();
    const other = await a.addDevice();
    await b.heartbeat(token);
    await b.heartbeat(other.token);
    expect(b.ctx.authenticator.hasCachedDevice(id)).toBe(true);
    await sleep(50); // let the subscriptions settle

    const rotated = await a.admin('POST', `/api/devices/${id}/token`);
    expect(rotated.statusCode).toBe(200);
    expect((await b.heartbeat(token)).statusCode).toBe(401);
    await until(() => !b.ctx.authenticator.hasCachedDevice(id));
    expect(b.ctx.authenticator.hasCachedDevice(other.id)).toBe(true);
    expect((await b.heartbeat(rotated.json().data.token)).statusCode).toBe(200);
  });
});

async function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  await until(async () => {
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } catch {
      return false;
    }
  }, 5000);
  probe.disconnect();
  return child;
}

describe('when Redis goes away', () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

  it('keeps accepting heartbeats with local limits, warns once, counts fallbacks, and recovers', async () => {
    const port = await sparePort();
    children.push(await startRedis(port));
    const app = await startTestApp({
      env: { REDIS_URL: `redis://127.0.0.1:${port}`, FLEETPULSE_HEARTBEAT_BURST: '100', FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '1' },
    });
    const { token } = await app.addDevice();
    expect(await app.ctx.redis!.ready(3000)).toBe(true);
    expect((await app.heartbeat(token)).statusCode).toBe(200);

    children.shift()!.kill('SIGKILL');
    await until(() => app.ctx.redis!.commands.status !== 'ready');
    for (let i = 0; i < 5; i++) expect((await app.heartbeat(token)).statusCode).toBe(200);
    const warnings = app.logs.filter((l) => String(l.msg).startsWith('Redis is unreachable'));
    expect(warnings).toHaveLength(1);
    const metrics = (await app.request('GET', '/metrics')).body;
    expect(metrics).toMatch(/fleetpulse_redis_fallbacks_total [1-9]/);

    children.push(await startRedis(port));
    await until(() => app.ctx.redis!.commands.status === 'ready', 5000);
    expect((await app.heartbeat(token)).statusCode).toBe(200);
    expect(app.logs.some((l) => String(l.msg).startsWith('Redis is reachable again'))).toBe(true);
    const probe = new Redis(port, '127.0.0.1');
    expect(await probe.keys('fleetpulse:hb:*')).toHaveLength(1);
    probe.disconnect();
  });
});
