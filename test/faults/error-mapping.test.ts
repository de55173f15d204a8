/**
 * What a request gets when the database fails in each of the ways the fault
 * tests provoke (and a few they cannot provoke on demand): always a 503
 * `unavailable` with Retry-After, never a 500.
 */
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';

import { toAppError } from '../../src/http/error-handler.js';

const request = { routeOptions: {}, headers: {} } as unknown as FastifyRequest;
const dbError = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});

describe('a database failure seen by a request', () => {
  const cases: [string, Error][] = [
    ['the server refuses connections', dbError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['the connection is reset', dbError('read ECONNRESET', 'ECONNRESET')],
    ['PostgreSQL shuts down (fast)', dbError('terminating connection due to administrator command', '57P01')],
    ['PostgreSQL is starting up', dbError('the database system is starting up', '57P03')],
    ['a pg connection ends mid-query', dbError('Connection terminated unexpectedly')],
    ['a pg client is reused after its connection failed', dbError('Client has encountered a connection error and is not queryable')],
    ['the pg pool cannot connect in time', dbError('timeout exceeded when trying to connect')],
    ['a MySQL connection is lost', dbError('Connection lost: The server closed the connection.', 'PROTOCOL_CONNECTION_LOST')],
    ['a closed MySQL connection is used', dbError("Can't add new command when connection is in closed state")],
    ['MariaDB shuts down', dbError('Server shutdown in progress', 'ER_SERVER_SHUTDOWN')],
    ['a deadlock outlasts the retries (PostgreSQL)', dbError('deadlock detected', '40P01')],
    ['a serialization failure outlasts the retries', dbError('could not serialize access', '40001')],
    ['a deadlock outlasts the retries (MySQL)', dbError('Deadlock found when trying to get lock', 'ER_LOCK_DEADLOCK')],
    ['a lock wait times out (MySQL)', dbError('Lock wait timeout exceeded', 'ER_LOCK_WAIT_TIMEOUT')],
    ['the cause is wrapped', new Error('Migration failed', { cause: dbError('read ECONNRESET', 'ECONNRESET') })],
  ];
  for (const [name, error] of cases) {
    it(`is a 503 with Retry-After when ${name}`, () => {
      const mapped = toAppError(error, request);
      expect({ status: mapped.statusCode, code: mapped.code }).toEqual({ status: 503, code: 'unavailable' });
      expect(mapped.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    });
  }

  it('is still a 500 for an error that is not the database being unavailable or busy', () => {
    expect(toAppError(dbError('syntax error at or near "SELEC"', '42601'), request).statusCode).toBe(500);
  });
});
