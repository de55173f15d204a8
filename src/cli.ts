import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import { STAFF_ROLES } from './auth/api-token.table.js';
import { insertApiToken } from './auth/api-token.repository.js';
import type { StaffRole } from './auth/api-token.table.js';
import { generateToken, hashToken } from './auth/tokens.js';
import { ConfigError, loadConfig } from './config.js';
import type { Config } from './config.js';
import { createContext } from './context.js';
import type { AppContext } from './context.js';
import { migrateDown, migrateUp, migrationStatus } from './db/migrate.js';
import { presentDevice } from './devices/device.service.js';
import { AppError } from './errors.js';
import { previewSweep, sweepOnce } from './monitor/sweep.js';
import type { SweepResult } from './monitor/sweep.js';
import { createLogger } from './observability/logger.js';
import { registerOpsCommands } from './ops/commands.js';
import { runMonitor, startServer } from './server.js';
import { STATUSES, STATUS_LABELS } from './status/status.js';
import type { Status } from './status/status.js';
import type { NewTransition } from './transitions/transition.repository.js';

type Out = (line: string) => void;

interface Io {
  readonly out: Out;
  readonly err: Out;
  readonly env: NodeJS.ProcessEnv;
}

/** An error with the exit code the CLI should end with. */
class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

function positiveInt(name: string) {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return Number(value);
  };
}

