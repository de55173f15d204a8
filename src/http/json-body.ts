import type { FastifyInstance } from 'fastify';

import { errors } from '../errors.js';

/**
 * JSON is the only body type. An empty body is no body (the heartbeat's
 * fields are all optional); anything that isn't JSON is a 400 naming why.
 */
export function installJsonBody(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(errors.invalidRequest(`Request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}
