/**
 * When to renew.
 *
 * The rule is cert-manager's (`pkg/util/pki/renewaltime.go`) so that
 * `status.renewalTime` and the renewal metric agree with a cert-manager
 * installation's for the same Certificate. It is computed from the lifetime of
 * the certificate actually issued, not from `spec.duration`: ACME CAs choose
 * their own lifetimes, and Let's Encrypt ignores the requested one.
 */
import { parseGoDuration } from '../base/duration.ts';

export interface RenewalInput {
  notBefore: Date;
  notAfter: Date;
  /** Go duration string, e.g. "720h". */
  renewBefore?: string;
  /** Percentage of the lifetime, 1–99. */
  renewBeforePercentage?: number;
}

/**
 * The renewal time: `renewBefore` before expiry if set and shorter than the
 * lifetime, else `renewBeforePercentage` of the lifetime if in (0, 100), else
 * one third of the lifetime. Truncated to the second, because status stores
 * seconds: an untruncated value would look due a fraction of a second before
 * it is, and the requeue would find nothing to do (cert-manager#4399).
 * Throws when `renewBefore` is not a Go duration.
 */
export function renewalTime(input: RenewalInput): Date {
  const notAfter = input.notAfter.getTime();
  const lifetime = notAfter - input.notBefore.getTime();
  const before = renewBeforeMs(lifetime, input.renewBefore, input.renewBeforePercentage);
  return new Date(Math.floor((notAfter - before) / 1000) * 1000);
}

function renewBeforeMs(lifetime: number, renewBefore?: string, percentage?: number): number {
  if (renewBefore !== undefined && renewBefore !== '') {
    const ms = parseGoDuration(renewBefore);
    if (ms > 0 && ms < lifetime) return ms;
  }
  if (percentage !== undefined && percentage > 0 && percentage < 100) {
    return (lifetime * Math.trunc(percentage)) / 100;
  }
  return lifetime / 3;
}
