import { constants } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

import { Redis } from 'ioredis';

import type { Config } from '../config.js';
import { redactUrl } from '../config.js';
import { LIVENESS_GAP_MS } from '../context.js';
import { openDatabase } from '../db/database.js';
import type { Database } from '../db/database.js';
import { migrationStatus } from '../db/migrate.js';
import { readLease, readLiveness } from '../monitor/service-state.repository.js';
import { withTimeout } from './deadline.js';
import { appliedMigrationNames, databaseClockMs, listTables, ping } from './ops.repository.js';

export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly message: string;
}

export interface DoctorDeps {
  readonly config: Config;
  readonly clock?: () => number;
  /** Opens the database under check; tests may hand in their own. */
  readonly open?: (config: Config) => Database;
}

/** The name of the monitor lease (see src/server.ts). */
const MONITOR_LEASE = 'monitor';
const CHECK_TIMEOUT_MS = 5000;
const SLOW_QUERY_MS = 100;
const CLOCK_WARN_MS = 1000;
const CLOCK_FAIL_MS = 5000;
const DISK_FAIL_BYTES = 64 * 1024 ** 2;
const DISK_WARN_BYTES = 1024 ** 3;

const pass = (name: string, message: string): CheckResult => ({ name, status: 'pass', message });
const warn = (name: string, message: string): CheckResult => ({ name, status: 'warn', message });
const fail = (name: string, message: string): CheckResult => ({ name, status: 'fail', message });

function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return errorMessage(error.errors[0]);
  if (error instanceof Error) return (error.message || (error as { code?: string }).code || error.name).split('\n')[0]!;
  return String(error);
}

/** A check that throws is a FAIL with the error's first line, never a crash. */
async function guarded(name: string, check: () => Promise<CheckResult>): Promise<CheckResult> {
  try {
    return await withTimeout(check(), CHECK_TIMEOUT_MS);
  } catch (error) {
    return fail(name, errorMessage(error));
  }
}

