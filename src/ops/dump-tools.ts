import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** An external client program, and where Debian keeps it. */
export interface ToolSpec {
  /** Tried in order: the first one on PATH is used. */
  readonly names: readonly string[];
  readonly debianPackage: string;
}

export const TOOLS = {
  pgDump: { names: ['pg_dump'], debianPackage: 'postgresql-client' },
  psql: { names: ['psql'], debianPackage: 'postgresql-client' },
  mysqlDump: { names: ['mariadb-dump', 'mysqldump'], debianPackage: 'mariadb-client' },
  mysqlClient: { names: ['mariadb', 'mysql'], debianPackage: 'mariadb-client' },
} as const satisfies Record<string, ToolSpec>;

export type Env = Readonly<Record<string, string | undefined>>;

/** The first of the tool's names found on PATH, or null. */
export async function findTool(spec: ToolSpec, env: Env): Promise<string | null> {
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of spec.names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      const found = await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      );
      if (found) return candidate;
    }
  }
  return null;
}

export function missingToolMessage(spec: ToolSpec): string {
  return `${spec.names.join(' or ')} not found on PATH: install the Debian package ${spec.debianPackage} (apt-get install ${spec.debianPackage})`;
}

/** libpq connection settings: the URL without its password, which goes in PGPASSWORD (never on a command line). */
export function postgresConnection(url: string): { dbname: string; env: Record<string, string> } {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = '';
  if (parsed.protocol === 'postgres:') parsed.protocol = 'postgresql:';
  return { dbname: parsed.toString(), env: password ? { PGPASSWORD: password } : {} };
}

export interface MysqlConnection {
  /** Options for mariadb/mysql/mariadb-dump, `--defaults-extra-file` first as the clients require. */
  readonly args: string[];
  readonly database: string;
  /** Removes the temporary option file that holds the password. */
  cleanup(): Promise<void>;
}

function optionValue(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** Client options for a mysql:// URL; the password goes in a private option file, not on the command line. */
export async function mysqlConnection(url: string): Promise<MysqlConnection> {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  const dir = await mkdtemp(join(tmpdir(), 'fleetpulse-mysql-'));
  const file = join(dir, 'client.cnf');
  const lines = ['[client]', `user=${optionValue(decodeURIComponent(parsed.username) || 'root')}`];
  if (parsed.password) lines.push(`password=${optionValue(decodeURIComponent(parsed.password))}`);
  await writeFile(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return {
    args: [
      `--defaults-extra-file=${file}`,
      `--host=${parsed.hostname || '127.0.0.1'}`,
      `--port=${parsed.port || '3306'}`,
      '--protocol=TCP',
      '--default-character-set=utf8mb4',
    ],
    database,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines the program wrote to stderr. */
  readonly stderr: string;
}

/** Collects a child's exit and the tail of its stderr; never rejects. */
export function waitForExit(child: ChildProcess): Promise<Exit> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8192);
  });
  return new Promise((resolve) => {
    child.once('error', (error) => resolve({ code: -1, signal: null, stderr: error.message }));
    child.once('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** One line saying why a client program failed. */
export function describeExit(tool: string, exit: Exit): string {
  const lines = exit.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^(pg_dump|psql): (detail|hint):/i.test(l));
  const reason = lines.find((l) => /error|fatal|denied|unknown|could not/i.test(l)) ?? lines.at(-1) ?? 'no error output';
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return `${tool} ${how}: ${reason}`;
}

export function spawnTool(path: string, args: readonly string[], env: Env, extraEnv: Record<string, string> = {}): ChildProcess {
  return spawn(path, args, { env: { ...env, ...extraEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
}
