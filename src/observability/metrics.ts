import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import { STATUSES } from '../status/status.js';
import type { Status } from '../status/status.js';

export interface Metrics {
  readonly registry: Registry;
  readonly heartbeats: Counter;
  readonly heartbeatsRateLimited: Counter;
  readonly transitions: Counter<'from' | 'to'>;
  readonly devices: Gauge<'status'>;
  readonly sweepSeconds: Histogram;
  readonly heartbeatBatchSize: Histogram;
  readonly authFailures: Counter;
  readonly reconnectsDelivered: Counter;
  readonly redisFallbacks: Counter;
  readonly monitorLeader: Gauge;
}

/**
 * A registry per process (per app in tests). `countDevices` feeds the
 * devices gauge at scrape time.
 */
export function createMetrics(countDevices?: () => Promise<Map<Status, number>>): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fleetpulse_process_' });
  const devices = new Gauge({
    name: 'fleetpulse_devices',
    help: 'Devices by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      if (!countDevices) return;
      const counts = await countDevices().catch(() => null);
      if (!counts) return;
      for (const status of STATUSES) this.set({ status }, counts.get(status) ?? 0);
    },
  });
  return {
    registry,
    devices,
    heartbeats: new Counter({ name: 'fleetpulse_heartbeats_total', help: 'Heartbeats accepted and committed', registers: [registry] }),
    heartbeatsRateLimited: new Counter({
      name: 'fleetpulse_heartbeats_rate_limited_total',
      help: 'Heartbeats refused with 429',
      registers: [registry],
    }),
    transitions: new Counter({
      name: 'fleetpulse_status_transitions_total',
      help: 'Status transitions committed by this process',
      labelNames: ['from', 'to'] as const,
      registers: [registry],
    }),
    sweepSeconds: new Histogram({
      name: 'fleetpulse_monitor_sweep_seconds',
      help: 'Duration of one monitor sweep step',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    heartbeatBatchSize: new Histogram({
      name: 'fleetpulse_heartbeat_batch_size',
      help: 'Heartbeats committed per transaction (group commit)',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    authFailures: new Counter({ name: 'fleetpulse_auth_failures_total', help: 'Requests with an unknown token', registers: [registry] }),
    reconnectsDelivered: new Counter({
      name: 'fleetpulse_reconnect_signals_delivered_total',
      help: 'Reconnect signals delivered in heartbeat responses',
      registers: [registry],
    }),
    redisFallbacks: new Counter({
      name: 'fleetpulse_redis_fallbacks_total',
      help: 'Operations that fell back to process-local state because Redis was unreachable',
      registers: [registry],
    }),
    monitorLeader: new Gauge({ name: 'fleetpulse_monitor_leader', help: '1 while this process holds the monitor lease', registers: [registry] }),
  };
}
