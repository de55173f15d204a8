import { setTimeout as sleep } from 'node:timers/promises';

import type { Logger } from '../observability/logger.js';
import type { SweepResult } from './sweep.js';

export interface LoopDeps {
  readonly clock: () => number;
  readonly intervalMs: number;
  readonly logger: Logger;
}

/**
 * The dumb driver around a step function: run `step`, sleep `intervalMs`
 * unless it says more is due, repeat until stopped. `stop()` lets the
 * current step finish.
 */
export class Loop {
  /** Loops started and not yet stopped, in this process (tests assert none leak). */
  static running = 0;
  private stopping = false;
  private readonly abort = new AbortController();
  private done: Promise<void> | null = null;

  constructor(
    private readonly name: string,
    private readonly deps: LoopDeps,
    private readonly step: (now: number) => Promise<boolean>,
  ) {}

  start(): this {
    if (!this.done) {
      Loop.running++;
      this.done = this.run().finally(() => Loop.running--);
    }
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let more = false;
      try {
        more = await this.step(this.deps.clock());
      } catch (error) {
        this.deps.logger.warn({ err: error, loop: this.name }, `${this.name} step failed; retrying`);
      }
      if (!more && !this.stopping) await sleep(this.deps.intervalMs, undefined, { signal: this.abort.signal }).catch(() => {});
    }
  }
}

export interface MonitorDeps extends LoopDeps {
  readonly sweep: (now: number) => Promise<SweepResult>;
  /** Takes or renews leadership; true while this process may sweep. */
  readonly lead: (now: number) => Promise<boolean>;
  readonly resign: () => Promise<void>;
  readonly onStep?: (seconds: number, leader: boolean) => void;
}

/** The monitor: sweeps while it holds the lease, and gives the lease up when stopped. */
export function startMonitor(deps: MonitorDeps): { stop(): Promise<void> } {
  let leader = false;
  const loop = new Loop('monitor', deps, async (now) => {
    const wasLeader = leader;
    leader = await deps.lead(now);
    if (leader !== wasLeader) deps.logger.info({ leader }, leader ? 'Monitor leadership acquired' : 'Monitor leadership lost');
    if (!leader) {
      deps.onStep?.(0, false);
      return false;
    }
    const started = performance.now();
    const result = await deps.sweep(now);
    deps.onStep?.((performance.now() - started) / 1000, true);
    return result.more;
  }).start();
  return {
    async stop() {
      await loop.stop();
      if (leader) await deps.resign().catch(() => {});
    },
  };
}
