import { CompiledQuery, sql } from 'kysely';
import type { Selectable } from 'kysely';

import { bulkUpdate, placeholderList } from '../db/bulk.js';
import type { BulkUpdate } from '../db/bulk.js';
import { bindable } from '../db/database.js';
import type { Capabilities } from '../db/database.js';
import type { Executor } from '../db/transaction.js';
import type { DeviceState, Status } from '../status/status.js';
import type { DeviceTable } from './device.table.js';

export type DeviceRow = Selectable<DeviceTable>;

export interface NewDevice {
  readonly name: string;
  readonly token_hash: string;
  readonly heartbeat_interval_seconds: number;
  readonly heartbeat_timeout_seconds: number;
  readonly grace_period_seconds: number;
  readonly remote_control_enabled: boolean;
}

export function toBoolean(value: boolean | number | string): boolean {
  return value === true || value === 1 || value === '1';
}

const INSERT_CHUNK = 500;

/** Inserts devices and returns them with their ids, in the order given. */
export async function insertDevices(trx: Executor, caps: Capabilities, devices: readonly NewDevice[], now: number): Promise<DeviceRow[]> {
  const rows: DeviceRow[] = [];
  for (let start = 0; start < devices.length; start += INSERT_CHUNK) {
    const chunk = devices.slice(start, start + INSERT_CHUNK).map((d) => ({
      ...d,
      remote_control_enabled: bindable(caps, d.remote_control_enabled) as boolean | number,
      status: 'never_connected' as const,
      created_at: now,
      updated_at: now,
    }));
    const insert = trx.insertInto('devices').values(chunk);
    if (caps.returning) {
      rows.push(...(await insert.returningAll().execute()));
    } else {
      await insert.execute();
      const hashes = chunk.map((d) => d.token_hash);
      const found = await trx.selectFrom('devices').selectAll().where('token_hash', 'in', hashes).execute();
      const byHash = new Map(found.map((row) => [row.token_hash, row]));
      rows.push(...hashes.map((hash) => byHash.get(hash)!));
    }
  }
  return rows;
}

export function findDevice(db: Executor, id: number): Promise<DeviceRow | undefined> {
  return db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
}

export function findDeviceByTokenHash(db: Executor, tokenHash: string): Promise<Pick<DeviceRow, 'id' | 'name'> | undefined> {
  return db.selectFrom('devices').select(['id', 'name']).where('token_hash', '=', tokenHash).executeTakeFirst();
}

export interface DeviceQuery {
  readonly status?: Status;
  /** Case-insensitive substring of the name. */
  readonly q?: string;
  readonly afterId?: number;
  readonly limit: number;
}

function escapeLike(text: string): string {
  return text.replace(/[!%_]/g, (c) => `!${c}`);
}

/** A page of devices by ascending id. */
export function listDevices(db: Executor, query: DeviceQuery): Promise<DeviceRow[]> {
  let select = db.selectFrom('devices').selectAll().orderBy('id').limit(query.limit);
  if (query.status) select = select.where('status', '=', query.status);
  if (query.afterId !== undefined) select = select.where('id', '>', query.afterId);
  if (query.q) {
    const pattern = `%${escapeLike(query.q.toLowerCase())}%`;
    select = select.where(sql<boolean>`lower(name) LIKE ${pattern} ESCAPE '!'`);
  }
  return select.execute();
}

export interface DeviceSettings {
  name?: string;
  heartbeat_interval_seconds?: number;
  heartbeat_timeout_seconds?: number;
  grace_period_seconds?: number;
  remote_control_enabled?: boolean;
  next_check_at?: number | null;
}

export async function updateDeviceSettings(trx: Executor, caps: Capabilities, id: number, settings: DeviceSettings, now: number): Promise<void> {
  const { remote_control_enabled, ...rest } = settings;
  await trx
    .updateTable('devices')
    .set({
      ...rest,
      ...(remote_control_enabled === undefined ? {} : { remote_control_enabled: bindable(caps, remote_control_enabled) as boolean | number }),
      updated_at: now,
    })
    .where('id', '=', id)
    .execute();
}

