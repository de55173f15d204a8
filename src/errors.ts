/**
 * The error catalogue: every error a client can see has a code from here.
 * Anything else is a bug and becomes a 500 that leaks nothing.
 */

export const ERROR_CODES = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Seconds for a `Retry-After` header (429 and 503). */
    readonly retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
    this.statusCode = ERROR_CODES[code];
  }
}

export const errors = {
  invalidRequest: (message: string) => new AppError('invalid_request', message),
  unauthorized: (message = 'A valid bearer token is required') => new AppError('unauthorized', message),
  forbidden: (message = 'This token may not do that') => new AppError('forbidden', message),
  notFound: (message: string) => new AppError('not_found', message),
  conflict: (message: string) => new AppError('conflict', message),
  payloadTooLarge: (limitBytes: number) =>
    new AppError('payload_too_large', `Request body is larger than ${limitBytes} bytes`),
  unsupportedMediaType: (contentType: string | undefined) =>
    new AppError(
      'unsupported_media_type',
      `Request bodies must be application/json${contentType ? `, got ${contentType}` : ''}`,
    ),
  rateLimited: (retryAfterSeconds: number, message = 'Too many requests') =>
    new AppError('rate_limited', message, Math.max(1, Math.ceil(retryAfterSeconds))),
  unavailable: (message = 'The service is temporarily unavailable', retryAfterSeconds = 2, cause?: unknown) =>
    new AppError('unavailable', message, retryAfterSeconds, { cause }),
};

/** Turns anything thrown into an Error (`catch (e: unknown)` goes through here). */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value));
}
