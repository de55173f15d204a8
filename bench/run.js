// fleetpulse benchmark harness: `npm run bench -- [options]` (see BENCHMARKS.md).
import { mkdirSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DB_KINDS, databaseVersion } from './lib/databases.js';
import { cleanupAll, installExitHandlers } from './lib/processes.js';
import { machine, table } from './lib/report.js';
import { REPO_ROOT } from './lib/servers.js';
import { detection } from './scenarios/detection.js';
import { ingest } from './scenarios/ingest.js';
import { memory } from './scenarios/memory.js';
import { sweep } from './scenarios/sweep.js';

/**
 * @typedef {object} Options
 * @property {string[]} scenarios
 * @property {import('./lib/databases.js').DbKind[]} dbs
 * @property {number} devices            ingest: registered devices
 * @property {number} duration           ingest: seconds per measured run
 * @property {number} warmup             ingest: seconds of warm-up before each run
 * @property {number} connections        ingest: concurrent connections
 * @property {number} detectionDevices   detection: silent devices
 * @property {boolean} smoke
 */

/**
 * @typedef {object} ScenarioContext
 * @property {Options} options
 * @property {import('./lib/databases.js').DbKind} db
 * @property {Map<string, unknown>} shared values reused across databases (the bare baseline)
 */

/**
 * @typedef {object} ScenarioResult
 * @property {Record<string, unknown>} data for the JSON file
 * @property {string[]} lines for stdout
 * @property {Array<{ name: string, ok: boolean, detail: string }>} checks the harness worked (a failure → exit 1)
 * @property {Array<{ metric: string, goal: string, value: string, met: boolean | null }>} goals issue 4's goals (never fail the run)
 */

/** @type {{ [name: string]: { run: (ctx: ScenarioContext) => Promise<ScenarioResult>, perDatabase: boolean } }} */
const SCENARIOS = {
  ingest: { run: ingest, perDatabase: true },
  sweep: { run: sweep, perDatabase: true },
  detection: { run: detection, perDatabase: true },
  memory: { run: memory, perDatabase: false },
};

const DEFAULTS = { devices: 50_000, duration: 15, warmup: 3, connections: 64, 'detection-devices': 1_000 };
const SMOKE = { devices: 200, duration: 2, warmup: 1, connections: 64, 'detection-devices': 20 };

const HELP = `Usage: npm run bench -- [options]

  --scenario S          ingest | sweep | detection | memory | all (default all; comma list allowed)
  --db D                sqlite | postgres | mysql | all (default sqlite; comma list allowed)
  --devices N           ingest: devices registered (default ${DEFAULTS.devices})
  --duration S          ingest: seconds per measured run (default ${DEFAULTS.duration})
  --warmup S            ingest: warm-up seconds before each run (default ${DEFAULTS.warmup})
  --connections C       ingest: concurrent connections for both servers (default ${DEFAULTS.connections})
  --detection-devices N detection: devices that go silent (default ${DEFAULTS['detection-devices']})
  --smoke               tiny sizes (${SMOKE.devices} devices, ${SMOKE.duration} s runs, ${SMOKE['detection-devices']} silent devices) for CI
  -h, --help

Exit code 0 when every harness check passed (server started, metric matched,
no errors); 1 when one failed; 2 for bad options. Performance goals are
reported, never enforced.`;

/** @returns {Options} */
function parseOptions() {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'all' },
      db: { type: 'string', default: 'sqlite' },
      devices: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      'detection-devices': { type: 'string' },
      smoke: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const base = values.smoke ? SMOKE : DEFAULTS;
  /** @param {keyof typeof DEFAULTS} name */
  const positive = (name) => {
    const text = values[name] ?? String(base[name]);
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${text}"`);
    return n;
  };
  /** @param {string} text @param {readonly string[]} allowed @param {string} flag */
  const list = (text, allowed, flag) => {
    const items = text === 'all' ? [...allowed] : text.split(',').map((s) => s.trim());
    const bad = items.filter((s) => !allowed.includes(s));
    if (bad.length || items.length === 0) throw new Error(`--${flag}: unknown "${bad.join(',')}" (use ${allowed.join(', ')} or all)`);
    return items;
  };
  const options = {
    scenarios: list(values.scenario, Object.keys(SCENARIOS), 'scenario'),
    dbs: /** @type {Options['dbs']} */ (list(values.db, DB_KINDS, 'db')),
    devices: positive('devices'),
    duration: positive('duration'),
    warmup: positive('warmup'),
    connections: positive('connections'),
    detectionDevices: positive('detection-devices'),
    smoke: values.smoke,
  };
  return options;
}

