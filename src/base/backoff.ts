/**
 * Exponential back-off, written once: the work queue, the informer restart,
 * a Certificate's failed issuances and ACME polling all wait `min · 2^(n−1)`
 * after the n-th try, capped at `max`.
 */

/** The wait after the `attempt`-th try (counting from 1): `minMs`, doubling, at most `maxMs`. */
export function exponentialDelay(attempt: number, minMs: number, maxMs: number): number {
  if (attempt <= 1) return Math.min(minMs, maxMs);
  // 2^64 is far past any cap; stopping there keeps the product finite.
  return Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 64));
}

/**
 * Exponential back-off per key: each `next(key)` counts one more try and
 * returns the wait before the following one; `reset(key)` starts the key
 * over (after a success, or when its object is gone).
 */
export class Backoff {
  private readonly attempts = new Map<string, number>();
  private readonly minMs: number;
  private readonly maxMs: number;

  constructor(minMs: number, maxMs: number) {
    this.minMs = minMs;
    this.maxMs = maxMs;
  }

  next(key: string): number {
    const attempt = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.set(key, attempt);
    return exponentialDelay(attempt, this.minMs, this.maxMs);
  }

  reset(key: string): void {
    this.attempts.delete(key);
  }
}
