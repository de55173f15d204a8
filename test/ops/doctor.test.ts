import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';

import { loadConfig, parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import type { Database } from '../../src/db/database.js';
import { migrateUp } from '../../src/db/migrate.js';
import { acquireLease, beatLiveness } from '../../src/monitor/service-state.repository.js';
import { runDoctor } from '../../src/ops/doctor.js';
import type { CheckResult } from '../../src/ops/doctor.js';
import { createTestDatabase, DIALECTS } from '../support/databases.js';
import { runCli } from './support.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function migratedDatabase(kind: (typeof DIALECTS)[number]): Promise<{ url: string; database: Database }> {
  const test = await createTestDatabase(kind, { file: true });
  const database = openDatabase(parseDatabaseUrl(test.url), { poolSize: 1 });
  cleanups.push(() => test.drop(), () => database.close());
  await migrateUp(database);
  return { url: test.url, database };
}

const byName = (results: CheckResult[]) => Object.fromEntries(results.map((r) => [r.name, r]));

describe.each(DIALECTS)('fleetpulse doctor on %s', (kind) => {
  it('passes a healthy installation: a server beating, a monitor leading, clocks agreeing', async () => {
    const { url, database } = await migratedDatabase(kind);
    const now = Date.now();
    await beatLiveness(database.db, now, 3000);
    await acquireLease(database.db, 'monitor', 'replica-1', now, 3000);
    const result = await runCli(['doctor'], { DATABASE_URL: url, REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(result.code).toBe(0);
    const lines = result.out.split('\n');
    for (const name of ['database', 'migrations', 'serving', 'monitor', 'clock', 'redis']) {
      expect(lines.find((l) => l.includes(` ${name} `) || l.includes(` ${name}`))).toMatch(/^PASS /);
    }
    if (kind === 'sqlite') expect(result.out).toMatch(/^PASS {2}storage .* writable; .* free/m);
    expect(lines.at(-1)).toMatch(/^doctor: \d+ ok, 0 warnings, 0 failures$/);
  });

  it('fails when servers are up but no monitor leads, and warns about pending migrations', async () => {
    const test = await createTestDatabase(kind, { file: true });
    const database = openDatabase(parseDatabaseUrl(test.url), { poolSize: 1 });
    cleanups.push(() => test.drop(), () => database.close());
    await migrateUp(database);
    const config = loadConfig({ DATABASE_URL: test.url });
    const now = Date.now();
    await beatLiveness(database.db, now, 3000);
    await acquireLease(database.db, 'monitor', 'crashed-replica', now - 60_000, 3000);
    const checks = byName(await runDoctor({ config }));
    expect(checks.serving!.status).toBe('pass');
    expect(checks.monitor!.status).toBe('fail');
    expect(checks.monitor!.message).toMatch(/crashed-replica.*expired/);

    const result = await runCli(['doctor', '--json'], { DATABASE_URL: test.url });
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/^fleetpulse: doctor found 1 failing check/);
    const report = JSON.parse(result.out) as { ok: boolean; checks: CheckResult[] };
    expect(report.ok).toBe(false);
    expect(byName(report.checks).monitor!.status).toBe('fail');
  });

  it('fails on a database migrated by a newer build, and on a skewed clock', async () => {
    const { url, database } = await migratedDatabase(kind);
    await sql`INSERT INTO kysely_migration (name, timestamp) VALUES ('29990101_0001_from_the_future', '2999-01-01T00:00:00.000Z')`.execute(database.db);
    const checks = byName(await runDoctor({ config: loadConfig({ DATABASE_URL: url }), clock: () => Date.now() - 30_000 }));
    expect(checks.migrations!.status).toBe('fail');
    expect(checks.migrations!.message).toContain('29990101_0001_from_the_future');
    expect(checks.clock!.status).toBe('fail');
    expect(checks.clock!.message).toMatch(/database clock 30\.\d s ahead/);
  });

  it('warns, and exits 0, before the first migration', async () => {
    const test = await createTestDatabase(kind, { file: true });
    cleanups.push(() => test.drop());
    const result = await runCli(['doctor'], { DATABASE_URL: test.url });
    expect(result.code).toBe(0);
    expect(result.out).toMatch(kind === 'sqlite' ? /^WARN {2}database .*does not exist yet/m : /^WARN {2}migrations \d+ pending/m);
  });
});

describe('fleetpulse doctor when things are down', () => {
  it('fails, one line each, for an unreachable database and Redis', async () => {
    const result = await runCli(['doctor'], {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/^FAIL {2}database {3}postgres 127\.0\.0\.1:1\/nowhere unreachable: .*ECONNREFUSED/m);
    expect(result.out).toMatch(/^FAIL {2}redis {6}redis:\/\/127\.0\.0\.1:1 unreachable: .*ECONNREFUSED/m);
    expect(result.err.split('\n')).toHaveLength(1);
  });

  it('has --help', async () => {
    for (const command of ['doctor', 'backup', 'restore', 'smoke']) {
      const result = await runCli([command, '--help']);
      expect(result.code).toBe(0);
      expect(result.out).toMatch(/Usage: fleetpulse/);
    }
  });
});