/**
 * An error's message with its causes (fetch only says "fetch failed" without them).
 * @param {unknown} err
 * @returns {string}
 */
function describe(err) {
  if (!(err instanceof Error)) return String(err);
  return err.cause ? `${err.message}: ${describe(err.cause)}` : err.message;
}

/** @param {Array<{ metric: string, goal: string, value: string, met: boolean | null }>} goals */
function goalsTable(goals) {
  const status = (/** @type {boolean | null} */ met) => (met === null ? '–' : met ? 'met' : 'MISSED');
  return table([['metric', 'goal', 'measured', 'status'], ...goals.map((g) => [g.metric, g.goal, g.value, status(g.met)])]);
}

async function main() {
  let options;
  try {
    options = parseOptions();
  } catch (err) {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
    return 2;
  }
  installExitHandlers();
  const date = new Date();
  const host = machine();
  /** @type {Record<string, string>} */
  const databases = {};
  for (const db of options.dbs) databases[db] = await databaseVersion(db);

  console.log(`fleetpulse bench — ${date.toISOString()}${options.smoke ? ' — SMOKE RUN (tiny sizes, numbers not meaningful)' : ''}`);
  console.log(`${host.nproc} CPUs (${host.cpuModel}), ${host.memoryMB} MB, Node ${host.node}, commit ${host.commit ?? '?'}`);
  for (const [db, version] of Object.entries(databases)) console.log(`${db}: ${version}`);
  if (host.loadAverage1m >= 0.5) {
    console.log(`WARNING: the machine is busy (1-minute load ${host.loadAverage1m.toFixed(2)}); numbers will be low and noisy`);
  }

  const results = [];
  const checks = [];
  const goals = [];
  const shared = new Map();
  for (const name of options.scenarios) {
    const { run, perDatabase } = /** @type {(typeof SCENARIOS)[string]} */ (SCENARIOS[name]);
    for (const db of perDatabase ? options.dbs : options.dbs.slice(0, 1)) {
      const title = perDatabase ? `${name} (${db})` : name;
      console.log(`\n== ${title} ==`);
      const started = Date.now();
      try {
        const result = await run({ options, db, shared });
        console.log(result.lines.join('\n'));
        results.push({ scenario: name, db: perDatabase ? db : null, seconds: (Date.now() - started) / 1000, ...result.data });
        checks.push(...result.checks);
        goals.push(...result.goals);
      } catch (err) {
        const message = describe(err);
        console.log(`FAILED: ${message}`);
        results.push({ scenario: name, db, error: message });
        checks.push({ name: `${title} ran`, ok: false, detail: message.replace(/\s*\n\s*/g, ' | ').slice(0, 300) });
        await cleanupAll();
      }
    }
  }

  console.log(`\n== goals (issue 4)${options.smoke ? ' — smoke run, not meaningful' : ''} ==`);
  console.log(goals.length ? goalsTable(goals) : '(nothing measured)');
  console.log('\n== harness checks ==');
  for (const c of checks) console.log(`${c.ok ? 'OK      ' : 'FAILED  '} ${c.name}${c.ok ? '' : ` — ${c.detail}`}`);
  const ok = checks.every((c) => c.ok);

  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${date.toISOString().replace(/[:.]/g, '-')}${options.smoke ? '-smoke' : ''}.json`, dir);
  const report = { date: date.toISOString(), command: process.argv.slice(2), options, machine: host, databases, results, goals, checks, ok };
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\n${ok ? 'OK' : 'FAILED'} — results written to ${relative(REPO_ROOT, fileURLToPath(file))}`);
  return ok ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(err);
} finally {
  await cleanupAll();
}
process.exit(code);
