import type { Command } from 'commander';

import type { Config } from '../config.js';
import { backupDatabase, defaultBackupPath, describeContents, restoreDatabase } from './backup.js';
import type { Progress } from './backup.js';
import { doctorExitCode, formatBytes, formatCheck, formatDuration, runDoctor, summarize } from './doctor.js';
import { heartbeatSmoke } from './smoke.js';

export interface OpsIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

/** A one-line status on a terminal (stderr), redrawn at most ten times a second; nothing elsewhere. */
function progressLine(label: string): { update(progress: Progress): void; done(): void } {
  const stream = process.stderr;
  if (!stream.isTTY) return { update() {}, done() {} };
  const started = performance.now();
  let last = 0;
  let shown = false;
  return {
    update({ done, total, unit }) {
      const now = performance.now();
      if (now - last < 100 && !(total !== null && done >= total)) return;
      last = now;
      shown = true;
      const amount = unit === 'bytes' ? formatBytes(done) : `${done} pages`;
      const share = total ? ` ${Math.floor((100 * done) / total)}% of ${unit === 'bytes' ? formatBytes(total) : `${total} pages`}` : '';
      stream.write(`\r\x1b[2K${label}: ${amount}${share}, ${formatDuration(now - started)}`);
    },
    done() {
      if (shown) stream.write('\r\x1b[2K');
    },
  };
}

/**
 * The operations commands: doctor, backup, restore, smoke. Failures throw an
 * Error whose message is the one line `main` prints (exit 1).
 */
export function registerOpsCommands(program: Command, io: OpsIo, loadConfig: (env: NodeJS.ProcessEnv) => Config): void {
  const config = () => loadConfig(io.env);

  program
    .command('doctor')
    .description('Pre-deploy checks: database, migrations, serving, monitor leader, clocks, Redis, SQLite storage')
    .option('--json', 'print the checks as JSON')
    .addHelpText('after', '\nPrints one PASS/WARN/FAIL line per check. Exits 0 when nothing FAILs, 1 otherwise.')
    .action(async (options: { json?: boolean }) => {
      const results = await runDoctor({ config: config() });
      if (options.json) io.out(JSON.stringify({ ok: doctorExitCode(results) === 0, checks: results }, null, 2));
      else {
        for (const result of results) io.out(formatCheck(result));
        io.out(summarize(results));
      }
      if (doctorExitCode(results) !== 0) throw new Error(`doctor found ${results.filter((r) => r.status === 'fail').length} failing check(s)`);
    });

  program
    .command('backup')
    .description('Write a consistent copy of the database while servers keep serving')
    .option('--out <file>', 'where to write it (default: backups/fleetpulse-<database>-<UTC time>.<sqlite|sql>)')
    .addHelpText(
      'after',
      '\nSQLite: the online backup API (a SQLite file). PostgreSQL: pg_dump (postgresql-client).\nMySQL/MariaDB: mariadb-dump or mysqldump --single-transaction (mariadb-client).',
    )
    .action(async (options: { out?: string }) => {
      const cfg = config();
      const now = Date.now();
      const out = options.out ?? defaultBackupPath(cfg.database.kind, now);
      const progress = progressLine(`backup ${out}`);
      const result = await backupDatabase(cfg, out, { env: io.env, now, onProgress: progress.update });
      progress.done();
      if (!result.ok) throw new Error(`backup failed: ${result.error}`);
      io.out(`backup written: ${result.file} (${formatBytes(result.bytes)} in ${formatDuration(result.ms)})`);
    });

  program
    .command('restore')
    .description('Replace the database with a backup made by `fleetpulse backup`')
    .argument('<file>', 'the backup file')
    .option('--force', 'replace a database that already has tables (everything in it is replaced)')
    .addHelpText(
      'after',
      '\nStop the servers first (or expect errors while it runs). PostgreSQL restores in one transaction;\nMySQL drops the old tables first, then loads the dump. Afterwards `fleetpulse migrate up` brings the schema forward.',
    )
    .action(async (file: string, options: { force?: boolean }) => {
      const progress = progressLine(`restore ${file}`);
      const result = await restoreDatabase(config(), file, { env: io.env, force: options.force === true, onProgress: progress.update });
      progress.done();
      if (!result.ok) throw new Error(`restore failed: ${result.error}`);
      io.out(
        `restored ${file} in ${formatDuration(result.ms)}: now ${describeContents(result.after)}, schema ${result.after.schema ?? 'not migrated'}`,
      );
    });

  program
    .command('smoke')
    .description('Send one heartbeat end to end (through the load balancer) for a throwaway device, then remove it')
    .option('--url <url>', 'the base URL devices use (default: http://127.0.0.1:$PORT)')
    .action(async (options: { url?: string }) => {
      const cfg = config();
      const url = options.url ?? `http://127.0.0.1:${cfg.port}`;
      const result = await heartbeatSmoke(cfg, url);
      if (!result.ok) throw new Error(result.error);
      io.out(`smoke: heartbeat through ${url} answered "${result.status}" in ${formatDuration(result.ms)}`);
    });
}
