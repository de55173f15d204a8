import type { FastifyInstance } from 'fastify';

import type { AppContext } from '../context.js';
import { authorize } from '../http/auth.js';
import { cursorSchema, decodeCursor, encodeCursor, limitSchema, page, parseLimit } from '../http/pagination.js';
import { listTransitionFeed } from './transition.repository.js';
import type { TransitionRow } from './transition.repository.js';

export function presentTransition(row: TransitionRow) {
  return {
    id: row.id,
    device_id: row.device_id,
    device_name: row.device_name,
    from_status: row.from_status,
    to_status: row.to_status,
    reason: row.reason,
    source: row.source,
    at: new Date(Number(row.at)).toISOString(),
    recorded_at: new Date(Number(row.recorded_at)).toISOString(),
  };
}

export function transitionRoutes(ctx: AppContext) {
  return async (app: FastifyInstance) => {
    const readers = authorize(ctx.auth, ['admin', 'viewer', 'external']);

    /**
     * The fleet feed in commit order. next_cursor is null on a short page, like
     * every list; a poller resumes from the last item's `cursor`.
     */
    app.get<{ Querystring: { after?: string; limit?: string } }>(
      '/api/transitions',
      {
        onRequest: readers,
        schema: { querystring: { type: 'object', properties: { after: cursorSchema, limit: limitSchema } } },
      },
      async (request) => {
        const limit = parseLimit(request.query.limit);
        const after = decodeCursor(request.query.after, 'after');
        const rows = await listTransitionFeed(ctx.database.db, limit, after);
        const items = rows.map((row) => ({ ...presentTransition(row), cursor: encodeCursor(row.id) }));
        return { success: true, data: page(items, limit, (t) => t.id) };
      },
    );
  };
}
