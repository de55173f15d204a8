/**
 * The status core: every rule of CONTRACT.md §2 lives here, as pure functions
 * of (device, now). No I/O, no clock: callers pass `now` in milliseconds.
 */

export const STATUSES = ['never_connected', 'connected', 'temporarily_offline', 'offline'] as const;
export type Status = (typeof STATUSES)[number];

export const STATUS_LABELS: Readonly<Record<Status, string>> = {
  never_connected: 'Never connected',
  connected: 'Connected',
  temporarily_offline: 'Temporarily Offline',
  offline: 'Offline',
};

export type TransitionSource = 'device' | 'system';

export interface Transition {
  readonly from: Status;
  readonly to: Status;
  /** When the change happened: the heartbeat's arrival, or the moment a threshold was crossed. */
  readonly at: number;
  readonly reason: string;
  readonly source: TransitionSource;
}

/** What the rules need to know about a device. Times are epoch milliseconds. */
export interface DeviceState {
  readonly status: Status;
  readonly lastHeartbeatAt: number | null;
  readonly heartbeatTimeoutSeconds: number;
  readonly gracePeriodSeconds: number;
  /**
   * When the status last changed. A transition is never stamped before it:
   * after thresholds are shortened, the new one may have been "crossed" before
   * the previous transition, and history must not run backwards.
   */
  readonly lastStatusChangeAt?: number | null;
}

export interface Evaluation {
  readonly transition: Transition | null;
  /** The first moment a later evaluation could change the status; null when only a heartbeat can. */
  readonly nextCheckAt: number | null;
}

export function isStatus(value: unknown): value is Status {
  return typeof value === 'string' && (STATUSES as readonly string[]).includes(value);
}

/**
 * Decides whether silence moves a device down a tier.
 *
 * `availableSince` is when the service could last start receiving heartbeats
 * after its own downtime: silence never counts from before it.
 * Throws on a state that breaks the model (unknown status), so a caller can
 * set the device aside instead of guessing.
 */
export function evaluate(device: DeviceState, now: number, availableSince = 0): Evaluation {
  const { status } = device;
  if (!isStatus(status)) throw new Error(`Unknown status ${JSON.stringify(status)}`);
  if (status === 'never_connected' || status === 'offline') return { transition: null, nextCheckAt: null };

  const base = Math.max(device.lastHeartbeatAt ?? availableSince, availableSince);
  const silence = now - base;
  const timeoutMs = device.heartbeatTimeoutSeconds * 1000;
  const graceMs = device.gracePeriodSeconds * 1000;
  const stamp = (crossedAt: number) => Math.max(crossedAt, device.lastStatusChangeAt ?? crossedAt);

  if (silence > graceMs) {
    return {
      transition: {
        from: status,
        to: 'offline',
        at: stamp(base + graceMs),
        reason: `No heartbeat for ${Math.ceil(silence / 1000)}s; grace period of ${device.gracePeriodSeconds}s exceeded`,
        source: 'system',
      },
      nextCheckAt: null,
    };
  }
  if (status === 'connected' && silence > timeoutMs) {
    return {
      transition: {
        from: status,
        to: 'temporarily_offline',
        at: stamp(base + timeoutMs),
        reason: `No heartbeat for ${Math.ceil(silence / 1000)}s (grace period: ${device.gracePeriodSeconds}s)`,
        source: 'system',
      },
      nextCheckAt: base + graceMs + 1,
    };
  }
  return { transition: null, nextCheckAt: base + (status === 'connected' ? timeoutMs : graceMs) + 1 };
}

export interface HeartbeatOutcome {
  /** In order: at most one overdue system transition, then the device's own. */
  readonly transitions: readonly Transition[];
  readonly nextCheckAt: number;
}

/**
 * Applies an accepted heartbeat. A threshold crossed before the heartbeat
 * arrived is recorded first, so the history never depends on when the
 * monitor happened to sweep.
 */
export function acceptHeartbeat(device: DeviceState, now: number, availableSince = 0): HeartbeatOutcome {
  const overdue = evaluate(device, now, availableSince).transition;
  const transitions: Transition[] = overdue ? [overdue] : [];
  const current = overdue?.to ?? device.status;
  if (current !== 'connected') {
    transitions.push({
      from: current,
      to: 'connected',
      at: now,
      reason:
        device.lastHeartbeatAt === null
          ? 'First heartbeat received'
          : `Heartbeat received after ${Math.floor((now - device.lastHeartbeatAt) / 1000)}s of silence`,
      source: 'device',
    });
  }
  return { transitions, nextCheckAt: now + device.heartbeatTimeoutSeconds * 1000 + 1 };
}

export interface ServiceLiveness {
  /** Last time a server process proved it could receive heartbeats. */
  readonly aliveAt: number;
  /** Start of the current stretch of availability. */
  readonly availableSince: number;
}

/**
 * Where silence may start counting from. A gap longer than `gapMs` in the
 * liveness record means nobody could receive heartbeats, so the stretch of
 * availability starts again at `now`.
 */
export function effectiveAvailableSince(liveness: ServiceLiveness, now: number, gapMs: number): number {
  return now - liveness.aliveAt > gapMs ? now : liveness.availableSince;
}
