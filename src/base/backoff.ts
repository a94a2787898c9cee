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
