/**
 * A token bucket of `burst` tokens refilled one per `intervalMs`, kept as the
 * generic cell rate algorithm: one number per key (the theoretical arrival
 * time), so a million devices cost a million numbers at most.
 */

export interface RateDecision {
  readonly allowed: boolean;
  /** How long until a request would be allowed (0 when allowed). */
  readonly retryAfterMs: number;
}

export interface RateLimit {
  readonly burst: number;
  /** 0 disables the limit. */
  readonly intervalMs: number;
}

const ALLOWED: RateDecision = Object.freeze({ allowed: true, retryAfterMs: 0 });

/** The pure step: given the stored arrival time (or undefined), decide and return the new one. */
export function gcra(limit: RateLimit, stored: number | undefined, now: number): { decision: RateDecision; next: number | undefined } {
  if (limit.intervalMs <= 0) return { decision: ALLOWED, next: stored };
  const tolerance = limit.intervalMs * (limit.burst - 1);
  const tat = Math.max(stored ?? now, now);
  if (tat - now > tolerance) return { decision: { allowed: false, retryAfterMs: tat - now - tolerance }, next: stored };
  return { decision: ALLOWED, next: tat + limit.intervalMs };
}

const PRUNE_EVERY_MS = 10_000;

/** Per-process buckets. */
export class LocalRateLimiter<K = string | number> {
  private readonly arrivals = new Map<K, number>();
  private lastPrune = 0;

  constructor(readonly limit: RateLimit) {}

  take(key: K, now: number): RateDecision {
    this.prune(now);
    const { decision, next } = gcra(this.limit, this.arrivals.get(key), now);
    if (decision.allowed && next !== undefined) this.arrivals.set(key, next);
    return decision;
  }

  /** Would `take` be allowed? Changes nothing. */
  peek(key: K, now: number): RateDecision {
    return gcra(this.limit, this.arrivals.get(key), now).decision;
  }

  get size(): number {
    return this.arrivals.size;
  }

  /** Full buckets are the same as no bucket: drop them now and then. */
  private prune(now: number): void {
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    for (const [key, tat] of this.arrivals) if (tat <= now) this.arrivals.delete(key);
  }
}
