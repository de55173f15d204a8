import { hostname } from 'node:os';

import { Authenticator } from './auth/authenticator.js';
import type { Config } from './config.js';
import type { AuthDeps } from './http/auth.js';
import { openDatabase } from './db/database.js';
import type { Database } from './db/database.js';
import { countDevicesByStatus } from './devices/device.repository.js';
import { DeviceService } from './devices/device.service.js';
import { GroupCommit } from './heartbeats/group-commit.js';
import { createHeartbeatProcessor } from './heartbeats/heartbeat.service.js';
import type { HeartbeatInput, HeartbeatResult } from './heartbeats/heartbeat.service.js';
import type { SweepDeps } from './monitor/sweep.js';
import { createLogger } from './observability/logger.js';
import type { Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import type { Metrics } from './observability/metrics.js';
import { LocalRateLimiter } from './ratelimit/gcra.js';
import type { RateDecision } from './ratelimit/gcra.js';
import { redisBus } from './redis/redis.bus.js';
import type { Bus } from './redis/redis.bus.js';
import type { ReconnectSignal } from './signals/signal.hub.js';
import { openRedis } from './redis/redis.client.js';
import type { RedisHandle } from './redis/redis.client.js';
import { redisHeartbeatLimiter } from './redis/redis.rate-limiter.js';
import { ReconnectService } from './signals/reconnect.service.js';
import { SignalHub } from './signals/signal.hub.js';
import { createTransitionRecorder } from './transitions/transition.recorder.js';
import type { TransitionRecorder } from './transitions/transition.recorder.js';

export interface HeartbeatLimiter {
  take(deviceId: number, now: number): RateDecision | Promise<RateDecision>;
}

/** How often a serving process proves it can receive heartbeats, and how long a silence means it could not. */
export const LIVENESS_INTERVAL_MS = 1000;
export const LIVENESS_GAP_MS = 3000;

/** Everything a process needs, wired once. Entry points build one; tests build one per app. */
export interface AppContext {
  readonly config: Config;
  readonly clock: () => number;
  readonly logger: Logger;
  readonly database: Database;
  readonly metrics: Metrics;
  readonly authenticator: Authenticator;
  readonly authFailures: LocalRateLimiter<string>;
  /** What route guards need: `authorize(ctx.auth, roles)`. */
  readonly auth: AuthDeps;
  readonly heartbeatLimiter: HeartbeatLimiter;
  readonly heartbeats: GroupCommit<HeartbeatInput, HeartbeatResult>;
  readonly devices: DeviceService;
  readonly reconnects: ReconnectService;
  /** Devices with an open signal stream on this process. */
  readonly signalHub: SignalHub;
  /** Present when REDIS_URL is set. */
  readonly redis: RedisHandle | null;
  readonly bus: Bus | null;
  readonly recordTransitions: TransitionRecorder;
  readonly sweepDeps: SweepDeps;
  readonly livenessGapMs: number;
  /** A name for this process in leases and logs. */
  readonly instanceId: string;
  /** Set when the process starts draining: /readyz answers 503. */
  draining: boolean;
  close(): Promise<void>;
}

export interface ContextOverrides {
  readonly clock?: () => number;
  readonly logger?: Logger;
  readonly database?: Database;
  readonly livenessGapMs?: number;
}

export function createContext(config: Config, overrides: ContextOverrides = {}): AppContext {
  const clock = overrides.clock ?? Date.now;
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const database =
    overrides.database ??
    openDatabase(config.database, {
      onPoolError: (error) => logger.warn({ err: error }, 'Database connection lost'),
    });
  const metrics = createMetrics(() => countDevicesByStatus(database.db));
  const authenticator = new Authenticator({ database, adminToken: config.adminToken });
  const recordTransitions = createTransitionRecorder(logger, metrics);
  const livenessGapMs = overrides.livenessGapMs ?? LIVENESS_GAP_MS;
  const limit = { burst: config.heartbeatBurst, intervalMs: config.heartbeatMinIntervalSeconds * 1000 };
  const localLimiter = new LocalRateLimiter<number>(limit);
  const redis = config.redisUrl ? openRedis(config.redisUrl, config.redisPrefix, logger) : null;
  const onRedisFallback = () => metrics.redisFallbacks.inc();
  const heartbeatLimiter: HeartbeatLimiter = redis ? redisHeartbeatLimiter(redis, limit, localLimiter, onRedisFallback) : localLimiter;
  const signalHub = new SignalHub({ database, clock, logger, onDelivered: () => metrics.reconnectsDelivered.inc() });
  const deliverLocally = (signals: readonly ReconnectSignal[]) =>
    signalHub.deliver(signals).catch((error: unknown) => logger.warn({ err: error }, 'Could not push reconnect signals'));
  // Every replica pushes a signal to the streams it holds: this one directly (so a Redis outage
  // does not stop it), the others through Redis. A claim in the database keeps it to one delivery.
  const bus = redis
    ? redisBus(
        redis,
        { onDeviceChanged: (id) => authenticator.invalidateDevice(id), onSignal: (signal) => void deliverLocally([signal]) },
        logger,
        onRedisFallback,
      )
    : null;

  const heartbeats = new GroupCommit(
    createHeartbeatProcessor({
      database,
      clock,
      recordTransitions,
      livenessGapMs,
      onCommitted: (accepted, delivered) => {
        metrics.heartbeats.inc(accepted);
        metrics.heartbeatBatchSize.observe(accepted);
        if (delivered > 0) metrics.reconnectsDelivered.inc(delivered);
      },
    }),
  );

  const deviceChanged = async (deviceId: number) => {
    authenticator.invalidateDevice(deviceId);
    await bus?.deviceChanged(deviceId);
  };
  const authFailures = new LocalRateLimiter<string>({ burst: 20, intervalMs: 3000 });

  return {
    config,
    clock,
    logger,
    database,
    metrics,
    authenticator,
    authFailures,
    auth: { authenticator, failures: authFailures, clock, onFailure: () => metrics.authFailures.inc() },
    heartbeatLimiter,
    heartbeats,
    devices: new DeviceService({ database, clock, defaults: config.defaults, deviceChanged }),
    reconnects: new ReconnectService({
      database,
      clock,
      announce: async (signals) => {
        await deliverLocally(signals);
        await bus?.signals(signals);
      },
    }),
    signalHub,
    redis,
    bus,
    recordTransitions,
    sweepDeps: { database, logger, recordTransitions, livenessGapMs },
    livenessGapMs,
    instanceId: `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`,
    draining: false,
    async close() {
      await heartbeats.idle();
      await bus?.close();
      await redis?.close();
      await database.close();
    },
  };
}
