import type { FastifyInstance } from 'fastify';

import type { AppContext } from '../context.js';
import { errors } from '../errors.js';
import { authorize } from '../http/auth.js';
import type { Telemetry } from './heartbeat.service.js';

/** Device requests are small: anything bigger is refused before it is read. */
export const DEVICE_BODY_LIMIT = 16 * 1024;

const heartbeatBody = {
  type: ['object', 'null'],
  properties: {
    battery_level: { type: ['integer', 'null'], minimum: 0, maximum: 100 },
    wifi_strength: { type: ['integer', 'null'], minimum: -127, maximum: 0 },
    app_version: { type: ['string', 'null'], maxLength: 64 },
    uptime_seconds: { type: ['integer', 'null'], minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
  },
  additionalProperties: true,
} as const;

const heartbeatReply = {
  type: 'object',
  properties: {
    success: { type: 'boolean' },
    data: {
      type: 'object',
      properties: {
        status: { type: 'string' },
        remote_control_enabled: { type: 'boolean' },
        should_reconnect: { type: 'boolean' },
        reconnect_delay_seconds: { type: ['integer', 'null'] },
        heartbeat_interval_seconds: { type: 'integer' },
        server_time: { type: 'string' },
      },
    },
  },
} as const;

function telemetryOf(body: Record<string, unknown> | null | undefined): Telemetry {
  if (!body) return {};
  const pick = <T>(value: unknown) => (value === null ? undefined : (value as T | undefined));
  return {
    battery_level: pick<number>(body.battery_level),
    wifi_strength: pick<number>(body.wifi_strength),
    app_version: pick<string>(body.app_version),
    uptime_seconds: pick<number>(body.uptime_seconds),
  };
}

export function heartbeatRoutes(ctx: AppContext) {
  return async (app: FastifyInstance) => {
    const device = authorize(ctx.auth, ['device']);

    app.post<{ Body: Record<string, unknown> | null }>(
      '/api/devices/heartbeat',
      { bodyLimit: DEVICE_BODY_LIMIT, onRequest: device, schema: { body: heartbeatBody, response: { 200: heartbeatReply } } },
      async (request) => {
        const principal = request.principal!;
        if (principal.role !== 'device') throw errors.forbidden();
        const decision = await ctx.heartbeatLimiter.take(principal.deviceId, ctx.clock());
        if (!decision.allowed) {
          ctx.metrics.heartbeatsRateLimited.inc();
          throw errors.rateLimited(decision.retryAfterMs / 1000, 'Heartbeats are arriving faster than this device is allowed');
        }
        const result = await ctx.heartbeats.submit({
          deviceId: principal.deviceId,
          tokenHash: principal.tokenHash,
          telemetry: telemetryOf(request.body),
        });
        if (result === null) {
          ctx.authenticator.invalidateDevice(principal.deviceId);
          throw errors.unauthorized('The bearer token is not valid');
        }
        return { success: true, data: result };
      },
    );
  };
}
