import { describe, expect, it } from 'vitest';

import { databaseChainProblems as chainProblems } from '../support/history.js';
import { dataOf, expectError, expectSoundHistory, getDevice, historyOf, metric, seconds, startApp, transitionLogs, walk } from './support.js';
import type { Page, TestApp, TransitionView } from './support.js';

const at = (app: TestApp, offsetMs: number) => new Date(Date.parse('2026-02-02T10:00:00.000Z') + offsetMs).toISOString();

async function statusOf(app: TestApp, id: number): Promise<string> {
  return (await getDevice(app, id)).status;
}

describe('the monitor', () => {
  it('keeps a device connected at exactly the timeout and marks it temporarily offline just past it', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(30));
    await app.sweep();
    expect(await statusOf(app, id)).toBe('connected');

    await app.advance(1);
    const result = await app.sweep();
    expect(result.transitions).toHaveLength(1);
    expect(await getDevice(app, id)).toMatchObject({
      status: 'temporarily_offline',
      previous_status: 'connected',
      last_status_change_at: at(app, seconds(30)),
      status_change_reason: 'No heartbeat for 31s (grace period: 60s)',
    });
    expect((await historyOf(app, id)).at(-1)).toMatchObject({ from_status: 'connected', to_status: 'temporarily_offline', source: 'system', at: at(app, seconds(30)) });
  });

  it('keeps it temporarily offline at exactly the grace period and marks it offline just past it', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(45));
    await app.sweep();
    expect(await statusOf(app, id)).toBe('temporarily_offline');
    await app.advance(seconds(15));
    await app.sweep();
    expect(await statusOf(app, id)).toBe('temporarily_offline');

    await app.advance(1);
    await app.sweep();
    expect(await getDevice(app, id)).toMatchObject({
      status: 'offline',
      previous_status: 'temporarily_offline',
      last_status_change_at: at(app, seconds(60)),
      status_change_reason: 'No heartbeat for 61s; grace period of 60s exceeded',
    });
    expect((await historyOf(app, id)).at(-1)).toMatchObject({ from_status: 'temporarily_offline', to_status: 'offline', source: 'system', at: at(app, seconds(60)) });
  });

  it('goes straight from connected to offline when no sweep ran between timeout and grace, stamped when grace ran out', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(90));
    await app.sweep();
    expect((await historyOf(app, id)).slice(1).map((t) => [t.from_status, t.to_status, t.at])).toEqual([['connected', 'offline', at(app, seconds(60))]]);
  });

  it("follows each device's own thresholds", async () => {
    const app = await startApp();
    const quick = await app.addDevice({ heartbeat_interval_seconds: 2, heartbeat_timeout_seconds: 5, grace_period_seconds: 10 });
    const slow = await app.addDevice({ heartbeat_interval_seconds: 60, heartbeat_timeout_seconds: 120, grace_period_seconds: 600 });
    await app.heartbeat(quick.token);
    await app.heartbeat(slow.token);
    await app.advance(seconds(6));
    await app.sweep();
    expect([await statusOf(app, quick.id), await statusOf(app, slow.id)]).toEqual(['temporarily_offline', 'connected']);
    await app.advance(seconds(5));
    await app.sweep();
    expect([await statusOf(app, quick.id), await statusOf(app, slow.id)]).toEqual(['offline', 'connected']);
  });

  it('never moves a device that never connected, nor an offline one', async () => {
    const app = await startApp();
    const quiet = await app.addDevice();
    const gone = await app.addDevice();
    await app.heartbeat(gone.token);
    await app.advance(seconds(120));
    await app.sweep();
    await app.advance(seconds(120));
    await app.sweep();
    expect(await statusOf(app, quiet.id)).toBe('never_connected');
    expect(await statusOf(app, gone.id)).toBe('offline');
    expect(await historyOf(app, quiet.id)).toEqual([]);
    expect(await historyOf(app, gone.id)).toHaveLength(2);
  });

  it('applies a shorter timeout set by an admin at the next sweep', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(20));
    await app.sweep();
    expect(await statusOf(app, id)).toBe('connected');
    dataOf(await app.admin('PATCH', `/api/devices/${id}`, { heartbeat_interval_seconds: 5, heartbeat_timeout_seconds: 10 }));
    expect(await statusOf(app, id)).toBe('connected'); // the admin changes thresholds, never the status
    await app.sweep();
    expect(await statusOf(app, id)).toBe('temporarily_offline');
  });

  it('postpones offline when an admin lengthens the grace period', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(40));
    await app.sweep();
    dataOf(await app.admin('PATCH', `/api/devices/${id}`, { grace_period_seconds: 300 }));
    await app.advance(seconds(60));
    await app.sweep();
    expect(await statusOf(app, id)).toBe('temporarily_offline');
    await app.advance(seconds(201));
    await app.sweep();
    expect(await statusOf(app, id)).toBe('offline');
  });

  it("does not blame devices for the server's own downtime", async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(10));

    // The server is down for ten minutes: nobody records liveness, nobody can send a heartbeat.
    app.clock.advance(seconds(600));
    expect((await app.sweep()).transitions).toEqual([]);
    await app.beat(); // back up

    await app.sweep();
    await app.advance(seconds(30));
    await app.sweep();
    expect(await statusOf(app, id)).toBe('connected');
    expect(await historyOf(app, id)).toHaveLength(1);

    await app.advance(1);
    await app.sweep();
    expect(await statusOf(app, id)).toBe('temporarily_offline');
  });

  it("does not record a stale transition for a device that reports right after the server's downtime", async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    app.clock.advance(seconds(600));
    await app.beat();
    await app.heartbeat(token);
    expect(await historyOf(app, id)).toHaveLength(1);
    expect(await statusOf(app, id)).toBe('connected');
  });
});

