import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateToken, hashToken } from '../../src/auth/tokens.js';
import { insertApiToken } from '../../src/auth/api-token.repository.js';
import { parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import { startTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { createTestDatabase, DIALECTS } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { runCli } from './support.js';

/** Every row that matters, as the database holds it. */
async function snapshot(url: string) {
  const database = openDatabase(parseDatabaseUrl(url), { poolSize: 1 });
  try {
    const { db } = database;
    return {
      devices: await db.selectFrom('devices').selectAll().orderBy('id').execute(),
      tokens: await db.selectFrom('api_tokens').selectAll().orderBy('id').execute(),
      transitions: await db.selectFrom('device_transitions').selectAll().orderBy('id').execute(),
    };
  } finally {
    await database.close();
  }
}

/** A small fleet with history: devices that connected and went quiet, and a staff token. */
async function populate(app: TestApp): Promise<void> {
  const quiet = await app.addDevice({ name: 'Kiosk lobby ☕', heartbeat_interval_seconds: 5, heartbeat_timeout_seconds: 10, grace_period_seconds: 20 });
  const busy = await app.addDevice({ name: 'Signage 2' });
  await app.addDevice({ name: 'never seen' });
  expect((await app.heartbeat(quiet.token, { battery_level: 80, wifi_strength: -50 })).statusCode).toBe(200);
  expect((await app.heartbeat(busy.token)).statusCode).toBe(200);
  await app.advance(25_000);
  await app.sweep();
  await insertApiToken(app.ctx.database.db, { role: 'viewer', token_hash: hashToken(generateToken()), label: 'wallboard' }, app.clock());
}

describe.each(DIALECTS)('backup and restore on %s', (kind) => {
  let source: TestDatabase;
  let app: TestApp;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetpulse-backup-'));
    source = await createTestDatabase(kind, { file: true });
  });
  afterAll(async () => {
    await source?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips devices, token hashes and transitions, and refuses a non-empty database without --force', async () => {
    app = await startTestApp({ databaseUrl: source.url });
    await populate(app);
    const original = await snapshot(source.url);
    expect(original.devices).toHaveLength(3);
    expect(original.transitions.map((t) => t.to_status)).toEqual(expect.arrayContaining(['connected', 'offline']));

    const file = join(dir, `fleet.${kind === 'sqlite' ? 'sqlite' : 'sql'}`);
    const backup = await runCli(['backup', '--out', file], { DATABASE_URL: source.url });
    expect(backup.err).toBe('');
    expect(backup.code).toBe(0);
    expect(backup.out).toMatch(/^backup written: /);

    // Life goes on after the backup.
    const later = await app.addDevice({ name: 'added after the backup' });
    await app.heartbeat(later.token);
    expect((await snapshot(source.url)).devices).toHaveLength(4);

    const refused = await runCli(['restore', file], { DATABASE_URL: source.url });
    expect(refused.code).toBe(1);
    expect(refused.err.split('\n')).toHaveLength(1);
    expect(refused.err).toMatch(/not empty: .*4 devices.*--force/);
    expect((await snapshot(source.url)).devices).toHaveLength(4);

    const restored = await runCli(['restore', file, '--force'], { DATABASE_URL: source.url });
    expect(restored.err).toBe('');
    expect(restored.code).toBe(0);
    expect(await snapshot(source.url)).toEqual(original);

    // A fresh, empty database needs no --force.
    const fresh = await createTestDatabase(kind, { file: true });
    try {
      const intoFresh = await runCli(['restore', file], { DATABASE_URL: fresh.url });
      expect(intoFresh.err).toBe('');
      expect(await snapshot(fresh.url)).toEqual(original);
      const migrate = await runCli(['migrate', 'status'], { DATABASE_URL: fresh.url });
      expect(migrate.out).not.toMatch(/pending/);
    } finally {
      await fresh.drop();
    }
    await app.close();
  });

  it('refuses an existing --out file, and a cut-short or foreign backup without touching the database', async () => {
    const existing = join(dir, 'existing');
    await writeFile(existing, 'keep me');
    const clash = await runCli(['backup', '--out', existing], { DATABASE_URL: source.url });
    expect(clash.code).toBe(1);
    expect(clash.err).toMatch(/already exists/);
    expect(await readFile(existing, 'utf8')).toBe('keep me');

    const before = await snapshot(source.url);
    const foreign = await runCli(['restore', existing, '--force'], { DATABASE_URL: source.url });
    expect(foreign.err).toMatch(/not a fleetpulse backup/);
    if (kind !== 'sqlite') {
      const file = join(dir, 'cut.sql');
      expect((await runCli(['backup', '--out', file], { DATABASE_URL: source.url })).code).toBe(0);
      await truncate(file, 2000);
      const cut = await runCli(['restore', file, '--force'], { DATABASE_URL: source.url });
      expect(cut.code).toBe(1);
      expect(cut.err).toMatch(/incomplete/);
    }
    expect(await snapshot(source.url)).toEqual(before);
  });

  if (kind !== 'sqlite') {
    it('names the Debian package to install when the dump tools are missing', async () => {
      const result = await runCli(['backup', '--out', join(dir, 'never.sql')], { DATABASE_URL: source.url, PATH: '/nonexistent' });
      expect(result.code).toBe(1);
      expect(result.err.split('\n')).toHaveLength(1);
      expect(result.err).toContain(kind === 'postgres' ? 'postgresql-client' : 'mariadb-client');
    });
  }

  if (kind === 'sqlite') {
    it('takes a consistent copy while a server keeps writing', async () => {
      const busy = await startTestApp({ databaseUrl: source.url });
      const device = await busy.addDevice({ name: 'chatty' });
      let writing = true;
      const writer = (async () => {
        let beats = 0;
        while (writing) {
          await busy.beat();
          await busy.heartbeat(device.token);
          beats++;
        }
        return beats;
      })();
      const file = join(dir, 'busy.sqlite');
      const result = await runCli(['backup', '--out', file], { DATABASE_URL: source.url });
      writing = false;
      expect(await writer).toBeGreaterThan(0);
      expect(result.err).toBe('');
      const fresh = await createTestDatabase('sqlite', { file: true });
      try {
        expect((await runCli(['restore', file], { DATABASE_URL: fresh.url })).code).toBe(0);
        expect((await snapshot(fresh.url)).devices.map((d) => d.name)).toContain('chatty');
      } finally {
        await fresh.drop();
      }
    });
  }
});
