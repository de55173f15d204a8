import type { FastifyInstance } from 'fastify';

import type { AppContext } from '../context.js';
import { pendingMigrations } from '../db/migrate.js';
import { errors } from '../errors.js';
import { sendError } from '../http/error-handler.js';
import { withTimeout } from './deadline.js';
import { ping } from './ops.repository.js';

const MIGRATION_CHECK_TTL_MS = 5000;
const DATABASE_CHECK_TIMEOUT_MS = 2000;

/** Readiness: not draining, the database answers, no migration pending (that last one cached briefly). */
export function readinessCheck(ctx: AppContext) {
  let migrationsCheckedAt = -Infinity;
  return async (): Promise<{ ready: boolean; reason?: string }> => {
    if (ctx.draining) return { ready: false, reason: 'The server is shutting down' };
    try {
      await withTimeout(ping(ctx.database.db), DATABASE_CHECK_TIMEOUT_MS);
    } catch (error) {
      return { ready: false, reason: `The database does not answer: ${(error as Error).message}` };
    }
    const now = ctx.clock();
    if (now - migrationsCheckedAt > MIGRATION_CHECK_TTL_MS) {
      const pending = await pendingMigrations(ctx.database).catch(() => null);
      if (pending === null) return { ready: false, reason: 'Could not read the migration table' };
      if (pending.length > 0) return { ready: false, reason: `${pending.length} migration(s) pending: ${pending.join(', ')}` };
      migrationsCheckedAt = now;
    }
    return { ready: true };
  };
}

export function opsRoutes(ctx: AppContext) {
  return async (app: FastifyInstance) => {
    const ready = readinessCheck(ctx);

    app.get('/healthz', async () => ({ success: true, data: { status: 'ok' } }));

    app.get('/readyz', async (_request, reply) => {
      const result = await ready();
      if (!result.ready) return sendError(reply, errors.unavailable(result.reason, 1));
      return { success: true, data: { status: 'ready' } };
    });

    app.get('/metrics', async (_request, reply) => {
      const text = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(text);
    });
  };
}