describe("a device's transitions", () => {
  it('are listed newest first with from_status, to_status, reason, source and at', async () => {
    const app = await startApp();
    const { id, token } = await app.addDevice();
    await app.heartbeat(token);
    await app.advance(seconds(35));
    await app.sweep();
    await app.advance(seconds(30));
    await app.sweep();
    await app.heartbeat(token);

    const page = dataOf<Page<TransitionView>>(await app.admin('GET', `/api/devices/${id}/transitions`));
    expect(page.next_cursor).toBeNull();
    expect(page.items.map((t) => `${t.from_status}>${t.to_status}`)).toEqual([
      'offline>connected',
      'temporarily_offline>offline',
      'connected>temporarily_offline',
      'never_connected>connected',
    ]);
    for (const t of page.items) {
      expect(t).toMatchObject({ from_status: expect.any(String), to_status: expect.any(String), reason: expect.any(String), source: expect.stringMatching(/^(device|system)$/) });
      expect(t.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    expect(page.items.map((t) => t.source)).toEqual(['device', 'system', 'system', 'device']);
    expect(page.items.map((t) => t.at)).toEqual([at(app, seconds(65)), at(app, seconds(60)), at(app, seconds(30)), at(app, 0)]);
  });

  it('page by limit and cursor, newest to oldest, each exactly once', async () => {
    const app = await startApp({ env: { FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0' } });
    const { id, token } = await app.addDevice({ heartbeat_interval_seconds: 1, heartbeat_timeout_seconds: 1, grace_period_seconds: 2 });
    for (let i = 0; i < 6; i++) {
      await app.heartbeat(token);
      await app.advance(1500);
      await app.sweep();
    }
    const all = dataOf<Page<TransitionView>>(await app.admin('GET', `/api/devices/${id}/transitions?limit=1000`)).items;
    expect(all).toHaveLength(12);
    const paged = await walk<TransitionView>(app, `/api/devices/${id}/transitions?limit=5`);
    expect(paged.items.map((t) => t.id)).toEqual(all.map((t) => t.id));
    expect(all.map((t) => t.id)).toEqual([...all.map((t) => t.id)].sort((a, b) => b - a));
    expect(dataOf<Page<TransitionView>>(await app.admin('GET', `/api/devices/${id}/transitions?limit=3`)).items).toHaveLength(3);
  });

  it('of a quiet device are an empty page; of an unknown device a 404', async () => {
    const app = await startApp();
    const { id } = await app.addDevice();
    expect(dataOf(await app.admin('GET', `/api/devices/${id}/transitions`))).toEqual({ items: [], next_cursor: null });
    expectError(await app.admin('GET', '/api/devices/4040/transitions'), 404, 'not_found');
  });
});

describe('the fleet transition feed', () => {
  async function busyFleet() {
    const app = await startApp();
    const a = await app.addDevice({ name: 'a' });
    const b = await app.addDevice({ name: 'b' });
    await app.heartbeat(a.token); // 1: a never_connected>connected
    await app.advance(seconds(10));
    await app.heartbeat(b.token); // 2: b never_connected>connected
    await app.advance(seconds(25));
    await app.sweep(); // 3: a connected>temporarily_offline
    await app.advance(seconds(10));
    await app.sweep(); // 4: b connected>temporarily_offline
    await app.heartbeat(a.token); // 5: a temporarily_offline>connected
    return { app, a, b };
  }

  it('lists every transition in commit order', async () => {
    const { app, a, b } = await busyFleet();
    const page = dataOf<Page<TransitionView & { device_id: number }>>(await app.admin('GET', '/api/transitions'));
    expect(page.items.map((t) => [t.device_id, t.from_status, t.to_status])).toEqual([
      [a.id, 'never_connected', 'connected'],
      [b.id, 'never_connected', 'connected'],
      [a.id, 'connected', 'temporarily_offline'],
      [b.id, 'connected', 'temporarily_offline'],
      [a.id, 'temporarily_offline', 'connected'],
    ]);
    for (const t of page.items) expect(t).toMatchObject({ reason: expect.any(String), source: expect.any(String), at: expect.any(String) });
    expect(page.next_cursor).toBeNull();
  });

  it('pages with after= and limit=, each transition exactly once', async () => {
    const { app } = await busyFleet();
    const all = dataOf<Page<TransitionView>>(await app.admin('GET', '/api/transitions?limit=1000')).items;
    for (const limit of [1, 2, 4, 5]) {
      const { items } = await walk<TransitionView>(app, `/api/transitions?limit=${limit}`, 'after');
      expect(items.map((t) => t.id), `limit ${limit}`).toEqual(all.map((t) => t.id));
    }
    const first = dataOf<Page<TransitionView>>(await app.admin('GET', '/api/transitions?limit=2'));
    expect(first.items).toHaveLength(2);
    expect(first.next_cursor).toEqual(expect.any(String));
    const rest = dataOf<Page<TransitionView>>(await app.admin('GET', `/api/transitions?after=${first.next_cursor}`));
    expect(rest.items.map((t) => t.id)).toEqual(all.slice(2).map((t) => t.id));
  });

  it('lets a poller resume from where it stopped and see only newer transitions', async () => {
    const { app, b } = await busyFleet();
    const seen = dataOf<Page<TransitionView>>(await app.admin('GET', '/api/transitions')).items;
    const resume = seen.at(-1)!.cursor!;
    expect(resume).toEqual(expect.any(String));
    expect(dataOf<Page<TransitionView>>(await app.admin('GET', `/api/transitions?after=${resume}`)).items).toEqual([]);

    await app.heartbeat(b.token);
    const fresh = dataOf<Page<TransitionView & { device_id: number }>>(await app.admin('GET', `/api/transitions?after=${resume}`)).items;
    expect(fresh.map((t) => [t.device_id, t.from_status, t.to_status])).toEqual([[b.id, 'temporarily_offline', 'connected']]);
  });
});

describe('the history invariant', () => {
  /** A small deterministic generator, so a failure replays. */
  function random(seed: number) {
    let state = seed >>> 0;
    return () => {
      state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
      return state / 2 ** 32;
    };
  }

  const THRESHOLDS = [
    { heartbeat_interval_seconds: 1, heartbeat_timeout_seconds: 2, grace_period_seconds: 4 },
    { heartbeat_interval_seconds: 2, heartbeat_timeout_seconds: 3, grace_period_seconds: 7 },
    { heartbeat_interval_seconds: 1, heartbeat_timeout_seconds: 5, grace_period_seconds: 6 },
    { heartbeat_interval_seconds: 3, heartbeat_timeout_seconds: 8, grace_period_seconds: 20 },
  ];

  it.each([1, 7, 2026])('holds through a random run of heartbeats, silences, sweeps and threshold changes (seed %i)', async (seed) => {
    const app = await startApp({ env: { FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0' } });
    const next = random(seed);
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
    const devices = [];
    for (let i = 0; i < 6; i++) devices.push(await app.addDevice({ name: `r${i}`, ...pick(THRESHOLDS) }));

    for (let step = 1; step <= 150; step++) {
      const roll = next();
      if (roll < 0.4) {
        expect((await app.heartbeat(pick(devices).token, { battery_level: step % 101 })).statusCode).toBe(200);
      } else if (roll < 0.5) {
        // Several devices at once, racing a sweep.
        await Promise.all([...devices.filter(() => next() < 0.5).map((d) => app.heartbeat(d.token)), app.sweep()]);
      } else if (roll < 0.8) {
        await app.advance(Math.floor(next() * 6000));
      } else if (roll < 0.95) {
        await app.sweep();
      } else {
        expect((await app.admin('PATCH', `/api/devices/${pick(devices).id}`, pick(THRESHOLDS))).statusCode).toBe(200);
      }
      if (step % 50 === 0) await expectSoundHistory(app);
    }

    expect(await chainProblems(app.ctx.database.db)).toEqual([]);
    const feed = (await walk<TransitionView>(app, '/api/transitions?limit=1000', 'after')).items;
    expect(new Set(feed.map((t) => t.to_status))).toEqual(new Set(['connected', 'temporarily_offline', 'offline']));
    expect(transitionLogs(app)).toHaveLength(feed.length);
    let counted = 0;
    for (const from of ['never_connected', 'connected', 'temporarily_offline', 'offline']) {
      for (const to of ['connected', 'temporarily_offline', 'offline']) counted += await metric(app, 'fleetpulse_status_transitions_total', { from, to });
    }
    expect(counted).toBe(feed.length);
  });
});
