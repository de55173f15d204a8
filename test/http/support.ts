import type { LightMyRequestResponse } from 'fastify';
import { expect, onTestFinished } from 'vitest';

import { startTestApp } from '../support/app.js';
import type { TestApp, TestAppOptions } from '../support/app.js';

export { ADMIN_TOKEN, transitionLogs } from '../support/app.js';
export type { TestApp } from '../support/app.js';

/**
 * A test app that also fails the test if any request ended in a 500
 * (the error handler logs every one as "Unhandled error").
 */
export async function startApp(options: TestAppOptions = {}): Promise<TestApp> {
  const app = await startTestApp(options);
  onTestFinished(() => {
    const unhandled = app.logs.filter((line) => line.msg === 'Unhandled error');
    expect(unhandled, 'requests answered with a 500').toEqual([]);
  });
  return app;
}

/** Asserts the contract's error shape, and (when given) that the message names `field`. */
export function expectError(response: LightMyRequestResponse, status: number, code: string, field?: string): string {
  expect(response.statusCode, response.body).toBe(status);
  const body = response.json() as { success: unknown; error: { code: unknown; message: unknown } };
  expect(body).toEqual({ success: false, error: { code, message: expect.any(String) } });
  const message = body.error.message as string;
  expect(message.length).toBeGreaterThan(0);
  if (field !== undefined) expect(message, `message should name ${field}`).toContain(field);
  return message;
}

/** The `data` of a successful response, after checking the status and the `{success: true}` envelope. */
export function dataOf<T = Record<string, unknown>>(response: LightMyRequestResponse, status = 200): T {
  expect(response.statusCode, response.body).toBe(status);
  const body = response.json() as { success: boolean; data: T };
  expect(body.success).toBe(true);
  return body.data;
}

/** A request from a given client address (the failed-auth limiter keys on it). A string body is sent as is. */
export function requestFrom(
  app: TestApp,
  remoteAddress: string,
  method: string,
  url: string,
  { token = null, body }: { token?: string | null; body?: unknown } = {},
): Promise<LightMyRequestResponse> {
  return app.app.inject({
    method: method as 'GET',
    url,
    remoteAddress,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
}

export interface DeviceView {
  id: number;
  name: string;
  status: string;
  previous_status: string | null;
  last_status_change_at: string | null;
  status_change_reason: string | null;
  last_heartbeat_at: string | null;
  heartbeat_interval_seconds: number;
  heartbeat_timeout_seconds: number;
  grace_period_seconds: number;
  remote_control_enabled: boolean;
  battery_level: number | null;
  wifi_strength: number | null;
  created_at: string;
  [field: string]: unknown;
}

export interface TransitionView {
  id: number;
  device_id: number;
  from_status: string;
  to_status: string;
  reason: string;
  source: string;
  at: string;
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export async function getDevice(app: TestApp, id: number): Promise<DeviceView> {
  return dataOf<DeviceView>(await app.admin('GET', `/api/devices/${id}`));
}

/** Every page of a list endpoint, following next_cursor (`cursorParam` is `after` for the feed). */
export async function walk<T>(app: TestApp, url: string, cursorParam = 'cursor'): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const separator = url.includes('?') ? '&' : '?';
    const page: Page<T> = dataOf<Page<T>>(await app.admin('GET', cursor === null ? url : `${url}${separator}${cursorParam}=${cursor}`));
    items.push(...page.items);
    cursor = page.next_cursor;
    pages++;
    if (pages > 10_000) throw new Error(`paging ${url} does not end`);
  } while (cursor !== null);
  return { items, pages };
}

/** A device's history through the API, oldest first. */
export async function historyOf(app: TestApp, id: number): Promise<TransitionView[]> {
  return (await walk<TransitionView>(app, `/api/devices/${id}/transitions?limit=7`)).items.reverse();
}

/**
 * The history invariant of CONTRACT.md §2, read through the API: per device a
 * chain from never_connected, each from_status the previous to_status, ending
 * at the current status; and the fleet feed holds exactly the same records.
 */
export async function expectSoundHistory(app: TestApp): Promise<void> {
  const devices = (await walk<DeviceView>(app, '/api/devices?limit=13')).items;
  const feed = (await walk<TransitionView>(app, '/api/transitions?limit=11', 'after')).items;
  const fromHistories: number[] = [];
  for (const device of devices) {
    const history = await historyOf(app, device.id);
    let current = 'never_connected';
    for (const t of history) {
      expect(t.from_status, `device ${device.id} transition ${t.id}`).toBe(current);
      expect(t.to_status, `device ${device.id} transition ${t.id}`).not.toBe(t.from_status);
      current = t.to_status;
    }
    expect(device.status, `device ${device.id}: current status vs end of history`).toBe(current);
    const last = history.at(-1);
    if (last) {
      expect(device.previous_status).toBe(last.from_status);
      expect(device.status_change_reason).toBe(last.reason);
    }
    fromHistories.push(...history.map((t) => t.id));
  }
  expect(feed.map((t) => t.id).sort((a, b) => a - b)).toEqual(fromHistories.sort((a, b) => a - b));
}

/** The value of one sample in /metrics (0 when the series has no sample yet). */
export async function metric(app: TestApp, name: string, labels: Record<string, string> = {}): Promise<number> {
  const response = await app.request('GET', '/metrics');
  expect(response.statusCode).toBe(200);
  const wanted = Object.entries(labels);
  for (const line of response.body.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (wanted.every(([key, value]) => present[key] === value)) return Number(match[3]);
  }
  return 0;
}

export const seconds = (s: number) => s * 1000;
