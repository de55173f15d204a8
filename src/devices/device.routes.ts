import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';

import type { AppContext } from '../context.js';
import { errors } from '../errors.js';
import { authorize } from '../http/auth.js';
import { cursorSchema, decodeCursor, limitSchema, page, parseId, parseLimit } from '../http/pagination.js';
import { STATUSES } from '../status/status.js';
import type { Status } from '../status/status.js';
import { listDeviceTransitions } from '../transitions/transition.repository.js';
import { presentTransition } from '../transitions/transition.routes.js';
import type { DeviceInput } from './device.service.js';
import { notFound, presentDevice, SERVER_OWNED_FIELDS } from './device.service.js';

const seconds = { type: 'integer', minimum: 1, maximum: 86_400 } as const;
const deviceFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  heartbeat_interval_seconds: seconds,
  heartbeat_timeout_seconds: seconds,
  grace_period_seconds: seconds,
  remote_control_enabled: { type: 'boolean' },
} as const;
const newDevice = { type: 'object', required: ['name'], properties: deviceFields, additionalProperties: false } as const;
const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 32 } }, required: ['id'] } as const;

/** Refuses server-owned fields by name before schema validation. */
function refuseServerOwned(locate: (body: Record<string, unknown>) => Record<string, unknown>[]): preHandlerAsyncHookHandler {
  return async (request) => {
    const body = request.body;
    if (typeof body !== 'object' || body === null) return;
    for (const item of locate(body as Record<string, unknown>)) {
      const field = SERVER_OWNED_FIELDS.find((f) => typeof item === 'object' && item !== null && f in item);
      if (field) {
        throw errors.invalidRequest(
          `${field} cannot be set: the server decides status from heartbeats (change heartbeat_timeout_seconds or grace_period_seconds instead)`,
        );
      }
    }
  };
}

const single = (body: Record<string, unknown>) => [body];
const many = (body: Record<string, unknown>) => (Array.isArray(body.devices) ? (body.devices as Record<string, unknown>[]) : []);

export function deviceRoutes(ctx: AppContext) {
  return async (app: FastifyInstance) => {
    const admin = authorize(ctx.auth, ['admin']);
    const readers = authorize(ctx.auth, ['admin', 'viewer', 'external']);
    const id = (raw: string) => parseId(raw, notFound);

    app.post<{ Body: DeviceInput }>(
      '/api/devices',
      { onRequest: admin, preValidation: refuseServerOwned(single), schema: { body: newDevice } },
      async (request, reply) => {
        const [created] = await ctx.devices.create([request.body]);
        return reply.status(201).send({ success: true, data: { device: presentDevice(created!.device), token: created!.token } });
      },
    );

    app.post<{ Body: { devices: DeviceInput[] } }>(
      '/api/devices/bulk',
      {
        onRequest: admin,
        preValidation: refuseServerOwned(many),
        schema: {
          body: {
            type: 'object',
            required: ['devices'],
            properties: { devices: { type: 'array', minItems: 1, maxItems: 10_000, items: newDevice } },
            additionalProperties: false,
          },
        },
      },
      async (request, reply) => {
        const created = await ctx.devices.create(request.body.devices);
        return reply.status(201).send({
          success: true,
          data: { devices: created.map((c) => ({ device: presentDevice(c.device), token: c.token })) },
        });
      },
    );

    app.get<{ Querystring: { status?: Status; q?: string; limit?: string; cursor?: string } }>(
      '/api/devices',
      {
        onRequest: readers,
        schema: {
          querystring: {
            type: 'object',
            properties: {
              status: { type: 'string', enum: [...STATUSES] },
              q: { type: 'string', maxLength: 200 },
              limit: limitSchema,
              cursor: cursorSchema,
            },
          },
        },
      },
      async (request) => {
        const limit = parseLimit(request.query.limit);
        // No name holds a NUL, and SQLite's LIKE would stop reading the pattern at it (matching every device).
        if (request.query.q?.includes('\u0000')) throw errors.invalidRequest('q must not contain NUL characters');
        const rows = await ctx.devices.list({
          status: request.query.status,
          q: request.query.q,
          afterId: decodeCursor(request.query.cursor),
          limit,
        });
        return { success: true, data: page(rows.map(presentDevice), limit, (d) => d.id) };
      },
    );

    app.get<{ Params: { id: string } }>('/api/devices/:id', { onRequest: readers, schema: { params: idParams } }, async (request) => ({
      success: true,
      data: presentDevice(await ctx.devices.get(id(request.params.id))),
    }));

    app.patch<{ Params: { id: string }; Body: DeviceInput }>(
      '/api/devices/:id',
      {
        onRequest: admin,
        preValidation: refuseServerOwned(single),
        schema: { params: idParams, body: { type: 'object', properties: deviceFields, additionalProperties: false, minProperties: 1 } },
      },
      async (request) => ({ success: true, data: presentDevice(await ctx.devices.update(id(request.params.id), request.body)) }),
    );

    app.delete<{ Params: { id: string } }>('/api/devices/:id', { onRequest: admin, schema: { params: idParams } }, async (request) => {
      const deviceId = id(request.params.id);
      await ctx.devices.remove(deviceId);
      return { success: true, data: { id: deviceId, deleted: true } };
    });

    app.post<{ Params: { id: string } }>('/api/devices/:id/token', { onRequest: admin, schema: { params: idParams } }, async (request) => ({
      success: true,
      data: { token: await ctx.devices.rotateToken(id(request.params.id)) },
    }));

    app.get<{ Params: { id: string }; Querystring: { limit?: string; cursor?: string } }>(
      '/api/devices/:id/transitions',
      {
        onRequest: readers,
        schema: { params: idParams, querystring: { type: 'object', properties: { limit: limitSchema, cursor: cursorSchema } } },
      },
      async (request) => {
        const deviceId = id(request.params.id);
        const limit = parseLimit(request.query.limit);
        const rows = await listDeviceTransitions(ctx.database.db, deviceId, limit, decodeCursor(request.query.cursor));
        if (rows.length === 0) await ctx.devices.get(deviceId); // 404 for an unknown device, [] for a quiet one
        return { success: true, data: page(rows.map(presentTransition), limit, (t) => t.id) };
      },
    );
  };
}
