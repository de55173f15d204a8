/**
 * The one place that reads the environment. Everything else receives a frozen
 * `Config` and never looks at `process.env`.
 */

export type DatabaseKind = 'sqlite' | 'postgres' | 'mysql';

export interface DatabaseConfig {
  readonly kind: DatabaseKind;
  /** The URL as given (credentials included: never log it, use `redactUrl`). */
  readonly url: string;
  /** For SQLite: the file path, or `:memory:`. */
  readonly sqlitePath?: string;
}

export interface ThresholdDefaults {
  readonly heartbeatIntervalSeconds: number;
  readonly heartbeatTimeoutSeconds: number;
  readonly gracePeriodSeconds: number;
}

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly database: DatabaseConfig;
  readonly redisUrl: string | null;
  /** Prefix of every Redis key and channel, so several deployments can share one Redis. */
  readonly redisPrefix: string;
  readonly adminToken: string | null;
  readonly monitorEnabled: boolean;
  readonly monitorIntervalMs: number;
  readonly defaults: ThresholdDefaults;
  readonly heartbeatBurst: number;
  /** Seconds per refilled token; 0 disables the per-device limit. */
  readonly heartbeatMinIntervalSeconds: number;
  readonly logLevel: string;
  /** Apply pending migrations when `serve` starts. */
  readonly autoMigrate: boolean;
  /** Use X-Forwarded-For for client addresses (set behind a load balancer). */
  readonly trustProxy: boolean;
  /** How long a draining server waits for in-flight work before it exits. */
  readonly shutdownTimeoutMs: number;
}

/** Thrown for a bad environment; the message is one line naming the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export const MAX_THRESHOLD_SECONDS = 86_400;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function number(
  env: Env,
  name: string,
  fallback: number,
  { min, max, integer }: { min: number; max: number; integer: boolean },
): number {
  const text = raw(env, name);
  if (text === undefined) return fallback;
  if (!/^-?\d+(\.\d+)?$/.test(text)) throw new ConfigError(name, `expected a number, got "${text}"`);
  const value = Number(text);
  if (integer && !Number.isInteger(value)) throw new ConfigError(name, `expected an integer, got "${text}"`);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${text}`);
  return value;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const text = raw(env, name)?.toLowerCase();
  if (text === undefined) return fallback;
  if (['on', 'true', '1', 'yes'].includes(text)) return true;
  if (['off', 'false', '0', 'no'].includes(text)) return false;
  throw new ConfigError(name, `expected on or off, got "${text}"`);
}

export function parseDatabaseUrl(url: string, variable = 'DATABASE_URL'): DatabaseConfig {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw new ConfigError(variable, 'sqlite: needs a path, e.g. sqlite:./data/fleetpulse.sqlite or sqlite::memory:');
    return { kind: 'sqlite', url, sqlitePath: path };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(variable, `not a valid URL: "${redactUrl(url)}"`);
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (scheme === 'postgres' || scheme === 'postgresql') return { kind: 'postgres', url };
  if (scheme === 'mysql' || scheme === 'mariadb') return { kind: 'mysql', url };
  throw new ConfigError(variable, `unknown database scheme "${scheme}:" (use sqlite:, postgres:// or mysql://)`);
}

/** The URL with any password replaced, safe for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

export function loadConfig(env: Env = process.env): Config {
  const port = number(env, 'PORT', 8080, { min: 0, max: 65_535, integer: true });
  const host = raw(env, 'HOST') ?? '0.0.0.0';
  const database = parseDatabaseUrl(raw(env, 'DATABASE_URL') ?? 'sqlite:./data/fleetpulse.sqlite');
  const redisUrl = raw(env, 'REDIS_URL') ?? null;
  if (redisUrl !== null && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError('REDIS_URL', 'expected redis://host:port or rediss://host:port');
  }
  const adminToken = raw(env, 'FLEETPULSE_ADMIN_TOKEN') ?? null;
  if (adminToken !== null && adminToken.length < 16) {
    throw new ConfigError('FLEETPULSE_ADMIN_TOKEN', 'must be at least 16 characters long');
  }

  const seconds = { min: 1, max: MAX_THRESHOLD_SECONDS, integer: true };
  const defaults: ThresholdDefaults = Object.freeze({
    heartbeatIntervalSeconds: number(env, 'FLEETPULSE_HEARTBEAT_INTERVAL_SECONDS', 15, seconds),
    heartbeatTimeoutSeconds: number(env, 'FLEETPULSE_HEARTBEAT_TIMEOUT_SECONDS', 30, seconds),
    gracePeriodSeconds: number(env, 'FLEETPULSE_GRACE_PERIOD_SECONDS', 60, seconds),
  });
  if (defaults.heartbeatTimeoutSeconds < defaults.heartbeatIntervalSeconds) {
    throw new ConfigError(
      'FLEETPULSE_HEARTBEAT_TIMEOUT_SECONDS',
      `must be at least FLEETPULSE_HEARTBEAT_INTERVAL_SECONDS (${defaults.heartbeatIntervalSeconds})`,
    );
  }
  if (defaults.gracePeriodSeconds <= defaults.heartbeatTimeoutSeconds) {
    throw new ConfigError(
      'FLEETPULSE_GRACE_PERIOD_SECONDS',
      `must be greater than FLEETPULSE_HEARTBEAT_TIMEOUT_SECONDS (${defaults.heartbeatTimeoutSeconds})`,
    );
  }

  const logLevel = raw(env, 'LOG_LEVEL')?.toLowerCase() ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  return Object.freeze({
    port,
    host,
    database: Object.freeze(database),
    redisUrl,
    redisPrefix: raw(env, 'FLEETPULSE_REDIS_PREFIX') ?? 'fleetpulse:',
    adminToken,
    monitorEnabled: flag(env, 'FLEETPULSE_MONITOR', true),
    monitorIntervalMs: number(env, 'FLEETPULSE_MONITOR_INTERVAL_MS', 1000, { min: 10, max: 3_600_000, integer: true }),
    defaults,
    heartbeatBurst: number(env, 'FLEETPULSE_HEARTBEAT_BURST', 5, { min: 1, max: 1_000_000, integer: true }),
    heartbeatMinIntervalSeconds: number(env, 'FLEETPULSE_HEARTBEAT_MIN_INTERVAL_SECONDS', 5, {
      min: 0,
      max: MAX_THRESHOLD_SECONDS,
      integer: false,
    }),
    logLevel,
    autoMigrate: flag(env, 'FLEETPULSE_AUTO_MIGRATE', true),
    trustProxy: flag(env, 'FLEETPULSE_TRUST_PROXY', false),
    shutdownTimeoutMs: number(env, 'FLEETPULSE_SHUTDOWN_TIMEOUT_MS', 8000, { min: 0, max: 600_000, integer: true }),
  });
}
