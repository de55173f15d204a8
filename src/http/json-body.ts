import type { FastifyInstance } from 'fastify';

import { errors } from '../errors.js';

/**
 * JSON is the only body type. An empty body is no body (the heartbeat's
 * fields are all optional); anything that isn't JSON is a 400 naming why.
 */
export function installJsonBody(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  // Bytes, not a string: invalid UTF-8 is refused rather than stored as U+FFFD (names are stored verbatim).
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      return done(errors.invalidRequest('Request body is not valid UTF-8'), undefined);
    }
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(errors.invalidRequest(`Request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}
