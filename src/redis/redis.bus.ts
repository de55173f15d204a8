import type { Logger } from '../observability/logger.js';
import type { ReconnectSignal } from '../signals/signal.hub.js';
import type { RedisHandle } from './redis.client.js';

export interface Bus {
  /** Tells every replica that a device's token or settings changed. */
  deviceChanged(deviceId: number): Promise<void>;
  /** Announces reconnect signals to every replica (for push delivery). */
  signals(signals: readonly ReconnectSignal[]): Promise<void>;
  close(): Promise<void>;
}

export interface BusHandlers {
  readonly onDeviceChanged: (deviceId: number) => void;
  readonly onSignal?: (signal: ReconnectSignal) => void;
}

/**
 * Pub/sub between replicas. A publish that fails is counted and logged, not
 * thrown: the caller's own change is already committed and checked again under
 * the row lock, so a missed message only costs a cache entry's life.
 */
export function redisBus(redis: RedisHandle, handlers: BusHandlers, logger: Logger, onFallback: () => void): Bus {
  const INVALIDATE_CHANNEL = `${redis.prefix}device-changed`;
  const SIGNAL_CHANNEL = `${redis.prefix}reconnect-signals`;
  void redis.subscriber.subscribe(INVALIDATE_CHANNEL, SIGNAL_CHANNEL).catch((error: unknown) => logger.warn({ err: error }, 'Redis subscribe failed; will retry on reconnect'));
  redis.subscriber.on('message', (channel: string, message: string) => {
    if (channel === INVALIDATE_CHANNEL) {
      const id = Number(message);
      if (Number.isSafeInteger(id)) handlers.onDeviceChanged(id);
    } else if (channel === SIGNAL_CHANNEL && handlers.onSignal) {
      for (const signal of JSON.parse(message) as ReconnectSignal[]) handlers.onSignal(signal);
    }
  });
  const publish = async (channel: string, message: string) => {
    try {
      await redis.commands.publish(channel, message);
    } catch (error) {
      redis.reportFailure(error);
      onFallback();
    }
  };
  return {
    deviceChanged: (deviceId) => publish(INVALIDATE_CHANNEL, String(deviceId)),
    async signals(signals) {
      for (let start = 0; start < signals.length; start += 1000) {
        await publish(SIGNAL_CHANNEL, JSON.stringify(signals.slice(start, start + 1000)));
      }
    },
    close: () => redis.subscriber.unsubscribe().then(() => undefined, () => undefined),
  };
}
