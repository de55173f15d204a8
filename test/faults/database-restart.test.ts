/**
 * The database server restarts under load: a private server (its own folder
 * and port; the machine's shared servers are never touched) is shut down —
 * every session terminated, as in a real restart — kept down, and started
 * again on the same data.
 */
import { afterEach, describe, it } from 'vitest';

import { DIALECTS } from '../support/databases.js';
import { privateMariadbUnavailable, startPrivateMariadb } from '../support/private-mariadb.js';
import { privatePostgresUnavailable, startPrivatePostgres } from '../support/private-postgres.js';
import { stopAllProcesses } from '../support/processes.js';
import { runOutage } from './outage-scenario.js';

describe('the database server restarting', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await stopAllProcesses();
    for (const step of cleanup.splice(0)) await step();
  });

  it.runIf(DIALECTS.includes('postgres') && privatePostgresUnavailable() === null)(
    'answers 503 with Retry-After, never 500 or a crash, recovers by itself, and blames no device (PostgreSQL fast shutdown and start)',
    async () => {
      const server = await startPrivatePostgres('fleetpulse');
      cleanup.push(() => server.destroy());
      await runOutage({ name: 'private postgres restart', databaseUrl: server.url('fleetpulse'), takeAway: () => server.stop(), bringBack: () => server.start() });
    },
    60_000,
  );

  it.runIf(DIALECTS.includes('mysql') && privateMariadbUnavailable() === null)(
    'answers 503 with Retry-After, never 500 or a crash, recovers by itself, and blames no device (MariaDB shutdown and start)',
    async () => {
      const server = await startPrivateMariadb('fleetpulse');
      cleanup.push(() => server.destroy());
      await runOutage({ name: 'private mariadb restart', databaseUrl: server.url('fleetpulse'), takeAway: () => server.stop(), bringBack: () => server.start() });
    },
    60_000,
  );
});
