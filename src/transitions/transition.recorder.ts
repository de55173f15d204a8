import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { NewTransition } from './transition.repository.js';

/** Called once per committed transaction with the transitions it recorded. */
export type TransitionRecorder = (transitions: readonly NewTransition[]) => void;

/** Exactly one JSON log line and one counter increment per committed transition. */
export function createTransitionRecorder(logger: Logger, metrics: Pick<Metrics, 'transitions'>): TransitionRecorder {
  return (transitions) => {
    for (const t of transitions) {
      metrics.transitions.inc({ from: t.from_status, to: t.to_status });
      logger.info(
        {
          device_id: t.device_id,
          device_name: t.device_name,
          from_status: t.from_status,
          to_status: t.to_status,
          reason: t.reason,
          source: t.source,
          at: new Date(t.at).toISOString(),
        },
        'Device status changed',
      );
    }
  };
}
