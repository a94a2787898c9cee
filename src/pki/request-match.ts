/**
 * Whether a CertificateRequest still asks for what its Certificate's spec asks
 * for: cert-manager's `RequestMatchesSpec`, written once. Two callers depend on
 * it agreeing with itself:
 *
 * - the trigger policy (RequestChanged) re-issues when an issued request no
 *   longer matches;
 * - the issuing path keeps or replaces a request still in flight.
 *
 * If they disagreed, a request would be kept by one and re-issued by the
 * other, or an in-flight ACME order would be abandoned for an edit that asks
 * for the same certificate. So fields are compared by meaning, not spelling:
 * durations as lengths ("2160h" is "2160h0m0s"), names as sets, usages with
 * their aliases and defaults, issuer references with their defaults.
 */
import { issuerRefsEqual } from '../api/issuer-ref.ts';
import type { CertificateRequest, CertificateSpec } from '../api/types.ts';
import { durationMs } from '../base/duration.ts';
import { parseCsr, type ParsedCsr } from './csr.ts';
import { sameIps, sameSet } from './names.ts';
import { pemText } from './pem.ts';
import { usagesEqual } from './usages.ts';

/** The CSR of a request's spec.request (base64 of PEM). Throws when it does not parse. */
export function requestCsr(request: CertificateRequest): ParsedCsr {
  return parseCsr(pemText(request.spec.request));
}

/**
 * The spec fields (as `spec.dnsNames`, …) in which the request differs from
 * the spec; empty when it still matches. Throws when the request's CSR does
 * not parse; pass `csr` when the caller has parsed it already.
 */
export function requestMismatches(request: CertificateRequest, spec: CertificateSpec, csr: ParsedCsr = requestCsr(request)): string[] {
  const out: string[] = [];
  const isCA = spec.isCA ?? false;
  if (!sameIps(csr.ipAddresses, spec.ipAddresses)) out.push('spec.ipAddresses');
  if (!sameSet(csr.uris, spec.uris)) out.push('spec.uris');
  if (!sameSet(csr.dnsNames, spec.dnsNames)) out.push('spec.dnsNames');
  if ((csr.commonName ?? '') !== (spec.commonName ?? '')) out.push('spec.commonName');
  if (!sameSet(csr.organizations, spec.subject?.organizations)) out.push('spec.subject.organizations');
  if (!sameSet(csr.countries, spec.subject?.countries)) out.push('spec.subject.countries');
  if (!sameSet(csr.organizationalUnits, spec.subject?.organizationalUnits)) out.push('spec.subject.organizationalUnits');
  if ((request.spec.isCA ?? false) !== isCA || csr.isCA !== isCA) out.push('spec.isCA');
  // A CSR without usage extensions states none (another tool may have made it); one with them must agree.
  const csrUsagesDiffer = csr.usages.length > 0 && !usagesEqual(csr.usages, spec.usages, isCA);
  if (!usagesEqual(request.spec.usages, spec.usages, isCA) || csrUsagesDiffer) out.push('spec.usages');
  if (!sameDuration(request.spec.duration, spec.duration)) out.push('spec.duration');
  if (!issuerRefsEqual(request.spec.issuerRef, spec.issuerRef)) out.push('spec.issuerRef');
  return out;
}

/** Durations as lengths, an absent one being cert-manager's default; unparsable ones by spelling. */
function sameDuration(a: string | undefined, b: string | undefined): boolean {
  try {
    return durationMs(a) === durationMs(b);
  } catch {
    return (a ?? '') === (b ?? '');
  }
}
