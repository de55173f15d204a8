import { describe, expect, it } from 'vitest';

import { acceptHeartbeat, effectiveAvailableSince, evaluate, STATUSES } from '../src/status/status.js';
import type { DeviceState, Status } from '../src/status/status.js';

const T0 = 1_000_000;
const s = (seconds: number) => seconds * 1000;

function device(status: Status, lastHeartbeatAt: number | null = T0, timeout = 30, grace = 60): DeviceState {
  return { status, lastHeartbeatAt, heartbeatTimeoutSeconds: timeout, gracePeriodSeconds: grace };
}

describe('evaluate (the status table of CONTRACT.md §2)', () => {
  const rows: {
    name: string;
    state: DeviceState;
    silence: number;
    to: Status | null;
    at?: number;
    reason?: string;
    next?: number | null;
  }[] = [
    { name: 'keeps a connected device connected while silence is under the timeout', state: device('connected'), silence: s(29), to: null, next: T0 + s(30) + 1 },
    { name: 'keeps a connected device connected at exactly the timeout', state: device('connected'), silence: s(30), to: null, next: T0 + s(30) + 1 },
    {
      name: 'marks a connected device temporarily offline one millisecond past the timeout',
      state: device('connected'),
      silence: s(30) + 1,
      to: 'temporarily_offline',
      at: T0 + s(30),
      reason: 'No heartbeat for 31s (grace period: 60s)',
      next: T0 + s(60) + 1,
    },
    {
      name: 'words the reason as the contract does',
      state: device('connected'),
      silence: s(45),
      to: 'temporarily_offline',
      reason: 'No heartbeat for 45s (grace period: 60s)',
    },
    { name: 'keeps a temporarily offline device so at exactly the grace period', state: device('temporarily_offline'), silence: s(60), to: null, next: T0 + s(60) + 1 },
    {
      name: 'marks a temporarily offline device offline once the grace period has passed',
      state: device('temporarily_offline'),
      silence: s(61),
      to: 'offline',
      at: T0 + s(60),
      reason: 'No heartbeat for 61s; grace period of 60s exceeded',
      next: null,
    },
    {
      name: 'marks a connected device offline directly when the grace period has passed too',
      state: device('connected'),
      silence: s(90),
      to: 'offline',
      at: T0 + s(60),
      reason: 'No heartbeat for 90s; grace period of 60s exceeded',
    },
    { name: 'never moves a never-connected device', state: device('never_connected', null), silence: s(100_000), to: null, next: null },
    { name: 'never moves an offline device (only a heartbeat can)', state: device('offline'), silence: s(100_000), to: null, next: null },
    { name: 'honours per-device thresholds', state: device('connected', T0, 5, 10), silence: s(6), to: 'temporarily_offline', at: T0 + s(5) },
  ];

  it.each(rows)('$name', ({ state, silence, to, at, reason, next }) => {
    const result = evaluate(state, T0 + silence);
    expect(result.transition?.to ?? null).toBe(to);
    if (to) {
      expect(result.transition!.from).toBe(state.status);
      expect(result.transition!.source).toBe('system');
    }
    if (at !== undefined) expect(result.transition!.at).toBe(at);
    if (reason !== undefined) expect(result.transition!.reason).toBe(reason);
    if (next !== undefined) expect(result.nextCheckAt).toBe(next);
  });

  it('counts silence from when the service became available again, never from before (downtime awareness)', () => {
    const restartedAt = T0 + s(600);
    expect(evaluate(device('connected'), restartedAt + s(30), restartedAt).transition).toBeNull();
    const late = evaluate(device('connected'), restartedAt + s(31), restartedAt).transition!;
    expect(late.to).toBe('temporarily_offline');
    expect(late.at).toBe(restartedAt + s(30));
    expect(evaluate(device('temporarily_offline'), restartedAt + s(60), restartedAt).transition).toBeNull();
  });

  it('never stamps a transition before the previous one, even after thresholds were shortened', () => {
    const previousChange = T0 + s(30); // went temporarily offline under a 30 s timeout
    const shortened = { ...device('temporarily_offline', T0, 5, 10), lastStatusChangeAt: previousChange };
    const result = evaluate(shortened, T0 + s(40)).transition!;
    expect(result.to).toBe('offline');
    expect(result.at).toBe(previousChange);
  });

  it('throws on a status outside the model so the caller can set the device aside', () => {
    expect(() => evaluate(device('bogus' as Status), T0)).toThrow(/Unknown status/);
  });

  it('has the four statuses of the contract', () => {
    expect(STATUSES).toEqual(['never_connected', 'connected', 'temporarily_offline', 'offline']);
  });
});

describe('acceptHeartbeat', () => {
  it.each([
    { from: 'never_connected' as const, last: null, reason: 'First heartbeat received' },
    { from: 'temporarily_offline' as const, last: T0 - s(35), reason: 'Heartbeat received after 35s of silence' },
    { from: 'offline' as const, last: T0 - s(95), reason: 'Heartbeat received after 95s of silence' },
  ])('moves a $from device to connected with source device', ({ from, last, reason }) => {
    const outcome = acceptHeartbeat(device(from, last), T0);
    expect(outcome.transitions).toEqual([{ from, to: 'connected', at: T0, reason, source: 'device' }]);
    expect(outcome.nextCheckAt).toBe(T0 + s(30) + 1);
  });

  it('records nothing for a device that is already connected and on time', () => {
    expect(acceptHeartbeat(device('connected', T0 - s(10)), T0).transitions).toEqual([]);
  });

  it('records an overdue threshold crossing before the reconnection, so history does not depend on sweep timing', () => {
    const outcome = acceptHeartbeat(device('connected', T0 - s(40)), T0);
    expect(outcome.transitions.map((t) => [t.from, t.to, t.source])).toEqual([
      ['connected', 'temporarily_offline', 'system'],
      ['temporarily_offline', 'connected', 'device'],
    ]);
    expect(outcome.transitions[0]!.at).toBe(T0 - s(10));
  });

  it('does not blame the device for the service being down when it reports right after a restart', () => {
    const outcome = acceptHeartbeat(device('connected', T0 - s(400)), T0, T0 - s(5));
    expect(outcome.transitions).toEqual([]);
  });
});

describe('effectiveAvailableSince', () => {
  it('keeps the stretch of availability while the liveness record is fresh', () => {
    expect(effectiveAvailableSince({ aliveAt: T0 - 900, availableSince: T0 - s(100) }, T0, 3000)).toBe(T0 - s(100));
  });
  it('starts a new stretch at now after a gap longer than allowed', () => {
    expect(effectiveAvailableSince({ aliveAt: T0 - 3001, availableSince: T0 - s(100) }, T0, 3000)).toBe(T0);
  });
});
