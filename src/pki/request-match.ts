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
import type { CertificateRequest, CertificateSpec, OtherName } from '../api/types.ts';
import { durationMs } from '../base/duration.ts';
import { parseCsr, type ParsedCsr } from './csr.ts';
import { literalSubjectKey } from './literal-subject.ts';
import { nameConstraintsSpecKey } from './name-constraints.ts';
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
  if (!sameSet(csr.emailAddresses, spec.emailAddresses)) out.push('spec.emailAddresses');
  if (!sameSet(csr.otherNames.map(otherNameKey), (spec.otherNames ?? []).map(otherNameKey))) out.push('spec.otherNames');
  out.push(...subjectMismatches(csr, spec));
  if (csr.nameConstraints !== specConstraintsKey(spec)) out.push('spec.nameConstraints');
  // Unset means the key's default, whatever the CSR was signed with: only an explicit choice is compared.
  if (spec.signatureAlgorithm && csr.signatureAlgorithm !== spec.signatureAlgorithm) out.push('spec.signatureAlgorithm');
  if ((request.spec.isCA ?? false) !== isCA || csr.isCA !== isCA) out.push('spec.isCA');
  // A CSR without usage extensions states none (another tool may have made it); one with them must agree.
  const csrUsagesDiffer = csr.usages.length > 0 && !usagesEqual(csr.usages, spec.usages, isCA);
  if (!usagesEqual(request.spec.usages, spec.usages, isCA) || csrUsagesDiffer) out.push('spec.usages');
  if (!sameDuration(request.spec.duration, spec.duration)) out.push('spec.duration');
  if (!issuerRefsEqual(request.spec.issuerRef, spec.issuerRef)) out.push('spec.issuerRef');
  return out;
}

const otherNameKey = (o: OtherName): string => `${o.oid}=${o.utf8Value}`;

/** The subject: by RDN order for a literalSubject, as attribute sets otherwise (cert-manager's rule). */
function subjectMismatches(csr: ParsedCsr, spec: CertificateSpec): string[] {
  if (spec.literalSubject) {
    let wanted: string;
    try {
      wanted = literalSubjectKey(spec.literalSubject);
    } catch {
      return ['spec.literalSubject'];
    }
    return csr.subjectKey === wanted ? [] : ['spec.literalSubject'];
  }
  const out: string[] = [];
  const subject = spec.subject ?? {};
  if ((csr.commonName ?? '') !== (spec.commonName ?? '')) out.push('spec.commonName');
  if (csr.serialNumber !== (subject.serialNumber ?? '')) out.push('spec.subject.serialNumber');
  for (const field of ['organizations', 'countries', 'organizationalUnits', 'localities', 'provinces', 'streetAddresses', 'postalCodes'] as const) {
    if (!sameSet(csr[field], subject[field])) out.push(`spec.subject.${field}`);
  }
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

/** The spec's name constraints as comparable text; one that cannot be written (an entry Go would not read) differs from any CSR, and building the next CSR says why. */
function specConstraintsKey(spec: CertificateSpec): string {
  try {
    return nameConstraintsSpecKey(spec.isCA ? spec.nameConstraints : undefined);
  } catch {
    return 'unwritable';
  }
}