export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (abs < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  if (abs < 172_800_000) return `${Math.round(ms / 3_600_000)} h`;
  return `${Math.round(ms / 86_400_000)} days`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function describeTarget(config: Config): string {
  const { database } = config;
  if (database.kind === 'sqlite') return `sqlite ${database.sqlitePath}`;
  const url = new URL(database.url);
  return `${database.kind} ${url.hostname}:${url.port || (database.kind === 'postgres' ? 5432 : 3306)}${url.pathname}`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** SQLite only: the file and its folder writable (WAL needs both), and room on the disk. */
export async function checkStorage(path: string): Promise<CheckResult> {
  if (path === ':memory:') {
    return warn('storage', 'sqlite::memory: keeps nothing and every process has its own; use a file for a server');
  }
  const dir = dirname(resolve(path));
  if (!(await exists(dir))) return warn('storage', `${dir} does not exist yet; \`fleetpulse migrate up\` or \`serve\` creates it`);
  try {
    await access(dir, constants.W_OK);
  } catch {
    return fail('storage', `${dir} is not writable by this user (SQLite needs to create -wal and -shm files there)`);
  }
  if (await exists(path)) {
    try {
      await access(path, constants.R_OK | constants.W_OK);
    } catch {
      return fail('storage', `${path} is not writable by this user`);
    }
  }
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const share = fs.blocks > 0 ? ` (${Math.round((100 * fs.bavail) / fs.blocks)}%)` : '';
  const summary = `${path} writable; ${formatBytes(free)} free${share}`;
  if (free < DISK_FAIL_BYTES) return fail('storage', `${summary}: SQLite will fail to write; free some space`);
  if (free < DISK_WARN_BYTES) return warn('storage', `${summary}: less than ${formatBytes(DISK_WARN_BYTES)}`);
  return pass('storage', summary);
}

export async function checkRedis(config: Config): Promise<CheckResult> {
  if (config.redisUrl === null) {
    return pass('redis', 'not configured (REDIS_URL unset): rate limits and caches are per process, fine for one replica');
  }
  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    connectTimeout: 2000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: unknown = null;
  redis.on('error', (error) => (lastError = error));
  try {
    const started = performance.now();
    await redis.connect();
    await redis.ping();
    const ms = performance.now() - started;
    return pass('redis', `${redactUrl(config.redisUrl)} answered PING in ${formatDuration(ms)}`);
  } catch (error) {
    return fail('redis', `${redactUrl(config.redisUrl)} unreachable: ${errorMessage(lastError ?? error)} (replicas fall back to per-process limits)`);
  } finally {
    redis.disconnect();
  }
}

async function checkMigrations(database: Database): Promise<CheckResult> {
  const known = await migrationStatus(database);
  const knownNames = new Set(known.map((m) => m.name));
  const applied = await appliedMigrationNames(database.db).catch(() => [] as string[]);
  const unknown = applied.filter((name) => !knownNames.has(name));
  if (unknown.length > 0) {
    return fail(
      'migrations',
      `the database has migration(s) this build does not know: ${unknown.join(', ')} (a newer build migrated it; deploy that build, or run \`migrate down\` with it)`,
    );
  }
  const pending = known.filter((m) => m.executedAt === null).map((m) => m.name);
  if (pending.length > 0) {
    const names = pending.length > 2 ? `${pending[0]} … ${pending.at(-1)}` : pending.join(', ');
    return warn('migrations', `${pending.length} pending: ${names} (\`fleetpulse migrate up\` applies them; /readyz answers 503 until then)`);
  }
  return pass('migrations', `up to date (${known.length} applied, latest ${known.at(-1)?.name ?? 'none'})`);
}

/** Whether a server is receiving heartbeats: one beats `service_state.alive_at` every second. */
async function checkServing(database: Database, now: number): Promise<{ result: CheckResult; serving: boolean }> {
  const { aliveAt } = await readLiveness(database.db);
  if (aliveAt === 0) return { result: warn('serving', 'no server has ever served from this database'), serving: false };
  const age = now - aliveAt;
  if (age <= LIVENESS_GAP_MS) return { result: pass('serving', `a server recorded liveness ${formatDuration(Math.max(0, age))} ago`), serving: true };
  return { result: warn('serving', `no server has recorded liveness for ${formatDuration(age)}: is \`fleetpulse serve\` running?`), serving: false };
}

/** A leader renews the lease every interval; one whose lease ran out more than an interval ago is gone. */
async function checkMonitor(database: Database, config: Config, now: number, serving: boolean): Promise<CheckResult> {
  const lease = await readLease(database.db, MONITOR_LEASE);
  const tolerance = config.monitorIntervalMs;
  if (lease && lease.holder !== null && Number(lease.expires_at) >= now - tolerance) {
    return pass('monitor', `leader ${lease.holder}, lease valid for another ${formatDuration(Math.max(0, Number(lease.expires_at) - now))}`);
  }
  const last = lease?.holder ? `last leader ${lease.holder}, lease expired ${formatDuration(now - Number(lease.expires_at))} ago` : 'no leader';
  if (!serving) return warn('monitor', `no monitor is running (${last}); neither is a server`);
  return fail(
    'monitor',
    `servers are up but no monitor holds the lease (${last}): no device will be marked offline; run a process with FLEETPULSE_MONITOR=on`,
  );
}

/** Status decisions use each server's clock; the database's clock is the common reference. */
async function checkClock(database: Database, clock: () => number): Promise<CheckResult> {
  const before = clock();
  const databaseNow = await databaseClockMs(database.db, database.caps.kind);
  const after = clock();
  const skew = databaseNow - (before + after) / 2;
  const rtt = after - before;
  const text = `database clock ${formatDuration(Math.abs(skew))} ${skew >= 0 ? 'ahead of' : 'behind'} this server (±${formatDuration(rtt / 2 + 1)})`;
  if (Math.abs(skew) <= CLOCK_WARN_MS + rtt / 2) return pass('clock', text);
  const advice = '; run NTP (chrony, systemd-timesyncd) on every host';
  return Math.abs(skew) <= CLOCK_FAIL_MS ? warn('clock', text + advice) : fail('clock', text + advice);
}

/** Runs every check; never throws. The order is the order operators read them in. */
export async function runDoctor(deps: DoctorDeps): Promise<CheckResult[]> {
  const { config } = deps;
  const clock = deps.clock ?? Date.now;
  const results: CheckResult[] = [];
  const sqlitePath = config.database.kind === 'sqlite' ? (config.database.sqlitePath ?? ':memory:') : null;
  const storage = sqlitePath === null ? null : await guarded('storage', () => checkStorage(sqlitePath));
  const sqliteMissing = sqlitePath !== null && sqlitePath !== ':memory:' && !(await exists(sqlitePath));

  if (sqliteMissing) {
    results.push(warn('database', `${sqlitePath} does not exist yet; \`fleetpulse migrate up\` or \`serve\` creates it`));
  } else {
    const database = (deps.open ?? ((c: Config) => openDatabase(c.database, { poolSize: 1, onPoolError: () => {} })))(config);
    try {
      const db = await guarded('database', async () => {
        const started = performance.now();
        await ping(database.db);
        const connectMs = performance.now() - started;
        const again = performance.now();
        await ping(database.db);
        const queryMs = performance.now() - again;
        const text = `${describeTarget(config)} answered in ${formatDuration(queryMs)} (first query with connect ${formatDuration(connectMs)})`;
        return queryMs > SLOW_QUERY_MS ? warn('database', `${text}: slow`) : pass('database', text);
      });
      results.push(db.status === 'fail' ? fail('database', `${describeTarget(config)} unreachable: ${db.message}`) : db);
      if (db.status !== 'fail') {
        const migrations = await guarded('migrations', () => checkMigrations(database));
        results.push(migrations);
        const tables = await listTables(database.db, database.caps.kind).catch(() => [] as string[]);
        let serving = false;
        if (tables.includes('service_state') && tables.includes('leases')) {
          const s = await guarded('serving', async () => {
            const checked = await checkServing(database, clock());
            serving = checked.serving;
            return checked.result;
          });
          results.push(s);
          results.push(await guarded('monitor', () => checkMonitor(database, config, clock(), serving)));
        } else {
          results.push(warn('serving', 'not checked: its table does not exist until migrations are applied'));
          results.push(warn('monitor', 'not checked: its table does not exist until migrations are applied'));
        }
        results.push(await guarded('clock', () => checkClock(database, clock)));
      }
    } finally {
      await database.close().catch(() => {});
    }
  }
  results.push(await guarded('redis', () => checkRedis(config)));
  if (storage) results.push(storage);
  return results;
}

const LABELS: Record<CheckStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };

export function formatCheck(result: CheckResult): string {
  return `${LABELS[result.status]}  ${result.name.padEnd(10)} ${result.message}`;
}

export function summarize(results: readonly CheckResult[]): string {
  const count = (status: CheckStatus) => results.filter((r) => r.status === status).length;
  const warnings = count('warn');
  const failures = count('fail');
  return `doctor: ${count('pass')} ok, ${warnings} warning${warnings === 1 ? '' : 's'}, ${failures} failure${failures === 1 ? '' : 's'}`;
}

/** 0 when nothing failed (warnings allowed), 1 otherwise. */
export function doctorExitCode(results: readonly CheckResult[]): number {
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
