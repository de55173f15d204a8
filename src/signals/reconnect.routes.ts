import type { FastifyInstance } from 'fastify';

import type { AppContext } from '../context.js';
import { notFound } from '../devices/device.service.js';
import { authorize } from '../http/auth.js';
import { parseId } from '../http/pagination.js';
import { STATUSES } from '../status/status.js';
import type { Status } from '../status/status.js';

const delay = { type: 'integer', minimum: 0, maximum: 86_400 } as const;

export function reconnectRoutes(ctx: AppContext) {
  return async (app: FastifyInstance) => {
    const admin = authorize(ctx.auth, ['admin']);
    const operators = authorize(ctx.auth, ['admin', 'external']);

    app.post<{ Body: { status?: Status; spread_seconds: number } }>(
      '/api/devices/reconnect',
      {
        onRequest: admin,
        schema: {
          body: {
            type: 'object',
            required: ['spread_seconds'],
            properties: { status: { type: 'string', enum: [...STATUSES] }, spread_seconds: delay },
            additionalProperties: false,
          },
        },
      },
      async (request, reply) => {
        const { status, spread_seconds } = request.body;
        const signalled = await ctx.reconnects.signalFleet(status, spread_seconds);
        return reply.status(202).send({ success: true, data: { signalled, status: status ?? null, spread_seconds } });
      },
    );

    app.post<{ Params: { id: string }; Body: { delay_seconds?: number } | undefined }>(
      '/api/devices/:id/reconnect',
      {
        onRequest: operators,
        schema: {
          params: { type: 'object', properties: { id: { type: 'string', maxLength: 32 } } },
          body: { type: ['object', 'null'], properties: { delay_seconds: delay }, additionalProperties: false },
        },
      },
      async (request, reply) => {
        const id = parseId(request.params.id, notFound);
        const delaySeconds = request.body?.delay_seconds ?? 0;
        await ctx.reconnects.signalDevice(id, delaySeconds);
        return reply.status(202).send({ success: true, data: { device_id: id, delay_seconds: delaySeconds } });
      },
    );
  };
}
