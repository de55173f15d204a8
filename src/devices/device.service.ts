import { generateToken, hashToken } from '../auth/tokens.js';
import type { ThresholdDefaults } from '../config.js';
import { MAX_THRESHOLD_SECONDS } from '../config.js';
import type { Database } from '../db/database.js';
import { inTransaction } from '../db/transaction.js';
import { errors } from '../errors.js';
import { evaluate } from '../status/status.js';
import type { Status } from '../status/status.js';
import {
  deleteDevice,
  findDevice,
  insertDevices,
  listDevices,
  lockDevice,
  replaceTokenHash,
  stateOf,
  toBoolean,
  updateDeviceSettings,
} from './device.repository.js';
import type { DeviceQuery, DeviceRow, DeviceSettings } from './device.repository.js';

export interface DeviceInput {
  readonly name?: string;
  readonly heartbeat_interval_seconds?: number;
  readonly heartbeat_timeout_seconds?: number;
  readonly grace_period_seconds?: number;
  readonly remote_control_enabled?: boolean;
}

export interface Thresholds {
  readonly heartbeat_interval_seconds: number;
  readonly heartbeat_timeout_seconds: number;
  readonly grace_period_seconds: number;
}

/** Fields the server owns; a request that tries to set one is refused, naming it. */
export const SERVER_OWNED_FIELDS = [
  'status',
  'previous_status',
  'last_status_change_at',
  'status_change_reason',
  'last_heartbeat_at',
] as const;

/** Checks 1 ≤ interval ≤ timeout < grace ≤ 86400; throws invalid_request naming the offending field. */
export function checkThresholds(t: Thresholds): void {
  for (const [field, value] of Object.entries(t)) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_THRESHOLD_SECONDS) {
      throw errors.invalidRequest(`${field} must be an integer between 1 and ${MAX_THRESHOLD_SECONDS}`);
    }
  }
  if (t.heartbeat_timeout_seconds < t.heartbeat_interval_seconds) {
    throw errors.invalidRequest(
      `heartbeat_timeout_seconds (${t.heartbeat_timeout_seconds}) must be at least heartbeat_interval_seconds (${t.heartbeat_interval_seconds})`,
    );
  }
  if (t.grace_period_seconds <= t.heartbeat_timeout_seconds) {
    throw errors.invalidRequest(
      `grace_period_seconds (${t.grace_period_seconds}) must be greater than heartbeat_timeout_seconds (${t.heartbeat_timeout_seconds})`,
    );
  }
}

/** Refuses names that cannot be stored verbatim on every database. */
export function checkName(name: string): void {
  if (name.trim() === '') throw errors.invalidRequest('name must not be blank');
  if (name.includes('\u0000')) throw errors.invalidRequest('name must not contain NUL characters');
  if (!name.isWellFormed()) throw errors.invalidRequest('name must be valid Unicode (no lone surrogates)');
}

export interface DeviceServiceDeps {
  readonly database: Database;
  readonly clock: () => number;
  readonly defaults: ThresholdDefaults;
  /** Tells every cache (this process's and, with Redis, other replicas') that a device's token or settings changed. */
  readonly deviceChanged: (deviceId: number) => Promise<void>;
}

export interface CreatedDevice {
  readonly device: DeviceRow;
  readonly token: string;
}

export class DeviceService {
  constructor(private readonly deps: DeviceServiceDeps) {}

  /** Registers devices in one transaction; tokens are returned once and stored only as hashes. */
  async create(inputs: readonly DeviceInput[]): Promise<CreatedDevice[]> {
    const { defaults } = this.deps;
    const prepared = inputs.map((input, index) => {
      const prefix = inputs.length > 1 ? `devices[${index}].` : '';
      if (input.name === undefined) throw errors.invalidRequest(`${prefix}name is required`);
      try {
        checkName(input.name);
        const thresholds: Thresholds = {
          heartbeat_interval_seconds: input.heartbeat_interval_seconds ?? defaults.heartbeatIntervalSeconds,
          heartbeat_timeout_seconds: input.heartbeat_timeout_seconds ?? defaults.heartbeatTimeoutSeconds,
          grace_period_seconds: input.grace_period_seconds ?? defaults.gracePeriodSeconds,
        };
        checkThresholds(thresholds);
        const token = generateToken();
        return {
          token,
          row: { name: input.name, token_hash: hashToken(token), remote_control_enabled: input.remote_control_enabled ?? true, ...thresholds },
        };
      } catch (error) {
        if (prefix && error instanceof Error) error.message = prefix + error.message;
        throw error;
      }
    });
    const now = this.deps.clock();
    const rows = await inTransaction(this.deps.database, (trx) =>
      insertDevices(trx, this.deps.database.caps, prepared.map((p) => p.row), now),
    );
    return rows.map((device, i) => ({ device, token: prepared[i]!.token }));
  }

