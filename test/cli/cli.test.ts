import { spawnSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { main } from '../../src/cli.js';
import { createTestDatabase } from '../support/databases.js';

async function run(args: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'fleetpulse', ...args], {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    env: { LOG_LEVEL: 'silent', ...env },
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function sqliteFile() {
  const database = await createTestDatabase('sqlite', { file: true });
  return { env: { DATABASE_URL: database.url }, drop: database.drop };
}

describe('fleetpulse CLI', () => {
  it.each([
    [['--help']],
    [['serve', '--help']],
    [['monitor', '--help']],
    [['migrate', '--help']],
    [['migrate', 'status', '--help']],
    [['migrate', 'up', '--help']],
    [['migrate', 'down', '--help']],
    [['devices', 'add', '--help']],
    [['devices', 'list', '--help']],
    [['tokens', 'create', '--help']],
  ])('prints help for %j and exits 0', async (args) => {
    const result = await run(args);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/Usage: fleetpulse/);
  });

  it.each([
    ['DATABASE_URL', { DATABASE_URL: 'oracle://db' }],
    ['FLEETPULSE_GRACE_PERIOD_SECONDS', { FLEETPULSE_HEARTBEAT_TIMEOUT_SECONDS: '30', FLEETPULSE_GRACE_PERIOD_SECONDS: '30' }],
    ['PORT', { PORT: 'eighty' }],
    ['FLEETPULSE_MONITOR_INTERVAL_MS', { FLEETPULSE_MONITOR_INTERVAL_MS: '1e3x' }],
    ['FLEETPULSE_MONITOR', { FLEETPULSE_MONITOR: 'sometimes' }],
  ])('stops with exit code 2 and one line naming %s when configuration is invalid', async (variable, env) => {
    const result = await run(['devices', 'list'], env);
    expect(result.code).toBe(2);
    expect(result.err.split('\n')).toHaveLength(1);
    expect(result.err).toContain(variable);
  });

  it('exits non-zero with one line for an unknown command or a bad option', async () => {
    expect((await run(['frobnicate'])).code).not.toBe(0);
    const bad = await run(['tokens', 'create', '--role', 'superuser']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/superuser/);
  });

  it('adds and lists devices, as a table and as JSON', async () => {
    const { env, drop } = await sqliteFile();
    try {
      const added = await run(['devices', 'add', '--name', 'KIOSK-LOBBY-01', '--grace-period', '120'], env);
      expect(added.code).toBe(0);
      expect(added.out).toMatch(/^id: 1\ntoken: [A-Za-z0-9_-]{43}$/);
      const table = await run(['devices', 'list'], env);
      expect(table.out).toMatch(/KIOSK-LOBBY-01\s+Never connected/);
      const json = JSON.parse((await run(['devices', 'list', '--json', '--status', 'never_connected'], env)).out);
      expect(json).toMatchObject([{ id: 1, name: 'KIOSK-LOBBY-01', grace_period_seconds: 120, status: 'never_connected' }]);
      expect(JSON.parse((await run(['devices', 'list', '--json', '--status', 'offline'], env)).out)).toEqual([]);
      expect((await run(['devices', 'add', '--name', 'x', '--grace-period', '5'], env)).err).toMatch(/grace_period_seconds/);
    } finally {
      await drop();
    }
  });

  it('creates API tokens for each role', async () => {
    const { env, drop } = await sqliteFile();
    try {
      for (const role of ['admin', 'viewer', 'external']) {
        const result = await run(['tokens', 'create', '--role', role], env);
        expect(result.code).toBe(0);
        expect(result.out).toMatch(/^[A-Za-z0-9_-]{43}$/);
      }
    } finally {
      await drop();
    }
  });

  it('reports, applies and reverts migrations step by step', async () => {
    const { env, drop } = await sqliteFile();
    const manual = { ...env, FLEETPULSE_AUTO_MIGRATE: 'off' };
    try {
      expect((await run(['migrate', 'status'], manual)).out).toMatch(/^pending {2}20261204_0001_create_devices/);
      expect((await run(['migrate', 'up', '--step', '1'], manual)).out).toBe('applied  20261204_0001_create_devices');
      expect((await run(['migrate', 'up'], manual)).out.split('\n')).toHaveLength(3);
      expect((await run(['migrate', 'up'], manual)).out).toMatch(/up to date/);
      expect((await run(['migrate', 'down', '--step', '2'], manual)).out.split('\n')).toEqual([
        'reverted 20261204_0004_create_service_state',
        'reverted 20261204_0003_create_api_tokens',
      ]);
      expect((await run(['migrate', 'status'], manual)).out).toMatch(/pending {2}20261204_0003/);
      expect((await run(['migrate', 'down', '--step', 'x'], manual)).code).not.toBe(0);
    } finally {
      await drop();
    }
  });

  it('runs one sweep and says so when nothing is due', async () => {
    const { env, drop } = await sqliteFile();
    try {
      await run(['devices', 'add', '--name', 'quiet'], env);
      const once = await run(['monitor', '--once', '--verbose'], env);
      expect(once.code).toBe(0);
      // No server has ever received heartbeats on this database: nobody is blamed.
      expect(once.out).toMatch(/No server is receiving heartbeats/);
    } finally {
      await drop();
    }
  });

  it('is installed as a bin that exits 2 on bad configuration', () => {
    const result = spawnSync(process.execPath, ['bin/fleetpulse.js', 'devices', 'list'], {
      env: { ...process.env, DATABASE_URL: 'nosuch://x' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/DATABASE_URL/);
  });
});
