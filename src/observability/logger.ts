import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger };

/** JSON lines with an ISO time; `destination` defaults to stdout. */
export function createLogger(level: string, destination?: DestinationStream | number): Logger {
  return pino(
    {
      level,
      base: { service: 'fleetpulse' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    typeof destination === 'number' ? pino.destination({ dest: destination, sync: true }) : destination,
  );
}