/** A context for a one-shot command: logs go to stderr so stdout stays the command's output. */
async function withContext<T>(config: Config, fn: (ctx: AppContext) => Promise<T>, { migrate = true } = {}): Promise<T> {
  const ctx = createContext(config, { logger: createLogger(config.logLevel, 2) });
  try {
    if (migrate && config.autoMigrate) await migrateUp(ctx.database);
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

function describe(t: NewTransition): string {
  return `${t.device_name} (id ${t.device_id}): ${STATUS_LABELS[t.from_status]} -> ${STATUS_LABELS[t.to_status]} at ${new Date(t.at).toISOString()}; ${t.reason}`;
}

function printSweep(out: Out, result: SweepResult, { dryRun, verbose }: { dryRun: boolean; verbose: boolean }): void {
  if (result.skipped === 'no_receiver') {
    out('No server is receiving heartbeats right now, so no device is blamed for the silence (downtime awareness). Nothing changed.');
    return;
  }
  for (const t of result.transitions) out(`${dryRun ? 'would change ' : 'changed '}${describe(t)}`);
  if (verbose || result.transitions.length === 0) {
    out(
      `${dryRun ? 'Dry run: ' : ''}${result.checked} due device(s) checked, ${result.transitions.length} transition(s)${
        dryRun ? ' would be made; nothing was changed' : ' made'
      }.`,
    );
  }
}

function signalPromise(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}

export function buildCli(io: Io): Command {
  const config = () => loadConfig(io.env);
  const program = new Command('fleetpulse')
    .description('The single source of truth for whether each kiosk and signage screen is online.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError(false);

  program
    .command('serve')
    .description('Run the HTTP server and the in-process monitor (what `npm start` runs)')
    .action(async () => {
      const cfg = config();
      const server = await startServer(cfg, { logger: createLogger(cfg.logLevel) });
      const signal = await signalPromise();
      server.ctx.logger.info({ signal }, 'Shutting down');
      const timer = setTimeout(() => {
        server.ctx.logger.error('Drain took too long; exiting');
        process.exit(1);
      }, cfg.shutdownTimeoutMs);
      timer.unref();
      await server.stop();
      clearTimeout(timer);
    });

  program
    .command('monitor')
    .description('Sweep for devices whose silence crossed a threshold; loops unless --once')
    .option('--once', 'one sweep, then exit')
    .option('--dry-run', 'print what would change, changing nothing (implies --once)')
    .option('--verbose', 'also print what was checked')
    .action(async (options: { once?: boolean; dryRun?: boolean; verbose?: boolean }) => {
      const cfg = config();
      const dryRun = options.dryRun === true;
      if (options.once || dryRun) {
        await withContext(cfg, async (ctx) => {
          const now = ctx.clock();
          if (dryRun) {
            printSweep(io.out, await previewSweep(ctx.sweepDeps, now), { dryRun, verbose: options.verbose === true });
            return;
          }
          const transitions: NewTransition[] = [];
          let checked = 0;
          for (;;) {
            const step = await sweepOnce(ctx.sweepDeps, now);
            transitions.push(...step.transitions);
            checked += step.checked;
            if (step.skipped || !step.more) {
              printSweep(io.out, { ...step, transitions, checked }, { dryRun, verbose: options.verbose === true });
              return;
            }
          }
        });
        return;
      }
      const ctx = createContext(cfg, { logger: createLogger(options.verbose ? 'debug' : cfg.logLevel) });
      try {
        if (cfg.autoMigrate) await migrateUp(ctx.database);
        const monitor = runMonitor(ctx);
        ctx.logger.info({ intervalMs: cfg.monitorIntervalMs }, 'Monitor running');
        ctx.logger.info({ signal: await signalPromise() }, 'Shutting down');
        const timer = setTimeout(() => {
          ctx.logger.error('The current sweep took too long to finish; exiting');
          process.exit(1);
        }, cfg.shutdownTimeoutMs);
        timer.unref();
        await monitor.stop();
        clearTimeout(timer);
      } finally {
        await ctx.close();
      }
    });

  const migrate = program.command('migrate').description('Schema migrations (each one reversible)');
  migrate
    .command('status')
    .description('List migrations and whether each has been applied')
    .action(async () => {
      await withContext(
        config(),
        async (ctx) => {
          for (const m of await migrationStatus(ctx.database)) {
            io.out(`${m.executedAt ? 'applied' : 'pending'}  ${m.name}${m.executedAt ? `  (${m.executedAt.toISOString()})` : ''}`);
          }
        },
        { migrate: false },
      );
    });
  migrate
    .command('up')
    .description('Apply pending migrations')
    .option('--step <n>', 'apply at most n', positiveInt('--step'))
    .action(async (options: { step?: number }) => {
      await withContext(
        config(),
        async (ctx) => {
          const applied = await migrateUp(ctx.database, options.step);
          io.out(applied.length ? applied.map((n) => `applied  ${n}`).join('\n') : 'Nothing to apply: the schema is up to date.');
        },
        { migrate: false },
      );
    });
  migrate
    .command('down')
    .description('Revert the latest migration(s)')
    .option('--step <n>', 'revert n migrations', positiveInt('--step'), 1)
    .action(async (options: { step: number }) => {
      await withContext(
        config(),
        async (ctx) => {
          const reverted = await migrateDown(ctx.database, options.step);
          io.out(reverted.length ? reverted.map((n) => `reverted ${n}`).join('\n') : 'Nothing to revert.');
        },
        { migrate: false },
      );
    });

  const devices = program.command('devices').description('Register and list devices');
  devices
    .command('add')
    .description('Register a device; prints its id and token (shown only once)')
    .requiredOption('--name <name>', 'display name, up to 200 characters')
    .option('--interval <seconds>', 'heartbeat interval told to the device', positiveInt('--interval'))
    .option('--timeout <seconds>', 'silence before Temporarily Offline', positiveInt('--timeout'))
    .option('--grace-period <seconds>', 'silence before Offline', positiveInt('--grace-period'))
    .action(async (options: { name: string; interval?: number; timeout?: number; gracePeriod?: number }) => {
      await withContext(config(), async (ctx) => {
        const [created] = await ctx.devices.create([
          {
            name: options.name,
            heartbeat_interval_seconds: options.interval,
            heartbeat_timeout_seconds: options.timeout,
            grace_period_seconds: options.gracePeriod,
          },
        ]);
        io.out(`id: ${created!.device.id}`);
        io.out(`token: ${created!.token}`);
      });
    });
  devices
    .command('list')
    .description('List devices')
    .addOption(new Option('--status <status>', 'only devices with this status').choices(STATUSES))
    .option('--json', 'print JSON instead of a table')
    .action(async (options: { status?: Status; json?: boolean }) => {
      await withContext(config(), async (ctx) => {
        const all = [];
        for (let afterId: number | undefined; ; ) {
          const rows = await ctx.devices.list({ status: options.status, afterId, limit: 1000 });
          all.push(...rows.map(presentDevice));
          if (rows.length < 1000) break;
          afterId = rows.at(-1)!.id;
        }
        if (options.json) {
          io.out(JSON.stringify(all, null, 2));
          return;
        }
        const header = ['ID', 'NAME', 'STATUS', 'LAST HEARTBEAT', 'GRACE'];
        const lines = all.map((d) => [String(d.id), d.name, STATUS_LABELS[d.status], d.last_heartbeat_at ?? '-', `${d.grace_period_seconds}s`]);
        const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
        for (const line of [header, ...lines]) io.out(line.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
        if (all.length === 0) io.out('(no devices)');
      });
    });

  const tokens = program.command('tokens').description('API tokens for people and services');
  tokens
    .command('create')
    .description('Create a token; prints it (shown only once, stored as a hash)')
    .addOption(new Option('--role <role>', 'what the token may do').choices(STAFF_ROLES).makeOptionMandatory())
    .option('--label <label>', 'a note on who uses it')
    .action(async (options: { role: StaffRole; label?: string }) => {
      await withContext(config(), async (ctx) => {
        const token = generateToken();
        await insertApiToken(ctx.database.db, { role: options.role, token_hash: hashToken(token), label: options.label ?? null }, ctx.clock());
        io.out(token);
      });
    });

  registerOpsCommands(program, io, loadConfig);

  return program;
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  const program = buildCli(io);
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof ConfigError) {
      io.err(`fleetpulse: invalid configuration: ${error.message}`);
      return 2;
    }
    if (error instanceof ExitError) {
      io.err(`fleetpulse: ${error.message}`);
      return error.exitCode;
    }
    const message = error instanceof AppError || error instanceof Error ? error.message : String(error);
    io.err(`fleetpulse: ${message.split('\n')[0]}`);
    return 1;
  }
}

function defaultIo(): Io {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
  };
}

export { ExitError };
