/**
 * The shared database becomes unreachable under load: a TCP proxy between
 * the processes and the server is cut (new connections refused, open ones
 * reset in both directions), then restored. The server itself is never touched.
 */
import { afterAll, describe, it } from 'vitest';

import { createTestDatabase, DIALECTS } from '../support/databases.js';
import { stopAllProcesses } from '../support/processes.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { runOutage } from './outage-scenario.js';

const NETWORK_DIALECTS = DIALECTS.filter((d) => d === 'postgres' || d === 'mysql');

describe.runIf(NETWORK_DIALECTS.length > 0)('the database becoming unreachable', () => {
  afterAll(() => stopAllProcesses());

  for (const dialect of NETWORK_DIALECTS) {
    it(`answers 503 with Retry-After, never 500 or a crash, recovers by itself, and blames no device (${dialect})`, async () => {
      const database = await createTestDatabase(dialect);
      const direct = new URL(database.url);
      const proxy = await TcpProxy.start(direct.hostname, Number(direct.port));
      const proxied = new URL(database.url);
      proxied.port = String(proxy.port);
      try {
        await runOutage({
          name: `${dialect} behind a cut proxy`,
          databaseUrl: proxied.toString(),
          checkUrl: database.url,
          takeAway: () => proxy.cut(),
          bringBack: () => proxy.restore(),
        });
      } finally {
        await proxy.close();
        await database.drop();
      }
    }, 60_000);
  }
});
