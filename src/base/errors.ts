/**
 * Errors every layer may throw and every layer may recognise. They live on
 * the floor so that a lower layer (the ACME client) can say "retry, but not
 * before …" without importing the work queue that acts on it.
 *
 * certroute's error classes look alike on purpose (RetryAfterError here,
 * AcmeProblemError, the Kubernetes client's ApiError, DnsUpdateError): one
 * class per cause, with a readonly field for what a caller branches on, told
 * apart with `instanceof`.
 */

/**
 * A transient error that names its own delay, such as an ACME 429 with
 * Retry-After: the work queue waits at least that long before the next try.
 */
export class RetryAfterError extends Error {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RetryAfterError';
    this.retryAfterMs = retryAfterMs;
  }
}
