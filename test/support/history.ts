/**
 * Reads devices and their transition history straight from a database, and
 * checks the invariants of CONTRACT.md §2: per device, an unbroken chain that
 * starts at never_connected, no from = to, times that never run backwards,
 * and a device row that agrees with its last transition.
 */
import type { Kysely } from 'kysely';

import { parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/db/database.js';
import type { Schema } from '../../src/db/schema.js';
import type { Status, TransitionSource } from '../../src/status/status.js';

export interface DeviceSnapshot {
  readonly id: number;
  readonly status: Status;
  readonly previous_status: Status | null;
  readonly last_status_change_at: number | null;
  readonly last_heartbeat_at: number | null;
}

export interface TransitionSnapshot {
  readonly id: number;
  readonly device_id: number;
  readonly from_status: Status;
  readonly to_status: Status;
  readonly source: TransitionSource;
  readonly at: number;
}

export interface History {
  readonly devices: DeviceSnapshot[];
  /** Every transition row, in id (= commit) order. */
  readonly transitions: TransitionSnapshot[];
}

/** Every device and every transition row, read with a connection of its own. */
export async function readHistory(databaseUrl: string): Promise<History> {
  const database = openDatabase(parseDatabaseUrl(databaseUrl), { poolSize: 1 });
  try {
    return await readHistoryFrom(database.db);
  } finally {
    await database.close();
  }
}

/** The invariants checked on a database an app is using (see `chainProblems`). */
export async function databaseChainProblems(db: Kysely<Schema>): Promise<string[]> {
  return chainProblems(await readHistoryFrom(db));
}

async function readHistoryFrom(db: Kysely<Schema>): Promise<History> {
  const devices = await db
    .selectFrom('devices')
    .select(['id', 'status', 'previous_status', 'last_status_change_at', 'last_heartbeat_at'])
    .orderBy('id')
    .execute();
  const transitions = await db
    .selectFrom('device_transitions')
    .select(['id', 'device_id', 'from_status', 'to_status', 'source', 'at'])
    .orderBy('id')
    .execute();
  const num = (value: number | null) => (value === null ? null : Number(value));
  return {
    devices: devices.map((d) => ({
      ...d,
      id: Number(d.id),
      last_status_change_at: num(d.last_status_change_at),
      last_heartbeat_at: num(d.last_heartbeat_at),
    })),
    transitions: transitions.map((t) => ({ ...t, id: Number(t.id), device_id: Number(t.device_id), at: Number(t.at) })),
  };
}

/** Each device's transitions in commit order. */
export function transitionsByDevice(history: History): Map<number, TransitionSnapshot[]> {
  const byDevice = new Map<number, TransitionSnapshot[]>(history.devices.map((d) => [d.id, []]));
  for (const t of history.transitions) {
    const list = byDevice.get(t.device_id);
    if (list) list.push(t);
    else byDevice.set(t.device_id, [t]);
  }
  return byDevice;
}

/** Every broken invariant, one line each; empty when the history is sound. */
export function chainProblems(history: History): string[] {
  const problems: string[] = [];
  const known = new Set(history.devices.map((d) => d.id));
  const byDevice = transitionsByDevice(history);
  for (const [deviceId, list] of byDevice) {
    if (!known.has(deviceId)) problems.push(`device ${deviceId}: ${list.length} transition(s) for a device that does not exist`);
  }
  for (const device of history.devices) {
    const list = byDevice.get(device.id)!;
    const where = `device ${device.id}`;
    if (list.length === 0) {
      if (device.status !== 'never_connected') problems.push(`${where}: status ${device.status} without any transition`);
      continue;
    }
    if (list[0]!.from_status !== 'never_connected') problems.push(`${where}: history starts at ${list[0]!.from_status}, not never_connected`);
    list.forEach((t, i) => {
      if (t.from_status === t.to_status) problems.push(`${where}: transition ${t.id} goes from ${t.from_status} to itself`);
      const previous = list[i - 1];
      if (previous && previous.to_status !== t.from_status) {
        problems.push(`${where}: transition ${t.id} starts at ${t.from_status} but ${previous.id} ended at ${previous.to_status}`);
      }
      if (previous && t.at < previous.at) problems.push(`${where}: transition ${t.id} at ${t.at} is earlier than ${previous.id} at ${previous.at}`);
    });
    const last = list.at(-1)!;
    if (device.status !== last.to_status) problems.push(`${where}: status ${device.status} but the last transition (${last.id}) ends at ${last.to_status}`);
    if (device.previous_status !== last.from_status) {
      problems.push(`${where}: previous_status ${device.previous_status} but the last transition (${last.id}) starts at ${last.from_status}`);
    }
    if (device.last_status_change_at !== last.at) {
      problems.push(`${where}: last_status_change_at ${device.last_status_change_at} but the last transition (${last.id}) is at ${last.at}`);
    }
  }
  return problems;
}

/** Shortens a problem list for an assertion message. */
export function summarize(problems: readonly string[], max = 20): string {
  return problems.length <= max ? problems.join('\n') : `${problems.slice(0, max).join('\n')}\n… and ${problems.length - max} more`;
}

/** A transition the status rules call for; `from: '*'` matches any, `optional` may be absent. */
export interface ExpectedTransition {
  readonly from: Status | '*';
  readonly to: Status;
  readonly at: number;
  readonly optional?: boolean;
}

/**
 * What the status rules say must be recorded for a device whose accepted
 * heartbeats arrived (server clock) at `accepted`, and that stays silent after
 * the last one. Assumes the service was available throughout, so silence
 * counts from the previous heartbeat.
 */
export function expectedHistory(accepted: readonly number[], { timeoutMs, graceMs }: { timeoutMs: number; graceMs: number }): ExpectedTransition[] {
  if (accepted.length === 0) return [];
  const out: ExpectedTransition[] = [{ from: 'never_connected', to: 'connected', at: accepted[0]! }];
  const silence = (since: number, until: number | null) => {
    const gap = until === null ? Infinity : until - since;
    if (gap <= timeoutMs) return;
    if (gap <= graceMs) {
      out.push({ from: 'connected', to: 'temporarily_offline', at: since + timeoutMs });
      if (until !== null) out.push({ from: 'temporarily_offline', to: 'connected', at: until });
      return;
    }
    // Past grace: temporarily_offline only if some sweep ran between the two thresholds.
    out.push({ from: 'connected', to: 'temporarily_offline', at: since + timeoutMs, optional: true });
    out.push({ from: '*', to: 'offline', at: since + graceMs });
    if (until !== null) out.push({ from: 'offline', to: 'connected', at: until });
  };
  for (let i = 1; i < accepted.length; i++) silence(accepted[i - 1]!, accepted[i]!);
  silence(accepted.at(-1)!, null);
  return out;
}

/** Differences between the rules' history and the recorded one (the first one found, or none). */
export function historyProblems(deviceId: number, expected: readonly ExpectedTransition[], actual: readonly TransitionSnapshot[]): string[] {
  const show = (t: ExpectedTransition) => `${t.from}->${t.to}@${t.at}`;
  const shown = (t: TransitionSnapshot) => `${t.from_status}->${t.to_status}@${t.at} (${t.source})`;
  let i = 0;
  let j = 0;
  while (i < expected.length && j < actual.length) {
    const want = expected[i]!;
    const got = actual[j]!;
    if (want.to === got.to_status && want.at === got.at && (want.from === '*' || want.from === got.from_status)) {
      i++;
      j++;
    } else if (want.optional) {
      i++;
    } else {
      return [`device ${deviceId}: expected ${show(want)} as transition #${j + 1}, found ${shown(got)}`];
    }
  }
  const missing = expected.slice(i).filter((e) => !e.optional);
  if (missing.length > 0) return [`device ${deviceId}: missing ${missing.map(show).join(', ')}`];
  if (j < actual.length) return [`device ${deviceId}: unexpected ${actual.slice(j).map(shown).join(', ')}`];
  return [];
}
