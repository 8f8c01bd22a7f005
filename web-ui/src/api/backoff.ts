//! Reconnect delays: exponential with full jitter in the upper half, capped, so that many
//! clients dropped by one server restart do not all come back in the same instant.

export interface BackoffOptions {
  /** First delay before jitter, ms. */
  baseMs: number;
  /** Largest delay before jitter, ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000 };

/** Delay before reconnect attempt `attempt` (0 = first retry), in [d/2, d] where
 *  d = min(max, base·2^attempt); `random` returns [0, 1). */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
