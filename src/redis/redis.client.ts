import { Redis } from 'ioredis';

import type { Logger } from '../observability/logger.js';

export interface RedisHandle {
  /** Prepended to every key and channel. */
  readonly prefix: string;
  /** Commands: fail fast while disconnected (no offline queue), so callers can fall back. */
  readonly commands: Redis;
  /** Subscriptions need a connection of their own. */
  readonly subscriber: Redis;
  /** Reports a failed operation: one warning per outage, plus the caller's fallback metric. */
  reportFailure(error: unknown): void;
  /** Resolves true once both connections are ready, false after `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

function connect(url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    commandTimeout: 500,
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(200 * attempt, 2000),
  });
}

function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), timeoutMs);
    const onReady = () => finish(true);
    function finish(ok: boolean) {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    }
    client.once('ready', onReady);
  });
}

/**
 * Two connections to Redis (commands and pub/sub), reconnecting forever in
 * the background. Every operation on it must have a local fallback: Redis
 * going away never stops heartbeats.
 */
export function openRedis(url: string, prefix: string, logger: Logger): RedisHandle {
  const commands = connect(url, 'fleetpulse');
  const subscriber = new Redis(url, {
    connectionName: 'fleetpulse-sub',
    connectTimeout: 1000,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(200 * attempt, 2000),
  });
  let down = false;
  const markDown = (error: unknown) => {
    if (down) return;
    down = true;
    logger.warn({ err: error }, 'Redis is unreachable: falling back to process-local rate limits and caches');
  };
  commands.on('error', markDown);
  subscriber.on('error', () => {});
  commands.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info('Redis is reachable again: shared rate limits and cache invalidation resumed');
  });
  return {
    prefix,
    commands,
    subscriber,
    reportFailure: markDown,
    ready: (timeoutMs) => Promise.all([whenReady(commands, timeoutMs), whenReady(subscriber, timeoutMs)]).then((r) => r.every(Boolean)),
    async close() {
      commands.disconnect();
      subscriber.disconnect();
    },
  };
}
