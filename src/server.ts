import { setTimeout as sleep } from 'node:timers/promises';

import type { FastifyInstance } from 'fastify';

import { buildApp } from './app.js';
import type { Config } from './config.js';
import { createContext, LIVENESS_INTERVAL_MS } from './context.js';
import type { AppContext, ContextOverrides } from './context.js';
import { migrateUp } from './db/migrate.js';
import { Loop, startMonitor } from './monitor/runner.js';
import { acquireLease, beatLiveness, releaseLease } from './monitor/service-state.repository.js';
import { sweepOnce } from './monitor/sweep.js';

export const MONITOR_LEASE = 'monitor';

/**
 * How long a draining server keeps its listener open. /readyz answers 503 so
 * balancers move away, and requests already sent on open connections are read
 * and answered (each closing its connection) instead of being reset when
 * close() drops idle connections.
 */
export const DRAIN_GRACE_MS = 500;
const REDIS_STARTUP_WAIT_MS = 2000;

export interface RunningServer {
  readonly ctx: AppContext;
  readonly app: FastifyInstance;
  /** Drains: readiness fails, the listener closes, in-flight requests and the current sweep finish. */
  stop(): Promise<void>;
}

/** Lease time-to-live: a dead leader is replaced within this. */
export function leaseTtlMs(intervalMs: number): number {
  return Math.max(3 * intervalMs, 3000);
}

/** The monitor loop on a context: sweeps while it holds the lease. */
export function runMonitor(ctx: AppContext) {
  const { database } = ctx;
  const ttl = leaseTtlMs(ctx.config.monitorIntervalMs);
  return startMonitor({
    clock: ctx.clock,
    intervalMs: ctx.config.monitorIntervalMs,
    logger: ctx.logger,
    sweep: (now) => sweepOnce(ctx.sweepDeps, now),
    lead: (now) => acquireLease(database.db, MONITOR_LEASE, ctx.instanceId, now, ttl),
    resign: () => releaseLease(database.db, MONITOR_LEASE, ctx.instanceId),
    onStep: (seconds, leader) => {
      ctx.metrics.monitorLeader.set(leader ? 1 : 0);
      if (leader) ctx.metrics.sweepSeconds.observe(seconds);
    },
  });
}

/** Proves, once a second, that this process can receive heartbeats (downtime awareness). */
export function runLiveness(ctx: AppContext) {
  return new Loop('liveness', { clock: ctx.clock, intervalMs: LIVENESS_INTERVAL_MS, logger: ctx.logger }, async (now) => {
    await beatLiveness(ctx.database.db, now, ctx.livenessGapMs);
    return false;
  }).start();
}

export async function startServer(config: Config, overrides: ContextOverrides = {}): Promise<RunningServer> {
  const ctx = createContext(config, overrides);
  const { logger } = ctx;
  try {
    if (config.autoMigrate) {
      const applied = await migrateUp(ctx.database);
      if (applied.length > 0) logger.info({ migrations: applied }, 'Migrations applied');
    }
    if (ctx.redis && !(await ctx.redis.ready(REDIS_STARTUP_WAIT_MS))) {
      logger.warn('Redis is not reachable yet; starting with process-local rate limits until it is');
    }
    await beatLiveness(ctx.database.db, ctx.clock(), ctx.livenessGapMs).catch((error: unknown) =>
      logger.warn({ err: error }, 'Could not record liveness; will retry'),
    );
  } catch (error) {
    await ctx.close();
    throw error;
  }
  const liveness = runLiveness(ctx);
  const app = await buildApp(ctx);
  await app.listen({ port: config.port, host: config.host });
  const monitor = config.monitorEnabled ? runMonitor(ctx) : null;
  logger.info(
    { port: config.port, host: config.host, database: config.database.kind, monitor: config.monitorEnabled, redis: config.redisUrl !== null },
    'fleetpulse is serving',
  );

  let stopping: Promise<void> | null = null;
  return {
    ctx,
    app,
    stop: () =>
      (stopping ??= (async () => {
        ctx.draining = true;
        logger.info('Draining: finishing in-flight requests and the current sweep');
        const monitorStopped = monitor?.stop();
        await sleep(DRAIN_GRACE_MS);
        await Promise.all([app.close(), monitorStopped]);
        await liveness.stop();
        await ctx.close();
        logger.info('Stopped');
      })()),
  };
}
