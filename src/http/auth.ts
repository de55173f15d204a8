import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';

import type { Authenticator, Principal, Role } from '../auth/authenticator.js';
import { errors } from '../errors.js';
import type { LocalRateLimiter } from '../ratelimit/gcra.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface AuthDeps {
  readonly authenticator: Authenticator;
  /** Failed authentications per client address. */
  readonly failures: LocalRateLimiter<string>;
  readonly clock: () => number;
  readonly onFailure?: () => void;
}

export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

/**
 * An onRequest hook admitting only the given roles. An address with too many
 * failed attempts is refused (429) for anything but a token already known good.
 * It runs before the body is read or validated, so a caller without the right
 * role learns 401/403, never what the body should have looked like.
 */
export function authorize(deps: AuthDeps, roles: readonly Role[]): onRequestAsyncHookHandler {
  return async (request) => {
    const token = bearerToken(request);
    const now = deps.clock();
    const blocked = deps.failures.peek(request.ip, now);
    if (!blocked.allowed && !(token && deps.authenticator.isKnownDeviceToken(token))) {
      throw errors.rateLimited(blocked.retryAfterMs / 1000, 'Too many failed authentication attempts from this address');
    }
    if (!token) {
      deps.failures.take(request.ip, now);
      deps.onFailure?.();
      throw errors.unauthorized(request.headers.authorization ? 'Authorization must be "Bearer <token>"' : 'A bearer token is required');
    }
    const principal = await deps.authenticator.authenticate(token);
    if (!principal) {
      deps.failures.take(request.ip, now);
      deps.onFailure?.();
      throw errors.unauthorized('The bearer token is not valid');
    }
    if (!roles.includes(principal.role)) {
      throw errors.forbidden(`This endpoint needs one of the roles: ${roles.join(', ')} (token role: ${principal.role})`);
    }
    request.principal = principal;
  };
}
