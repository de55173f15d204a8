import type { Database } from '../db/database.js';
import { inTransaction } from '../db/transaction.js';
import { findDevice, listDeviceIds, requestReconnects } from '../devices/device.repository.js';
import { notFound } from '../devices/device.service.js';
import type { Status } from '../status/status.js';
import type { ReconnectSignal } from './signal.hub.js';

export interface ReconnectDeps {
  readonly database: Database;
  readonly clock: () => number;
  /** Fan-out to faster channels than the next heartbeat (signal streams, on every replica through Redis). */
  readonly announce?: (signals: readonly ReconnectSignal[]) => Promise<void>;
}

/** Delays spread evenly over [0, spreadSeconds): device i of n waits floor(i · spread / n) seconds. */
export function spreadDelays(count: number, spreadSeconds: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.floor((i * spreadSeconds) / count));
}

const PAGE = 5000;

/**
 * Reconnect signals ride on the next heartbeat response, delivered once
 * (the device row holds the pending signal; delivery clears it under the row lock).
 */
export class ReconnectService {
  constructor(private readonly deps: ReconnectDeps) {}

  async signalDevice(id: number, delaySeconds: number): Promise<void> {
    const { database } = this.deps;
    const now = this.deps.clock();
    const changed = await inTransaction(database, (trx) => requestReconnects(trx, database.caps, [{ id, delay: delaySeconds }], now));
    if (changed === 0 && !(await findDevice(database.db, id))) throw notFound(id);
    await this.deps.announce?.([{ deviceId: id, delaySeconds, requestedAt: now }]);
  }

  /** Signals every device (with `status`, if given). Returns how many were signalled. */
  async signalFleet(status: Status | undefined, spreadSeconds: number): Promise<number> {
    const { database } = this.deps;
    const ids: number[] = [];
    for (let after = 0; ; ) {
      const batch = await listDeviceIds(database.db, status, after, PAGE);
      ids.push(...batch);
      if (batch.length < PAGE) break;
      after = batch.at(-1)!;
    }
    const delays = spreadDelays(ids.length, spreadSeconds);
    const rows = ids.map((id, i) => ({ id, delay: delays[i]! }));
    const now = this.deps.clock();
    for (let start = 0; start < rows.length; start += PAGE) {
      await inTransaction(database, (trx) => requestReconnects(trx, database.caps, rows.slice(start, start + PAGE), now));
    }
    await this.deps.announce?.(rows.map((r) => ({ deviceId: r.id, delaySeconds: r.delay, requestedAt: now })));
    return rows.length;
  }
}
