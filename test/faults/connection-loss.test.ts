/**
 * The database connection drops while it is in use. In a real process an
 * error nobody listens for is an uncaught exception that ends the process;
 * here Vitest fails the run on one, so these tests also prove there is none.
 */
import { sql } from 'kysely';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';

import { parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import type { Database } from '../../src/db/database.js';
import { classifyDbError } from '../../src/db/db-errors.js';
import { inTransaction } from '../../src/db/transaction.js';
import { DIALECTS } from '../support/databases.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const ADMIN_URLS = {
  postgres: process.env.FLEETPULSE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mysql: process.env.FLEETPULSE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
} as const;

const NETWORK_DIALECTS = DIALECTS.filter((d): d is keyof typeof ADMIN_URLS => d === 'postgres' || d === 'mysql');

/** How a database call ended: 'succeeded', or the kind of error. Never rejects. */
async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'succeeded';
  } catch (error) {
    return classifyDbError(error);
  }
}

describe.runIf(NETWORK_DIALECTS.length > 0)('a database connection lost while in use', () => {
  let proxy: TcpProxy | null = null;
  let database: Database | null = null;
  afterEach(async () => {
    await database?.close();
    await proxy?.close();
    database = null;
    proxy = null;
  });

  async function open(dialect: keyof typeof ADMIN_URLS): Promise<{ proxy: TcpProxy; database: Database; lost: Error[] }> {
    const target = new URL(ADMIN_URLS[dialect]);
    proxy = await TcpProxy.start(target.hostname, Number(target.port));
    const url = new URL(ADMIN_URLS[dialect]);
    url.port = String(proxy.port);
    const lost: Error[] = [];
    database = openDatabase(parseDatabaseUrl(url.toString()), { poolSize: 3, onPoolError: (error) => lost.push(error) });
    return { proxy, database, lost };
  }

  for (const dialect of NETWORK_DIALECTS) {
    it(`fails the transaction as unavailable, without an uncaught error, and reconnects once the database is back (${dialect})`, async () => {
      const { proxy, database, lost } = await open(dialect);
      await sql`SELECT 1`.execute(database.db);

      // Between two statements of a transaction: the connection is checked out but idle.
      const between = outcome(
        inTransaction(database, async (trx) => {
          await sql`SELECT 1`.execute(trx);
          await sleep(600);
          await sql`SELECT 2`.execute(trx);
        }),
      );
      // In the middle of a statement.
      const during = outcome(
        inTransaction(database, async (trx) => {
          await sql`SELECT 1`.execute(trx);
          await (dialect === 'postgres' ? sql`SELECT pg_sleep(2)` : sql`SELECT SLEEP(2)`).execute(trx);
        }),
      );
      const idle = sleep(300).then(() => proxy.cut());
      expect(await between).toBe('unavailable');
      expect(await during).toBe('unavailable');
      await idle;
      expect(await outcome(sql`SELECT 1`.execute(database.db))).toBe('unavailable');
      expect(lost.length).toBeGreaterThan(0);

      await proxy.restore();
      expect(await outcome(sql`SELECT 1`.execute(database.db))).toBe('succeeded');
      expect(await outcome(inTransaction(database, (trx) => sql`SELECT 1`.execute(trx)))).toBe('succeeded');
    }, 20_000);
  }
});
