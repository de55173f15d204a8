/**
 * Database errors by meaning, as tables of driver codes rather than `if`s
 * scattered over the code.
 */

export type DbErrorKind = 'retryable' | 'unavailable' | 'unique_violation' | 'other';

const RETRYABLE_CODES = new Set([
  '40001', // PostgreSQL serialization_failure
  '40P01', // PostgreSQL deadlock_detected
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'SQLITE_BUSY',
  'SQLITE_BUSY_SNAPSHOT',
  'SQLITE_LOCKED',
]);

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_TOO_MANY_USER_CONNECTIONS',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  'SQLITE_IOERR',
  'SQLITE_FULL',
  'SQLITE_CANTOPEN',
]);

const UNIQUE_CODES = new Set(['23505', 'ER_DUP_ENTRY', 'SQLITE_CONSTRAINT_UNIQUE']);

const UNAVAILABLE_MESSAGES = [
  /Connection terminated/i,
  /connection timeout/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /Can't add new command when connection is in closed state/i,
  /Pool is closed/i,
  /connect ECONNREFUSED/i,
  /The database connection is not open/i,
];

export function classifyDbError(error: unknown): DbErrorKind {
  if (typeof error !== 'object' || error === null) return 'other';
  const code = String((error as { code?: unknown }).code ?? '');
  if (RETRYABLE_CODES.has(code)) return 'retryable';
  if (UNIQUE_CODES.has(code)) return 'unique_violation';
  if (UNAVAILABLE_CODES.has(code)) return 'unavailable';
  const message = (error as { message?: unknown }).message;
  if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(message))) return 'unavailable';
  const cause = (error as { cause?: unknown }).cause;
  return cause !== undefined && cause !== error ? classifyDbError(cause) : 'other';
}
