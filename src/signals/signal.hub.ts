import type { Database } from '../db/database.js';
import { claimReconnect, findDevice } from '../devices/device.repository.js';
import type { Logger } from '../observability/logger.js';

export interface ReconnectSignal {
  readonly deviceId: number;
  readonly delaySeconds: number;
  /** Identifies the signal: only the request still pending at this time may be delivered. */
  readonly requestedAt: number;
}

type Send = (event: string, data: unknown) => void;

export interface SignalHubDeps {
  readonly database: Database;
  readonly clock: () => number;
  readonly logger: Logger;
  readonly onDelivered: () => void;
}

/**
 * Devices with an open signal stream on this process. A signal is pushed only
 * by whoever claims it in the database first (this stream, another replica's,
 * or the next heartbeat), so each one is delivered exactly once.
 */
export class SignalHub {
  private readonly streams = new Map<number, Set<Send>>();
  private readonly closers = new Set<() => void>();

  constructor(private readonly deps: SignalHubDeps) {}

  /** Registers a stream; delivers a signal that is already pending. Returns the unsubscribe function. */
  subscribe(deviceId: number, send: Send, close: () => void): () => void {
    const sends = this.streams.get(deviceId) ?? new Set<Send>();
    sends.add(send);
    this.streams.set(deviceId, sends);
    this.closers.add(close);
    void findDevice(this.deps.database.db, deviceId)
      .then((row) =>
        row && row.reconnect_delay_seconds !== null && row.reconnect_requested_at !== null
          ? this.deliver([{ deviceId, delaySeconds: row.reconnect_delay_seconds, requestedAt: row.reconnect_requested_at }])
          : undefined,
      )
      .catch((error: unknown) => this.deps.logger.warn({ err: error, device_id: deviceId }, 'Could not check for a pending signal'));
    return () => {
      sends.delete(send);
      if (sends.size === 0) this.streams.delete(deviceId);
      this.closers.delete(close);
    };
  }

  /** Pushes the signals whose device has a stream here. */
  async deliver(signals: readonly ReconnectSignal[]): Promise<void> {
    for (const signal of signals) {
      const sends = this.streams.get(signal.deviceId);
      if (!sends) continue;
      if (!(await claimReconnect(this.deps.database.db, signal.deviceId, signal.requestedAt, this.deps.clock()))) continue;
      for (const send of sends) send('reconnect', { should_reconnect: true, reconnect_delay_seconds: signal.delaySeconds });
      this.deps.onDelivered();
    }
  }

  get size(): number {
    return this.streams.size;
  }

  /** Ends every stream (the server is draining). */
  closeAll(): void {
    for (const close of [...this.closers]) close();
  }
}
