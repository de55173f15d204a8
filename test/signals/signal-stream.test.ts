import { describe, expect, it } from 'vitest';

import { startTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';

/** Opens the device's SSE stream on a real socket; `next()` resolves with the next event's data. */
async function openStream(app: TestApp, token: string) {
  const address = await app.app.listen({ port: 0, host: '127.0.0.1' });
  const controller = new AbortController();
  const response = await fetch(`${address}/api/devices/signals`, {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  const reader = response.body!.getReader();
  let buffer = '';
  return {
    response,
    async next(): Promise<{ event: string; data: unknown }> {
      for (;;) {
        const match = /event: (\w+)\ndata: (.*)\n\n/.exec(buffer);
        if (match) {
          buffer = buffer.slice(match.index + match[0].length);
          return { event: match[1]!, data: JSON.parse(match[2]!) };
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buffer += new TextDecoder().decode(value);
      }
    },
    close: () => controller.abort(),
  };
}

describe('signal stream (GET /api/devices/signals)', () => {
  it('pushes a reconnect signal at once, and the next heartbeat does not repeat it', async () => {
    const app = await startTestApp();
    const { id, token } = await app.addDevice();
    const stream = await openStream(app, token);
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream');
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect((await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 7 })).statusCode).toBe(202);
    expect(await stream.next()).toEqual({ event: 'reconnect', data: { should_reconnect: true, reconnect_delay_seconds: 7 } });
    const heartbeat = (await app.heartbeat(token)).json().data;
    expect(heartbeat.should_reconnect).toBe(false);
    stream.close();
  });

  it('delivers a signal that was already pending when the stream opens', async () => {
    const app = await startTestApp();
    const { id, token } = await app.addDevice();
    await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 3 });
    const stream = await openStream(app, token);
    expect((await stream.next()).data).toEqual({ should_reconnect: true, reconnect_delay_seconds: 3 });
    stream.close();
  });

  it('with Redis, still pushes each signal once: directly and through Redis, one claim wins', async () => {
    const prefix = `fptest:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 8)}:`;
    const app = await startTestApp({ env: { REDIS_URL: process.env.FLEETPULSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', FLEETPULSE_REDIS_PREFIX: prefix } });
    expect(await app.ctx.redis!.ready(3000)).toBe(true);
    const { id, token } = await app.addDevice();
    const stream = await openStream(app, token);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await app.admin('POST', `/api/devices/${id}/reconnect`, { delay_seconds: 2 });
    expect((await stream.next()).data).toEqual({ should_reconnect: true, reconnect_delay_seconds: 2 });
    await new Promise((resolve) => setTimeout(resolve, 200)); // the copy that came back through Redis finds nothing to claim
    expect(app.logs.filter((l) => l.msg === 'Could not push reconnect signals')).toEqual([]);
    expect((await app.request('GET', '/metrics')).body).toMatch(/fleetpulse_reconnect_signals_delivered_total 1\n/);
    stream.close();
  });

  it('refuses anyone but a device', async () => {
    const app = await startTestApp();
    expect((await app.admin('GET', '/api/devices/signals')).statusCode).toBe(403);
    expect((await app.request('GET', '/api/devices/signals')).statusCode).toBe(401);
  });
});
