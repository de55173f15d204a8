import type { HeartbeatLimiter } from '../context.js';
import type { LocalRateLimiter, RateDecision, RateLimit } from '../ratelimit/gcra.js';
import type { RedisHandle } from './redis.client.js';

/**
 * The GCRA step of src/ratelimit/gcra.ts, atomically in Redis and on Redis's
 * clock, so every replica shares one bucket per device.
 * Returns 0 when allowed, else the milliseconds until a request would be.
 */
const GCRA_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return tat - now - tolerance end
redis.call('SET', KEYS[1], tat + interval, 'PX', tat + interval - now)
return 0
`;

declare module 'ioredis' {
  interface RedisCommander {
    fleetpulseGcra(key: string, intervalMs: number, toleranceMs: number): Promise<number>;
  }
}

const ALLOWED: RateDecision = { allowed: true, retryAfterMs: 0 };

/** Shared per-device buckets; the local limiter takes over while Redis is unreachable. */
export function redisHeartbeatLimiter(
  redis: RedisHandle,
  limit: RateLimit,
  fallback: LocalRateLimiter<number>,
  onFallback: () => void,
): HeartbeatLimiter {
  if (limit.intervalMs <= 0) return { take: () => ALLOWED };
  redis.commands.defineCommand('fleetpulseGcra', { numberOfKeys: 1, lua: GCRA_SCRIPT });
  const tolerance = limit.intervalMs * (limit.burst - 1);
  return {
    async take(deviceId, now) {
      try {
        const wait = await redis.commands.fleetpulseGcra(`${redis.prefix}hb:${deviceId}`, limit.intervalMs, tolerance);
        return wait > 0 ? { allowed: false, retryAfterMs: wait } : ALLOWED;
      } catch (error) {
        redis.reportFailure(error);
        onFallback();
        return fallback.take(deviceId, now);
      }
    },
  };
}
