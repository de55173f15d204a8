import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';

import type { AppContext } from './context.js';
import { deviceRoutes } from './devices/device.routes.js';
import { errors } from './errors.js';
import { heartbeatRoutes } from './heartbeats/heartbeat.routes.js';
import { frameworkErrors, installErrorHandling } from './http/error-handler.js';
import { installJsonBody } from './http/json-body.js';
import { opsRoutes } from './ops/ops.routes.js';
import { reconnectRoutes } from './signals/reconnect.routes.js';
import { signalRoutes } from './signals/signal.routes.js';
import { transitionRoutes } from './transitions/transition.routes.js';

/** Requests other than a device's may carry up to this much JSON (10,000 devices in one bulk call fit easily). */
export const BODY_LIMIT = 4 * 1024 * 1024;

/** The HTTP app, without a socket: `listen` is the caller's business (tests use `inject`). */
export async function buildApp(ctx: AppContext): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    trustProxy: ctx.config.trustProxy,
    // Closing is answered below in the API's own error shape, with Retry-After.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    frameworkErrors,
  });
  app.decorateRequest('principal', null);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Callback-style hooks: they run on every request, and an async hook costs a promise each time.
  app.addHook('onRequest', (_request, _reply, done) => {
    done(closing ? errors.unavailable('The server is shutting down; try another replica', 1) : undefined);
  });
  // While draining, each response closes its connection: keep-alive clients move to another replica and close() can finish.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (ctx.draining) reply.header('connection', 'close');
    done(null, payload);
  });
  installJsonBody(app);
  installErrorHandling(app);
  await app.register(opsRoutes(ctx));
  await app.register(heartbeatRoutes(ctx));
  await app.register(deviceRoutes(ctx));
  await app.register(reconnectRoutes(ctx));
  await app.register(signalRoutes(ctx));
  await app.register(transitionRoutes(ctx));
  return app;
}