/** Returns false when there was no such device. */
export async function deleteDevice(db: Executor, id: number): Promise<boolean> {
  const result = await db.deleteFrom('devices').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Returns false when there was no such device. */
export async function replaceTokenHash(db: Executor, id: number, tokenHash: string, now: number): Promise<boolean> {
  const result = await db
    .updateTable('devices')
    .set({ token_hash: tokenHash, updated_at: now })
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** What heartbeats and sweeps read under the lock: only the columns the status rules and replies need. */
const STATE_COLUMNS = [
  'id',
  'name',
  'token_hash',
  'status',
  'last_heartbeat_at',
  'last_status_change_at',
  'next_check_at',
  'heartbeat_interval_seconds',
  'heartbeat_timeout_seconds',
  'grace_period_seconds',
  'remote_control_enabled',
  'reconnect_delay_seconds',
] as const;

export type DeviceStateRow = Pick<DeviceRow, (typeof STATE_COLUMNS)[number]>;

/** What the status rules need from a device row. */
export function stateOf(row: Pick<DeviceStateRow, 'status' | 'last_heartbeat_at' | 'last_status_change_at' | 'heartbeat_timeout_seconds' | 'grace_period_seconds'>): DeviceState {
  return {
    status: row.status,
    lastHeartbeatAt: row.last_heartbeat_at,
    lastStatusChangeAt: row.last_status_change_at,
    heartbeatTimeoutSeconds: row.heartbeat_timeout_seconds,
    gracePeriodSeconds: row.grace_period_seconds,
  };
}

/** Reads devices' state inside a transaction, holding their rows until it ends (the whole database on SQLite). */
export async function lockDevices(trx: Executor, caps: Capabilities, ids: readonly number[]): Promise<DeviceStateRow[]> {
  return selectStates(trx, caps, ids, caps.rowLocks);
}

/** Locks one device and reads all of it. */
export async function lockDevice(trx: Executor, caps: Capabilities, id: number): Promise<DeviceRow | undefined> {
  const select = trx.selectFrom('devices').selectAll().where('id', '=', id);
  return (caps.rowLocks ? select.forUpdate() : select).executeTakeFirst();
}

/** Reads devices' state without locking them, by ascending id. */
export async function findDeviceStates(db: Executor, caps: Capabilities, ids: readonly number[]): Promise<DeviceStateRow[]> {
  return selectStates(db, caps, ids, false);
}

/** Statement text by dialect, id count and locking: the same few shapes repeat on every batch. */
const stateSelects = new Map<string, string>();

async function selectStates(db: Executor, caps: Capabilities, ids: readonly number[], lock: boolean): Promise<DeviceStateRow[]> {
  if (ids.length === 0) return [];
  const shape = `${caps.kind}:${ids.length}:${lock}`;
  let text = stateSelects.get(shape);
  if (text === undefined) {
    const columns = STATE_COLUMNS.join(', ');
    text = `SELECT ${columns} FROM devices WHERE id IN (${placeholderList(caps, ids.length)}) ORDER BY id${lock ? ' FOR UPDATE' : ''}`;
    stateSelects.set(shape, text);
  }
  return (await db.executeQuery<DeviceStateRow>(CompiledQuery.raw(text, [...ids]))).rows;
}

/** Ids of devices whose next check is due, most overdue first (the index's order: no sort, however many are due). */
export async function findDueDeviceIds(db: Executor, now: number, limit: number): Promise<{ id: number; next_check_at: number }[]> {
  const select = db.selectFrom('devices').select(['id', 'next_check_at']).where('next_check_at', '<=', now).orderBy('next_check_at').limit(limit);
  return (await select.execute()) as { id: number; next_check_at: number }[];
}

/** Every due device a page at a time, in a stable order, for a pass that changes nothing (a dry run). */
export async function pageDueDeviceIds(db: Executor, now: number, limit: number, after?: { nextCheckAt: number; id: number }): Promise<{ id: number; next_check_at: number }[]> {
  let select = db
    .selectFrom('devices')
    .select(['id', 'next_check_at'])
    .where('next_check_at', '<=', now)
    .orderBy('next_check_at')
    .orderBy('id')
    .limit(limit);
  if (after) {
    select = select.where((eb) =>
      eb.or([
        eb('next_check_at', '>', after.nextCheckAt),
        eb.and([eb('next_check_at', '=', after.nextCheckAt), eb('id', '>', after.id)]),
      ]),
    );
  }
  return (await select.execute()) as { id: number; next_check_at: number }[];
}

export interface HeartbeatWrite extends Record<string, unknown> {
  readonly id: number;
  readonly at: number;
  readonly next_check_at: number;
  readonly battery_level: number | null;
  readonly wifi_strength: number | null;
  readonly app_version: string | null;
  readonly uptime_seconds: number | null;
}

const HEARTBEAT_UPDATE: BulkUpdate<HeartbeatWrite> = {
  table: 'devices',
  key: 'id',
  columns: {
    id: 'bigint',
    at: 'bigint',
    next_check_at: 'bigint',
    battery_level: 'integer',
    wifi_strength: 'integer',
    app_version: 'text',
    uptime_seconds: 'bigint',
  },
  set: {
    last_heartbeat_at: 'v.at',
    next_check_at: 'v.next_check_at',
    battery_level: 'COALESCE(v.battery_level, t.battery_level)',
    wifi_strength: 'COALESCE(v.wifi_strength, t.wifi_strength)',
    app_version: 'COALESCE(v.app_version, t.app_version)',
    uptime_seconds: 'COALESCE(v.uptime_seconds, t.uptime_seconds)',
  },
};

/** Records heartbeats: arrival time, deadline and any telemetry sent (absent fields keep their value). */
export function recordHeartbeats(trx: Executor, caps: Capabilities, rows: readonly HeartbeatWrite[]): Promise<number> {
  return bulkUpdate(trx, caps, HEARTBEAT_UPDATE, rows);
}

export interface StatusWrite extends Record<string, unknown> {
  readonly id: number;
  /** The status the caller read; the row changes only if it still has it. */
  readonly expected_status: Status;
  readonly status: Status;
  readonly previous_status: Status;
  readonly changed_at: number;
  readonly reason: string;
  readonly next_check_at: number | null;
}

const STATUS_UPDATE: BulkUpdate<StatusWrite> = {
  table: 'devices',
  key: 'id',
  columns: {
    id: 'bigint',
    expected_status: 'text',
    status: 'text',
    previous_status: 'text',
    changed_at: 'bigint',
    reason: 'text',
    next_check_at: 'bigint',
  },
  set: {
    status: 'v.status',
    previous_status: 'v.previous_status',
    last_status_change_at: 'v.changed_at',
    status_change_reason: 'v.reason',
    next_check_at: 'v.next_check_at',
  },
  where: 't.status = v.expected_status',
};

/**
 * Compare-and-set of statuses: a row changes only while it still has
 * `expected_status`. Returns how many rows changed.
 */
export function applyStatusChanges(trx: Executor, caps: Capabilities, rows: readonly StatusWrite[]): Promise<number> {
  return bulkUpdate(trx, caps, STATUS_UPDATE, rows);
}

const RESCHEDULE_UPDATE: BulkUpdate<{ id: number; next_check_at: number | null }> = {
  table: 'devices',
  key: 'id',
  columns: { id: 'bigint', next_check_at: 'bigint' },
  set: { next_check_at: 'v.next_check_at' },
};

/** Moves devices' next check (the monitor found nothing to do yet, or set a broken row aside). */
export function rescheduleChecks(trx: Executor, caps: Capabilities, rows: readonly { id: number; next_check_at: number | null }[]): Promise<number> {
  return bulkUpdate(trx, caps, RESCHEDULE_UPDATE, rows);
}

/** Marks pending reconnect signals as delivered. */
export async function markReconnectDelivered(trx: Executor, ids: readonly number[], now: number): Promise<void> {
  if (ids.length === 0) return;
  await trx
    .updateTable('devices')
    .set({ reconnect_delay_seconds: null, reconnect_delivered_at: now })
    .where('id', 'in', ids)
    .execute();
}

const RECONNECT_UPDATE: BulkUpdate<{ id: number; delay: number; now: number }> = {
  table: 'devices',
  key: 'id',
  columns: { id: 'bigint', delay: 'integer', now: 'bigint' },
  set: { reconnect_delay_seconds: 'v.delay', reconnect_requested_at: 'v.now' },
};

/** Queues a reconnect signal per device (replacing any undelivered one). Returns how many devices exist. */
export function requestReconnects(trx: Executor, caps: Capabilities, rows: readonly { id: number; delay: number }[], now: number): Promise<number> {
  return bulkUpdate(trx, caps, RECONNECT_UPDATE, rows.map((row) => ({ ...row, now })));
}

/** Ids of devices matching a status filter, ascending, after `afterId`. */
export async function listDeviceIds(db: Executor, status: Status | undefined, afterId: number, limit: number): Promise<number[]> {
  let select = db.selectFrom('devices').select('id').where('id', '>', afterId).orderBy('id').limit(limit);
  if (status) select = select.where('status', '=', status);
  return (await select.execute()).map((row) => row.id);
}

export async function countDevicesByStatus(db: Executor): Promise<Map<Status, number>> {
  const rows = await db
    .selectFrom('devices')
    .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy('status')
    .execute();
  return new Map(rows.map((row) => [row.status, Number(row.count)]));
}


/**
 * Claims a pending reconnect signal for delivery on another channel: true only
 * for the one caller that clears it, so each signal is delivered once.
 */
export async function claimReconnect(db: Executor, id: number, requestedAt: number, now: number): Promise<boolean> {
  const result = await db
    .updateTable('devices')
    .set({ reconnect_delay_seconds: null, reconnect_delivered_at: now })
    .where('id', '=', id)
    .where('reconnect_requested_at', '=', requestedAt)
    .where('reconnect_delay_seconds', 'is not', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
