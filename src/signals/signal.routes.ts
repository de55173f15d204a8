import type { FastifyInstance } from 'fastify';

import type { AppContext } from '../context.js';
import { errors } from '../errors.js';
import { authorize } from '../http/auth.js';

const KEEPALIVE_MS = 25_000;

/**
 * `GET /api/devices/signals`: a Server-Sent Events stream for one device,
 * the faster channel for reconnect signals (the heartbeat response is the other).
 */
export function signalRoutes(ctx: AppContext) {
  return async (app: FastifyInstance) => {
    const device = authorize(ctx.auth, ['device']);
    app.addHook('preClose', async () => ctx.signalHub.closeAll());

    app.get('/api/devices/signals', { preHandler: device }, async (request, reply) => {
      const principal = request.principal!;
      if (principal.role !== 'device') throw errors.forbidden();
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      raw.write(': connected\n\n');
      const keepalive = setInterval(() => raw.write(': keepalive\n\n'), KEEPALIVE_MS);
      keepalive.unref();
      const unsubscribe = ctx.signalHub.subscribe(
        principal.deviceId,
        (event, data) => raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
        () => raw.end(),
      );
      raw.on('close', () => {
        clearInterval(keepalive);
        unsubscribe();
      });
    });
  };
}
