import type { Database } from '../db/database.js';
import { inTransaction } from '../db/transaction.js';
import { applyStatusChanges, findDeviceStates, findDueDeviceIds, lockDevices, pageDueDeviceIds, rescheduleChecks, stateOf } from '../devices/device.repository.js';
import type { DeviceStateRow, StatusWrite } from '../devices/device.repository.js';
import type { Logger } from '../observability/logger.js';
import { effectiveAvailableSince, evaluate } from '../status/status.js';
import type { Evaluation } from '../status/status.js';
import { insertTransitions } from '../transitions/transition.repository.js';
import type { NewTransition } from '../transitions/transition.repository.js';
import type { TransitionRecorder } from '../transitions/transition.recorder.js';
import { readLiveness } from './service-state.repository.js';

export interface SweepDeps {
  readonly database: Database;
  readonly logger: Logger;
  readonly recordTransitions: TransitionRecorder;
  /** A liveness record older than this means no server is receiving heartbeats. */
  readonly livenessGapMs: number;
  /** Most devices handled per step. */
  readonly batchSize?: number;
}

export interface SweepResult {
  /** Transitions committed (or, in a dry run, that would be). */
  readonly transitions: readonly NewTransition[];
  /** Due devices looked at. */
  readonly checked: number;
  /** More devices are due right now: call again without sleeping. */
  readonly more: boolean;
  /** Set when the sweep did nothing because no server could receive heartbeats. */
  readonly skipped?: 'no_receiver';
}

/** How far a device whose evaluation throws is pushed ahead, so it cannot stall every sweep. */
export const BROKEN_DEVICE_DELAY_MS = 3_600_000;

function evaluateRow(deps: SweepDeps, row: DeviceStateRow, now: number, availableSince: number): Evaluation | Error {
  try {
    return evaluate(stateOf(row), now, availableSince);
  } catch (error) {
    deps.logger.error({ err: error, device_id: row.id }, 'Device evaluation failed; checking it again in an hour');
    return error instanceof Error ? error : new Error(String(error));
  }
}

function toTransition(row: DeviceStateRow, evaluation: Evaluation): NewTransition | null {
  const t = evaluation.transition;
  return t && { device_id: row.id, device_name: row.name, from_status: t.from, to_status: t.to, reason: t.reason, source: t.source, at: t.at };
}

/** Where silence counts from now, or null when no server is receiving heartbeats (nobody is blamed then). */
async function silenceBase(deps: SweepDeps, now: number): Promise<number | null> {
  const liveness = await readLiveness(deps.database.db);
  return now - liveness.aliveAt > deps.livenessGapMs ? null : effectiveAvailableSince(liveness, now, deps.livenessGapMs);
}

const NO_RECEIVER: SweepResult = Object.freeze({ transitions: [], checked: 0, more: false, skipped: 'no_receiver' });

/**
 * One step of the monitor: applies the transitions of up to `batchSize` due
 * devices in one transaction. Only devices whose deadline passed are read,
 * through the next_check_at index: the cost follows due devices, not the fleet.
 */
export async function sweepOnce(deps: SweepDeps, now: number): Promise<SweepResult> {
  const { database } = deps;
  const batchSize = deps.batchSize ?? 1000;
  const availableSince = await silenceBase(deps, now);
  if (availableSince === null) return NO_RECEIVER;

  const due = await findDueDeviceIds(database.db, now, batchSize);
  if (due.length === 0) return { transitions: [], checked: 0, more: false };

  const transitions = await inTransaction(database, async (trx) => {
    const rows = await lockDevices(trx, database.caps, due.map((d) => d.id));
    const changes: StatusWrite[] = [];
    const reschedules: { id: number; next_check_at: number | null }[] = [];
    const recorded: NewTransition[] = [];
    for (const row of rows) {
      if (row.next_check_at === null || row.next_check_at > now) continue; // a heartbeat got there first
      const evaluation = evaluateRow(deps, row, now, availableSince);
      if (evaluation instanceof Error) {
        reschedules.push({ id: row.id, next_check_at: now + BROKEN_DEVICE_DELAY_MS });
        continue;
      }
      const transition = toTransition(row, evaluation);
      if (!transition) {
        reschedules.push({ id: row.id, next_check_at: evaluation.nextCheckAt });
        continue;
      }
      recorded.push(transition);
      changes.push({
        id: row.id,
        expected_status: row.status,
        status: transition.to_status,
        previous_status: transition.from_status,
        changed_at: transition.at,
        reason: transition.reason,
        next_check_at: evaluation.nextCheckAt,
      });
    }
    const changed = await applyStatusChanges(trx, database.caps, changes);
    if (changed !== changes.length) throw new Error(`Status compare-and-set changed ${changed} of ${changes.length} rows`);
    await rescheduleChecks(trx, database.caps, reschedules);
    await insertTransitions(trx, database.caps, recorded, now);
    return recorded;
  });
  deps.recordTransitions(transitions);
  return { transitions, checked: due.length, more: due.length === batchSize };
}

/** What a sweep would do now, changing nothing (every due device, not just one step's worth). */
export async function previewSweep(deps: SweepDeps, now: number): Promise<SweepResult> {
  const { database } = deps;
  const batchSize = deps.batchSize ?? 1000;
  const availableSince = await silenceBase(deps, now);
  if (availableSince === null) return NO_RECEIVER;

  const transitions: NewTransition[] = [];
  let checked = 0;
  let after: { nextCheckAt: number; id: number } | undefined;
  for (;;) {
    const due = await pageDueDeviceIds(database.db, now, batchSize, after);
    if (due.length === 0) break;
    checked += due.length;
    const rows = await findDeviceStates(database.db, database.caps, due.map((d) => d.id));
    for (const row of rows) {
      const evaluation = evaluateRow(deps, row, now, availableSince);
      const transition = evaluation instanceof Error ? null : toTransition(row, evaluation);
      if (transition) transitions.push(transition);
    }
    const last = due.at(-1)!;
    after = { nextCheckAt: last.next_check_at, id: last.id };
  }
  return { transitions, checked, more: false };
}
