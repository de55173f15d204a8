import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { classifyDbError } from '../db/db-errors.js';
import { AppError, errors } from '../errors.js';

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** "battery_level must be <= 100": the field first, in the API's own names. */
function describeValidation(issue: ValidationIssue, context: string | undefined): string {
  const path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  if (issue.keyword === 'required') {
    const missing = String(issue.params?.missingProperty ?? '');
    return `${path ? `${path}.` : ''}${missing} is required`;
  }
  if (issue.keyword === 'additionalProperties') {
    const extra = String(issue.params?.additionalProperty ?? '');
    return `${path ? `${path}.` : ''}${extra} is not a field this endpoint accepts`;
  }
  const field = path || (context === 'querystring' ? 'query' : (context ?? 'body'));
  return `${field} ${issue.message ?? 'is invalid'}`;
}

const FASTIFY_CODES: Record<string, (error: FastifyError, request: FastifyRequest) => AppError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: (_e, request) => errors.payloadTooLarge(request.routeOptions.bodyLimit ?? 0),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (_e, request) => errors.unsupportedMediaType(request.headers['content-type']),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => errors.invalidRequest('Content-Length does not match the body'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => errors.invalidRequest('Request body is empty'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => errors.invalidRequest('Request body is not valid JSON'),
};

/** Maps anything thrown in a request to the catalogue. Unknown errors become a 500 that leaks nothing. */
export function toAppError(error: unknown, request: FastifyRequest): AppError {
  if (error instanceof AppError) return error;
  const fastifyError = error as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
  if (Array.isArray(fastifyError.validation) && fastifyError.validation.length > 0) {
    return errors.invalidRequest(describeValidation(fastifyError.validation[0]!, fastifyError.validationContext));
  }
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped) return mapped(fastifyError, request);
  const dbError = classifyDbError(error);
  if (dbError === 'unavailable') return errors.unavailable('The database is unavailable', 2, error);
  // A deadlock or lock timeout that outlasted inTransaction's retries (or hit a statement outside one) is contention, not a bug.
  if (dbError === 'retryable') return errors.unavailable('The database is busy; try again', 1, error);
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError(status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'invalid_request', fastifyError.message);
  }
  return new AppError('internal', 'Internal server error', undefined, { cause: error });
}

export function sendError(reply: FastifyReply, error: AppError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header('Retry-After', String(error.retryAfterSeconds));
  return reply.status(error.statusCode).send({ success: false, error: { code: error.code, message: error.message } });
}

/**
 * For Fastify's `frameworkErrors` option: errors raised before routing (a URL
 * that does not decode) get the catalogue's shape too, not Fastify's own.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void sendError(reply, toAppError(error, request));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error, request);
    if (appError.code === 'internal') request.log.error({ err: error }, 'Unhandled error');
    else if (appError.code === 'unavailable') request.log.warn({ err: appError.cause ?? error }, appError.message);
    return sendError(reply, appError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, errors.notFound(`No route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
