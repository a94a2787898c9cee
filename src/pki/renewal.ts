/**
 * When to renew.
 *
 * The rule is cert-manager's (`pkg/util/pki/renewaltime.go`) so that
 * `status.renewalTime` and the renewal metric agree with a cert-manager
 * installation's for the same Certificate. It is computed from the lifetime of
 * the certificate actually issued, not from `spec.duration`: ACME CAs choose
 * their own lifetimes, and Let's Encrypt ignores the requested one.
 */
import type { Certificate } from '../api/types.ts';
import { parseGoDuration } from '../base/duration.ts';
import type { CertificateFacts } from './secret-facts.ts';

export interface RenewalInput {
  notBefore: Date;
  notAfter: Date;
  /** Go duration string, e.g. "720h". */
  renewBefore?: string;
  /** Percentage of the lifetime, 1–99. */
  renewBeforePercentage?: number;
  /** The moment picked in the CA's ARI window for this very certificate (RFC 9773). */
  ariSelected?: Date;
}

/**
 * The renewal time: `renewBefore` before expiry if set and shorter than the
 * lifetime, else `renewBeforePercentage` of the lifetime if in (0, 100), else
 * one third of the lifetime (so a 6-day certificate renews after 4 days, a
 * 90-day one after 60). A moment picked in the CA's ARI window replaces the
 * one-third default, and replaces `renewBefore` or `renewBeforePercentage`
 * unless they give an earlier time: the CA knows of revocations the spec
 * cannot foresee, and the user's wish to renew early still holds. Truncated to the second, because status stores
 * seconds: an untruncated value would look due a fraction of a second before
 * it is, and the requeue would find nothing to do (cert-manager#4399).
 * Throws when `renewBefore` is not a Go duration.
 */
export function renewalTime(input: RenewalInput): Date {
  const notAfter = input.notAfter.getTime();
  const lifetime = notAfter - input.notBefore.getTime();
  const before = renewBeforeMs(lifetime, input.renewBefore, input.renewBeforePercentage);
  const ari = input.ariSelected?.getTime();
  const at = before === undefined ? (ari ?? notAfter - lifetime / 3) : Math.min(notAfter - before, ari ?? Infinity);
  return new Date(Math.floor(at / 1000) * 1000);
}

/** What the spec asks for, before expiry; undefined when it asks nothing usable. */
function renewBeforeMs(lifetime: number, renewBefore?: string, percentage?: number): number | undefined {
  if (renewBefore !== undefined && renewBefore !== '') {
    const ms = parseGoDuration(renewBefore);
    if (ms > 0 && ms < lifetime) return ms;
  }
  if (percentage !== undefined && percentage > 0 && percentage < 100) {
    return (lifetime * Math.trunc(percentage)) / 100;
  }
  return undefined;
}

/**
 * The renewal time of a Certificate's current certificate: its spec, and the moment picked in
 * the ARI window when status.acme.ari was fetched for this very certificate (its identifier
 * matches), never for the one before it.
 */
export function certificateRenewalTime(cert: Certificate, leaf: Pick<CertificateFacts, 'notBefore' | 'notAfter' | 'renewalInfoId'>): Date {
  const ari = cert.status?.acme?.ari;
  const selected = ari && leaf.renewalInfoId && ari.certID === leaf.renewalInfoId ? new Date(ari.selectedTime) : undefined;
  return renewalTime({
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    renewBefore: cert.spec.renewBefore,
    renewBeforePercentage: cert.spec.renewBeforePercentage,
    ...(selected && !Number.isNaN(selected.getTime()) ? { ariSelected: selected } : {}),
  });
}
