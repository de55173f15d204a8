import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';

import { hashToken } from '../../src/auth/tokens.js';
import { migrateDown, migrateUp, migrationStatus, pendingMigrations } from '../../src/db/migrate.js';
import { MIGRATIONS } from '../../src/db/migrations/index.js';
import { countDevicesByStatus, findDevice, listDevices } from '../../src/devices/device.repository.js';
import { previewSweep } from '../../src/monitor/sweep.js';
import { listTransitionFeed } from '../../src/transitions/transition.repository.js';
import { startTestApp, transitionLogs } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { databaseChainProblems as chainProblems } from '../support/history.js';
import { DIALECTS } from '../support/databases.js';

const FAST = { heartbeat_interval_seconds: 1, heartbeat_timeout_seconds: 2, grace_period_seconds: 4 };

async function statusOf(app: TestApp, id: number): Promise<string | undefined> {
  return (await findDevice(app.ctx.database.db, id))?.status;
}

describe.each(DIALECTS)('on %s', (dialect) => {
  it('migrates down to nothing and up again (every migration is reversible)', async () => {
    const app = await startTestApp({ dialect });
    const names = Object.keys(MIGRATIONS);
    expect(await pendingMigrations(app.ctx.database)).toEqual([]);
    expect(await migrateDown(app.ctx.database, names.length)).toEqual([...names].reverse());
    expect((await migrationStatus(app.ctx.database)).every((m) => m.executedAt === null)).toBe(true);
    expect(await migrateUp(app.ctx.database, 1)).toEqual([names[0]]);
    expect(await migrateUp(app.ctx.database)).toEqual(names.slice(1));
  });

  it('stores any Unicode and SQL-looking names verbatim and finds them by substring', async () => {
    const app = await startTestApp({ dialect });
    const names = ['Kiosk 😀 Lobby', '大堂屏幕 ٣', "x'); DROP TABLE devices;--", '100% _done_', 'É'.repeat(200)];
    for (const name of names) await app.addDevice({ name });
    const rows = await listDevices(app.ctx.database.db, { limit: 50 });
    expect(rows.map((r) => r.name)).toEqual(names);
    expect((await listDevices(app.ctx.database.db, { q: '😀', limit: 50 })).map((r) => r.name)).toEqual([names[0]]);
    expect((await listDevices(app.ctx.database.db, { q: '% _', limit: 50 })).map((r) => r.name)).toEqual([names[3]]);
    expect((await listDevices(app.ctx.database.db, { q: 'lobby', limit: 50 })).map((r) => r.name)).toEqual([names[0]]);
  });

  it('walks the tiers and back, with one transition row and one log line per change', async () => {
    const app = await startTestApp({ dialect });
    const { id, token } = await app.addDevice(FAST);
    expect((await app.heartbeat(token, { battery_level: 50 })).statusCode).toBe(200);
    await app.advance(2500);
    await app.sweep();
    expect(await statusOf(app, id)).toBe('temporarily_offline');
    await app.advance(2000);
    await app.sweep();
    expect(await statusOf(app, id)).toBe('offline');
    expect((await app.heartbeat(token)).statusCode).toBe(200);
    expect(await statusOf(app, id)).toBe('connected');

    const feed = await listTransitionFeed(app.ctx.database.db, 100);
    expect(feed.map((t) => `${t.from_status}>${t.to_status}`)).toEqual([
      'never_connected>connected',
      'connected>temporarily_offline',
      'temporarily_offline>offline',
      'offline>connected',
    ]);
    expect(transitionLogs(app)).toHaveLength(4);
    expect(await chainProblems(app.ctx.database.db)).toEqual([]);
    expect((await findDevice(app.ctx.database.db, id))?.battery_level).toBe(50);
  });

  it('writes a whole batch of heartbeats in one transaction, duplicates included', async () => {
    const app = await startTestApp({ dialect, env: { FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0' } });
    const created = await app.ctx.devices.create(Array.from({ length: 1500 }, (_, i) => ({ name: `bulk-${i}`, ...FAST })));
    const inputs = created.flatMap(({ device, token }) => [
      { deviceId: device.id, tokenHash: hashToken(token), telemetry: { battery_level: 10 } },
      { deviceId: device.id, tokenHash: hashToken(token), telemetry: { wifi_strength: -40 } },
    ]);
    const results = await Promise.all(inputs.map((input) => app.ctx.heartbeats.submit(input)));
    expect(results.every((r) => r?.status === 'connected')).toBe(true);
    const counts = await countDevicesByStatus(app.ctx.database.db);
    expect(counts.get('connected')).toBe(1500);
    const one = await findDevice(app.ctx.database.db, created[7]!.device.id);
    expect([one?.battery_level, one?.wifi_strength]).toEqual([10, -40]);
    expect(transitionLogs(app)).toHaveLength(1500);
    expect(await chainProblems(app.ctx.database.db)).toEqual([]);
  });

  it('refuses, under the row lock, a heartbeat whose token was rotated after it authenticated', async () => {
    const app = await startTestApp({ dialect });
    const { device, token } = (await app.ctx.devices.create([{ name: 'rotating' }]))[0]!;
    const staleHash = hashToken(token);
    await app.ctx.devices.rotateToken(device.id);
    expect(await app.ctx.heartbeats.submit({ deviceId: device.id, tokenHash: staleHash, telemetry: {} })).toBeNull();
    expect(await statusOf(app, device.id)).toBe('never_connected');
  });

  it('sweeps only due devices, and sets aside one whose row cannot be evaluated', async () => {
    const app = await startTestApp({ dialect });
    const devices = [];
    for (let i = 0; i < 3; i++) devices.push(await app.addDevice(FAST));
    for (const d of devices) await app.heartbeat(d.token);
    await app.ctx.database.db
      .updateTable('devices')
      .set({ status: sql`'bogus'` as never })
      .where('id', '=', devices[0]!.id)
      .execute();
    await app.advance(2500);

    const preview = await previewSweep(app.ctx.sweepDeps, app.clock());
    expect(preview.transitions).toHaveLength(2);
    expect(await statusOf(app, devices[1]!.id)).toBe('connected'); // a dry run changes nothing

    const result = await app.sweep();
    expect(result.transitions.map((t) => t.device_id)).toEqual([devices[1]!.id, devices[2]!.id]);
    const broken = await findDevice(app.ctx.database.db, devices[0]!.id);
    expect(broken?.next_check_at).toBeGreaterThan(app.clock() + 3_000_000);
    expect(app.logs.some((l) => l.msg === 'Device evaluation failed; checking it again in an hour')).toBe(true);
    expect((await app.sweep()).checked).toBe(0);
  });

  it('does not blame devices for the server being down: silence counts from when it came back', async () => {
    const app = await startTestApp({ dialect });
    const { id, token } = await app.addDevice(FAST);
    await app.heartbeat(token);
    app.clock.advance(60_000); // the server was down for a minute: no liveness beats
    expect((await app.sweep()).skipped).toBe('no_receiver');
    await app.beat(); // back up
    expect((await app.sweep()).transitions).toEqual([]);
    await app.advance(2000);
    expect((await app.sweep()).transitions).toEqual([]);
    expect(await statusOf(app, id)).toBe('connected');
    await app.advance(1000);
    expect((await app.sweep()).transitions.map((t) => t.to_status)).toEqual(['temporarily_offline']);
  });

  it('keeps chains intact when two replicas heartbeat and sweep the same devices at once', async () => {
    const first = await startTestApp({ dialect, env: { FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0' } });
    if (dialect === 'sqlite') return; // one in-memory database cannot be shared; the SQLite file case is covered by process tests
    const second = await startTestApp({ dialect, databaseUrl: await urlOf(first), env: { FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '0' } });
    second.clock.set(first.clock());
    const devices = await first.ctx.devices.create(Array.from({ length: 60 }, (_, i) => ({ name: `race-${i}`, ...FAST })));
    for (let round = 0; round < 12; round++) {
      const step = 700;
      first.clock.advance(step);
      second.clock.advance(step);
      await first.beat();
      await Promise.all([
        first.sweep(),
        second.sweep(),
        ...devices
          .filter((_, i) => (i + round) % 3 !== 0)
          .map(({ device, token }, i) =>
            (i % 2 ? first : second).ctx.heartbeats.submit({ deviceId: device.id, tokenHash: hashToken(token), telemetry: {} }),
          ),
      ]);
    }
    expect(await chainProblems(first.ctx.database.db)).toEqual([]);
    const rows = await first.ctx.database.db.selectFrom('device_transitions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(transitionLogs(first).length + transitionLogs(second).length).toBe(Number(rows.n));
  });
});

async function urlOf(app: TestApp): Promise<string> {
  return app.ctx.config.database.url;
}
