import type { Database } from '../db/database.js';
import { inTransaction } from '../db/transaction.js';
import {
  applyStatusChanges,
  lockDevices,
  markReconnectDelivered,
  recordHeartbeats,
  stateOf,
  toBoolean,
} from '../devices/device.repository.js';
import type { HeartbeatWrite, StatusWrite } from '../devices/device.repository.js';
import { readLiveness } from '../monitor/service-state.repository.js';
import { acceptHeartbeat, effectiveAvailableSince } from '../status/status.js';
import type { Status } from '../status/status.js';
import { insertTransitions } from '../transitions/transition.repository.js';
import type { NewTransition } from '../transitions/transition.repository.js';
import type { TransitionRecorder } from '../transitions/transition.recorder.js';

export interface Telemetry {
  readonly battery_level?: number;
  readonly wifi_strength?: number;
  readonly app_version?: string;
  readonly uptime_seconds?: number;
}

export interface HeartbeatInput {
  readonly deviceId: number;
  /** The hash the request authenticated with; checked again under the row lock. */
  readonly tokenHash: string;
  readonly telemetry: Telemetry;
}

export interface HeartbeatReply {
  readonly status: 'connected';
  readonly remote_control_enabled: boolean;
  readonly should_reconnect: boolean;
  readonly reconnect_delay_seconds: number | null;
  readonly heartbeat_interval_seconds: number;
  readonly server_time: string;
}

/** null: the token no longer belongs to a device (rotated or deleted meanwhile). */
export type HeartbeatResult = HeartbeatReply | null;

export interface HeartbeatDeps {
  readonly database: Database;
  readonly clock: () => number;
  readonly recordTransitions: TransitionRecorder;
  readonly livenessGapMs: number;
  readonly onCommitted?: (accepted: number, reconnectsDelivered: number) => void;
}


/**
 * Writes a batch of heartbeats in one transaction: rows locked, the status
 * rules applied to what was read under the lock, compare-and-set status
 * changes, transition rows last. Logs and counts only after commit.
 */
export function createHeartbeatProcessor(deps: HeartbeatDeps): (items: readonly HeartbeatInput[]) => Promise<HeartbeatResult[]> {
  const { database } = deps;
  return async (items) => {
    const ids = [...new Set(items.map((item) => item.deviceId))].sort((a, b) => a - b);
    const outcome = await inTransaction(database, async (trx) => {
      const rows = new Map((await lockDevices(trx, database.caps, ids)).map((row) => [row.id, row]));
      // The clock is read only once the rows are ours: a sweep that held them first has committed
      // and read its own clock earlier, so this heartbeat can never be stamped before that sweep's transition.
      const now = deps.clock();
      const serverTime = new Date(now).toISOString();
      const expected = new Map<number, Status>([...rows.values()].map((row) => [row.id, row.status]));
      const heartbeats = new Map<number, HeartbeatWrite>();
      const statuses = new Map<number, StatusWrite>();
      const transitions: NewTransition[] = [];
      const delivered: number[] = [];
      let availableSince: number | undefined;

      const results: HeartbeatResult[] = [];
      for (const item of items) {
        const row = rows.get(item.deviceId);
        if (!row || row.token_hash !== item.tokenHash) {
          results.push(null);
          continue;
        }
        let accepted = acceptHeartbeat(stateOf(row), now, availableSince);
        if (availableSince === undefined && accepted.transitions.some((t) => t.source === 'system')) {
          // Only an overdue device needs to know whether the service itself was down.
          availableSince = effectiveAvailableSince(await readLiveness(trx), now, deps.livenessGapMs);
          accepted = acceptHeartbeat(stateOf(row), now, availableSince);
        }
        for (const t of accepted.transitions) {
          transitions.push({ device_id: row.id, device_name: row.name, from_status: t.from, to_status: t.to, reason: t.reason, source: t.source, at: t.at });
        }
        const last = accepted.transitions.at(-1);
        if (last) {
          statuses.set(row.id, {
            id: row.id,
            expected_status: expected.get(row.id)!,
            status: last.to,
            previous_status: last.from,
            changed_at: last.at,
            reason: last.reason,
            next_check_at: accepted.nextCheckAt,
          });
        }
        const earlier = heartbeats.get(row.id);
        const { telemetry } = item;
        heartbeats.set(row.id, {
          id: row.id,
          at: now,
          next_check_at: accepted.nextCheckAt,
          battery_level: telemetry.battery_level ?? earlier?.battery_level ?? null,
          wifi_strength: telemetry.wifi_strength ?? earlier?.wifi_strength ?? null,
          app_version: telemetry.app_version ?? earlier?.app_version ?? null,
          uptime_seconds: telemetry.uptime_seconds ?? earlier?.uptime_seconds ?? null,
        });

        const delay = row.reconnect_delay_seconds;
        if (delay !== null) delivered.push(row.id);
        row.status = 'connected';
        row.last_heartbeat_at = now;
        row.reconnect_delay_seconds = null;
        results.push({
          status: 'connected',
          remote_control_enabled: toBoolean(row.remote_control_enabled),
          should_reconnect: delay !== null,
          reconnect_delay_seconds: delay,
          heartbeat_interval_seconds: row.heartbeat_interval_seconds,
          server_time: serverTime,
        });
      }

      await recordHeartbeats(trx, database.caps, [...heartbeats.values()]);
      const changed = await applyStatusChanges(trx, database.caps, [...statuses.values()]);
      if (changed !== statuses.size) {
        // Unreachable while rows are locked; if it ever happens, roll back rather than record a stale transition.
        throw new Error(`Status compare-and-set changed ${changed} of ${statuses.size} rows`);
      }
      await markReconnectDelivered(trx, delivered, now);
      await insertTransitions(trx, database.caps, transitions, now);
      return { results, transitions, accepted: results.filter((r) => r !== null).length, delivered: delivered.length };
    });
    deps.recordTransitions(outcome.transitions);
    deps.onCommitted?.(outcome.accepted, outcome.delivered);
    return outcome.results;
  };
}
