// Scenario "memory": the server's RSS with 1,000,000 registered devices, after
// an ingest run over a slice of them (SQLite: the embedded default).
import { startLoadgen } from '../lib/loadgen-client.js';
import { createDatabase } from '../lib/databases.js';
import { openFleetDatabase, seedConnectedFleet } from '../lib/fleet.js';
import { onCleanup } from '../lib/processes.js';
import { num } from '../lib/report.js';
import { startFleetpulse } from '../lib/servers.js';

const DEVICES = 1_000_000;
const SMOKE_DEVICES = 5_000;
const GOAL_MB = 250;

/** @param {import('../run.js').ScenarioContext} ctx */
export async function memory({ options }) {
  const total = options.smoke ? SMOKE_DEVICES : DEVICES;
  const active = Math.min(total, options.devices);
  const bench = await createDatabase('sqlite');
  const drop = onCleanup('drop sqlite database', bench.drop);
  try {
    const database = await openFleetDatabase(bench.url);
    const tokens = await seedConnectedFleet(database, total, { withTokens: active });
    await database.close();

    const server = await startFleetpulse({
      databaseUrl: bench.url,
      env: { FLEETPULSE_HEARTBEAT_BURST: '1000000', FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS: '5' },
    });
    const loadgen = await startLoadgen();
    try {
      const idleMB = (server.rssBytes() ?? 0) / 2 ** 20;
      await loadgen.setTokens(tokens);
      const run = await loadgen.run({ url: server.url, connections: options.connections, duration: options.duration });
      server.assertRunning();
      const afterMB = (server.rssBytes() ?? 0) / 2 ** 20;
      return {
        data: { devices: total, activeDevices: active, idleMB, afterMB, requests: run.ok2xx },
        lines: [
          `${num(total)} devices registered; ${num(active)} of them heartbeating (${num(run.ok2xx)} heartbeats in ${num(run.elapsedSeconds, 1)} s)`,
          `server RSS: ${num(idleMB, 1)} MB idle, ${num(afterMB, 1)} MB after the ingest run`,
        ],
        checks: [{ name: 'memory: heartbeats answered', ok: run.non2xx === 0 && run.ok2xx > 0, detail: `2xx ${run.ok2xx}, non-2xx ${run.non2xx}` }],
        goals: [{ metric: `RSS with ${num(total)} devices`, goal: `≤ ${GOAL_MB} MB`, value: `${num(afterMB, 1)} MB`, met: afterMB <= GOAL_MB }],
      };
    } finally {
      await loadgen.stop();
      await server.stop();
    }
  } finally {
    await drop();
  }
}