  list(query: DeviceQuery): Promise<DeviceRow[]> {
    return listDevices(this.deps.database.db, query);
  }

  async get(id: number): Promise<DeviceRow> {
    const device = await findDevice(this.deps.database.db, id);
    if (!device) throw notFound(id);
    return device;
  }

  /** Changes settings, never status. New thresholds take effect for the current silence at once. */
  async update(id: number, input: DeviceInput): Promise<DeviceRow> {
    if (input.name !== undefined) checkName(input.name);
    const { database } = this.deps;
    const device = await inTransaction(database, async (trx) => {
      const row = await lockDevice(trx, database.caps, id);
      if (!row) throw notFound(id);
      const thresholds: Thresholds = {
        heartbeat_interval_seconds: input.heartbeat_interval_seconds ?? row.heartbeat_interval_seconds,
        heartbeat_timeout_seconds: input.heartbeat_timeout_seconds ?? row.heartbeat_timeout_seconds,
        grace_period_seconds: input.grace_period_seconds ?? row.grace_period_seconds,
      };
      checkThresholds(thresholds);
      const settings: DeviceSettings = { ...input, ...thresholds };
      const now = this.deps.clock();
      if (row.status === 'connected' || row.status === 'temporarily_offline') {
        // The monitor decides with the new thresholds; check again from now or the new deadline, whichever is first.
        const next = evaluate(
          stateOf({ ...row, heartbeat_timeout_seconds: thresholds.heartbeat_timeout_seconds, grace_period_seconds: thresholds.grace_period_seconds }),
          now,
        );
        settings.next_check_at = next.transition ? now : next.nextCheckAt;
      }
      await updateDeviceSettings(trx, database.caps, id, settings, now);
      return (await findDevice(trx, id))!;
    });
    await this.deps.deviceChanged(id);
    return device;
  }

  async remove(id: number): Promise<void> {
    if (!(await deleteDevice(this.deps.database.db, id))) throw notFound(id);
    await this.deps.deviceChanged(id);
  }

  /** A new token; the old one is refused from the moment this returns. */
  async rotateToken(id: number): Promise<string> {
    const token = generateToken();
    if (!(await replaceTokenHash(this.deps.database.db, id, hashToken(token), this.deps.clock()))) throw notFound(id);
    await this.deps.deviceChanged(id);
    return token;
  }
}

export function notFound(id: number | string) {
  return errors.notFound(`No device with id ${JSON.stringify(String(id))}`);
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(Number(ms)).toISOString();
}

/** The API's view of a device. */
export function presentDevice(row: DeviceRow) {
  return {
    id: row.id,
    name: row.name,
    status: row.status as Status,
    previous_status: row.previous_status,
    last_status_change_at: iso(row.last_status_change_at),
    status_change_reason: row.status_change_reason,
    last_heartbeat_at: iso(row.last_heartbeat_at),
    heartbeat_interval_seconds: row.heartbeat_interval_seconds,
    heartbeat_timeout_seconds: row.heartbeat_timeout_seconds,
    grace_period_seconds: row.grace_period_seconds,
    remote_control_enabled: toBoolean(row.remote_control_enabled),
    battery_level: row.battery_level,
    wifi_strength: row.wifi_strength,
    app_version: row.app_version,
    uptime_seconds: row.uptime_seconds,
    pending_reconnect:
      row.reconnect_delay_seconds === null
        ? null
        : { delay_seconds: row.reconnect_delay_seconds, requested_at: iso(row.reconnect_requested_at) },
    last_reconnect_delivered_at: iso(row.reconnect_delivered_at),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}
