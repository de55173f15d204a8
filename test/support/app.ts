import { Writable } from 'node:stream';

import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { onTestFinished } from 'vitest';

import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { DatabaseKind } from '../../src/config.js';
import { createContext } from '../../src/context.js';
import type { AppContext } from '../../src/context.js';
import { migrateUp } from '../../src/db/migrate.js';
import { beatLiveness } from '../../src/monitor/service-state.repository.js';
import { sweepOnce } from '../../src/monitor/sweep.js';
import type { SweepResult } from '../../src/monitor/sweep.js';
import { createLogger } from '../../src/observability/logger.js';
import { fakeClock } from './clock.js';
import type { FakeClock } from './clock.js';
import { createTestDatabase } from './databases.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface TestApp {
  readonly ctx: AppContext;
  readonly app: FastifyInstance;
  readonly clock: FakeClock;
  /** Every JSON log line written so far. */
  readonly logs: Record<string, unknown>[];
  request(method: string, url: string, options?: { body?: unknown; token?: string | null; headers?: Record<string, string> }): Promise<LightMyRequestResponse>;
  admin(method: string, url: string, body?: unknown): Promise<LightMyRequestResponse>;
  heartbeat(token: string, body?: unknown): Promise<LightMyRequestResponse>;
  /** Registers a device through the API; returns its id and token. */
  addDevice(fields?: Record<string, unknown>): Promise<{ id: number; token: string }>;
  /** Records liveness at the current fake time, as a serving process does every second. */
  beat(): Promise<void>;
  /** Moves the clock, keeping the service alive (liveness) as a running server would. */
  advance(ms: number): Promise<void>;
  sweep(): Promise<SweepResult>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  readonly dialect?: DatabaseKind;
  readonly env?: Record<string, string>;
  /** Reuse a database URL (e.g. a second replica on the same database). */
  readonly databaseUrl?: string;
  /** SQLite in a file rather than in memory (so a second context can share it). */
  readonly databaseFile?: boolean;
}

/** A full app on a fresh database, with a fake clock and captured logs. Closed when the test ends. */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const database = options.databaseUrl ? null : await createTestDatabase(options.dialect ?? 'sqlite', { file: options.databaseFile });
  const config = loadConfig({
    DATABASE_URL: options.databaseUrl ?? database!.url,
    FLEETPULSE_ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: 'info',
    ...options.env,
  });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const clock = fakeClock();
  const ctx = createContext(config, { clock, logger: createLogger('info', sink) });
  await migrateUp(ctx.database);
  await beatLiveness(ctx.database.db, clock(), ctx.livenessGapMs);
  const app = await buildApp(ctx);

  const request: TestApp['request'] = (method, url, { body, token = null, headers = {} } = {}) =>
    app.inject({
      method: method as 'GET',
      url,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });

  let closed = false;
  const testApp: TestApp = {
    ctx,
    app,
    clock,
    logs,
    request,
    admin: (method, url, body) => request(method, url, { body, token: ADMIN_TOKEN }),
    heartbeat: (token, body = {}) => request('POST', '/api/devices/heartbeat', { body, token }),
    async addDevice(fields = {}) {
      const response = await testApp.admin('POST', '/api/devices', { name: `device-${Math.random().toString(36).slice(2, 8)}`, ...fields });
      if (response.statusCode !== 201) throw new Error(`addDevice: ${response.statusCode} ${response.body}`);
      const data = response.json().data;
      return { id: data.device.id, token: data.token };
    },
    beat: async () => void (await beatLiveness(ctx.database.db, clock(), ctx.livenessGapMs)),
    async advance(ms) {
      // Step in liveness-sized hops so the service never looks down to itself.
      for (let left = ms; left > 0; left -= 1000) {
        clock.advance(Math.min(1000, left));
        await testApp.beat();
      }
    },
    sweep: () => sweepOnce(ctx.sweepDeps, clock()),
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await ctx.close();
      await database?.drop();
    },
  };
  onTestFinished(() => testApp.close());
  return testApp;
}

/** Every `Device status changed` log line. */
export function transitionLogs(app: TestApp): Record<string, unknown>[] {
  return app.logs.filter((line) => line.msg === 'Device status changed');
}
