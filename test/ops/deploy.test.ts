import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { ADMIN_TOKEN, freePort, REPO, runCli } from './support.js';

function run(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [join(REPO, script), ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('close', (code) => resolve({ code, output }));
  });
}

async function pids(runDir: string, names: string[]): Promise<string[]> {
  return Promise.all(names.map(async (n) => (await readFile(join(runDir, `${n}.pid`), 'utf8')).trim()));
}

/** scripts/deploy.sh in process mode: two plain `serve` replicas managed by scripts/replicas.sh. */
describe('scripts/deploy.sh (process mode)', () => {
  let database: TestDatabase;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite', { file: true });
    dir = await mkdtemp(join(tmpdir(), 'fleetpulse-deploy-'));
    const [a, b] = [await freePort(), await freePort()];
    env = {
      DATABASE_URL: database.url,
      FLEETPULSE_ADMIN_TOKEN: ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      DEPLOY_MODE: 'process',
      REPLICAS: `a:${a} b:${b}`,
      RUN_DIR: join(dir, 'run'),
      BACKUP_DIR: join(dir, 'backups'),
      REPLICA_PAUSE: '0',
      // dist/ is built by `npm test`; other test files run from it, so the build step must not touch it here.
      BUILD_CMD: ':',
      SAVE_BUILD_CMD: ':',
      RESTORE_BUILD_CMD: ':',
    };
    const started = await run('scripts/replicas.sh', ['start'], env);
    expect(started.code, started.output).toBe(0);
  });

  afterAll(async () => {
    await run('scripts/replicas.sh', ['stop'], env);
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('deploys: doctor, backup, migrate, restarts each replica once it is ready, verifies with a heartbeat', { timeout: 60_000 }, async () => {
    const before = await pids(env.RUN_DIR!, ['a', 'b']);
    const deploy = await run('scripts/deploy.sh', [], env);
    expect(deploy.code, deploy.output).toBe(0);
    expect(deploy.output).toMatch(/==> 1\/6 doctor[\s\S]*==> 2\/6 backup[\s\S]*==> 5\/6 restart[\s\S]*a is ready[\s\S]*b is ready[\s\S]*==> 6\/6 verify/);
    expect(deploy.output).toMatch(/smoke: heartbeat through http:\/\/127\.0\.0\.1:\d+ answered "connected"/);
    expect(deploy.output).toMatch(/==> deployed/);
    const after = await pids(env.RUN_DIR!, ['a', 'b']);
    expect(after[0]).not.toBe(before[0]);
    expect(after[1]).not.toBe(before[1]);
    expect((await run('scripts/replicas.sh', ['status'], env)).output).toMatch(/a running .*ready\nb running .*ready/);
  });

  it('rolls back when verification fails: the backup is restored and the replicas serve again', { timeout: 90_000 }, async () => {
    const deploy = await run('scripts/deploy.sh', [], {
      ...env,
      // Something written after the backup, which the rollback must undo.
      BUILD_CMD: 'node bin/fleetpulse.js devices add --name written-during-the-deploy',
      DEPLOY_FAIL_AT: 'verify',
    });
    expect(deploy.code, deploy.output).toBe(1);
    expect(deploy.output).toMatch(/deploy failed at: verify — rolling back/);
    expect(deploy.output).toMatch(/rollback: restore .*pre-deploy-.*\.backup/);
    expect(deploy.output).toMatch(/ROLLED BACK/);
    const devices = await runCli(['devices', 'list', '--json'], { DATABASE_URL: database.url });
    expect(devices.out).not.toContain('written-during-the-deploy');
    expect((await run('scripts/replicas.sh', ['status'], env)).code).toBe(0);
  });

  it('stops before changing anything when doctor fails', async () => {
    const deploy = await run('scripts/deploy.sh', [], { ...env, REDIS_URL: 'redis://127.0.0.1:1' });
    expect(deploy.code).toBe(1);
    expect(deploy.output).toMatch(/FAIL {2}redis/);
    expect(deploy.output).toMatch(/doctor found a failing check: nothing was changed/);
    expect(deploy.output).not.toMatch(/2\/6 backup/);
  });
});
