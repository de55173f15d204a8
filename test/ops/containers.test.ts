/**
 * There is no Docker engine here: check what can be checked without one.
 * The compose files parse, every file they reference exists, the Dockerfile
 * is multi-stage and non-root with a health check, nginx balances exactly the
 * app replicas, and the shell scripts parse.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { REPO } from './support.js';

interface Service {
  build?: string | { context: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown> | string[];
  profiles?: string[];
}

interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const read = (path: string) => readFileSync(join(REPO, path), 'utf8');
const compose = (path: string) => parse(read(path), { merge: true }) as Compose;
/** Host directories that the deploy creates when it first runs. */
const CREATED_AT_RUNTIME = new Set(['./backups']);

function checkReferences(file: Compose): void {
  for (const [name, service] of Object.entries(file.services)) {
    if (service.build !== undefined) {
      const context = typeof service.build === 'string' ? service.build : service.build.context;
      expect(existsSync(join(REPO, context, 'Dockerfile')), `${name}: build context has a Dockerfile`).toBe(true);
    }
    for (const volume of service.volumes ?? []) {
      const [source] = volume.split(':');
      if (source!.startsWith('.') || source!.startsWith('/')) {
        if (!CREATED_AT_RUNTIME.has(source!)) expect(existsSync(join(REPO, source!)), `${name}: ${source} exists`).toBe(true);
      } else {
        expect(file.volumes, `${name}: named volume ${source} is declared`).toHaveProperty(source!);
      }
    }
    const dependencies = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
    for (const dependency of dependencies) expect(file.services, `${name} depends on ${dependency}`).toHaveProperty(dependency);
  }
}

describe('containers', () => {
  it('docker-compose.yml: one node on SQLite with its database on a volume', () => {
    const file = compose('docker-compose.yml');
    checkReferences(file);
    const [service, ...others] = Object.values(file.services);
    expect(others).toEqual([]);
    expect(service!.environment!.DATABASE_URL).toMatch(/^sqlite:\/data\//);
    expect(service!.volumes).toContainEqual(expect.stringMatching(/^fleetpulse-data:\/data$/));
  });

  it('docker-compose.prod.yml: three HTTP replicas, one monitor, PostgreSQL, Redis and nginx', () => {
    const file = compose('docker-compose.prod.yml');
    checkReferences(file);
    const { services } = file;
    expect(Object.keys(services)).toEqual(expect.arrayContaining(['app1', 'app2', 'app3', 'monitor', 'postgres', 'redis', 'nginx', 'tools']));
    for (const name of ['app1', 'app2', 'app3']) {
      expect(services[name]!.environment).toMatchObject({ FLEETPULSE_MONITOR: 'off', FLEETPULSE_AUTO_MIGRATE: 'off', REDIS_URL: 'redis://redis:6379' });
      expect(services[name]!.environment!.DATABASE_URL).toMatch(/^postgres:\/\/.*@postgres:5432\//);
    }
    expect(services.monitor!.command).toEqual(['monitor']);
    expect(services.monitor!.environment!.FLEETPULSE_MONITOR).toBe('on');
    expect(services.tools!.profiles).toEqual(['tools']);
    expect(services.nginx!.volumes).toContain('./deploy/nginx.conf:/etc/nginx/nginx.conf:ro');
  });

  it('deploy/nginx.conf balances exactly the app replicas and retries a draining one', () => {
    const conf = read('deploy/nginx.conf').replace(/#.*$/gm, '');
    expect(conf.split('{').length).toBe(conf.split('}').length);
    const upstream = /upstream fleetpulse \{([^}]*)\}/.exec(conf)![1]!;
    const servers = [...upstream.matchAll(/server (\S+):8080/g)].map((m) => m[1]);
    const apps = Object.keys(compose('docker-compose.prod.yml').services).filter((s) => /^app\d$/.test(s));
    expect(servers).toEqual(apps);
    expect(conf).toMatch(/proxy_next_upstream error timeout http_502 http_503;/);
    expect(conf).toMatch(/location = \/api\/devices\/heartbeat \{[^}]*non_idempotent/);
  });

  it('Dockerfile: multi-stage, production dependencies only, non-root, HEALTHCHECK on /healthz', () => {
    const dockerfile = read('Dockerfile');
    const stages = dockerfile.split(/^FROM /m).slice(1);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[0]).toMatch(/npm ci/);
    expect(stages[0]).toMatch(/npm prune --omit=dev/);
    expect(stages[0]).toMatch(/g\+\+/);
    const runtime = stages.at(-1)!;
    expect(runtime).toMatch(/^USER (?!root|0\b)\w+/m);
    expect(runtime).toMatch(/^HEALTHCHECK .*[\s\S]*\/healthz/m);
    expect(runtime).not.toMatch(/npm (ci|install)/);
    for (const [, sources] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const source of sources!.split(' ')) expect(existsSync(join(REPO, source)), `COPY ${source}`).toBe(true);
    }
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const needed of ['src', 'bin', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      expect(ignored).not.toContain(needed);
    }
  });

  it('the deploy scripts parse, and replicas.sh explains itself', () => {
    for (const script of ['scripts/deploy.sh', 'scripts/replicas.sh']) {
      const check = spawnSync('bash', ['-n', join(REPO, script)], { encoding: 'utf8' });
      expect(check.status, check.stderr).toBe(0);
    }
    const help = spawnSync('bash', [join(REPO, 'scripts/replicas.sh'), 'help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/start\|stop\|restart\|status\|wait-ready/);
  });
});
