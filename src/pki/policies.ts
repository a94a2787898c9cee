/**
 * Whether a Certificate needs a new certificate, and why: cert-manager's
 * trigger and readiness policy chains (`internal/controller/certificates/policies`).
 *
 * Each policy is a pure function of the gathered input, the first violation
 * wins, and the reasons are cert-manager's strings: they appear in the Issuing
 * and Ready conditions, where users, alerts and `cmctl status` read them.
 */
import { formatIssuerRef, issuerRefsEqual } from '../api/issuer-ref.ts';
import type { Certificate, CertificateRequest, Secret } from '../api/types.ts';
import { SecretAnnotations } from '../api/types.ts';
import type { ParsedCsr } from './csr.ts';
import { keySpecViolations } from './keys.ts';
import { sameIps, sameSet } from './names.ts';
import { certificateRenewalTime } from './renewal.ts';
import { requestCsr, requestMismatches } from './request-match.ts';
import { secretFacts, type CertificateFacts, type KeyFacts } from './secret-facts.ts';

/** The Secret named by spec.secretName does not exist. */
export const DoesNotExist = 'DoesNotExist';
/** The Secret lacks tls.crt or tls.key. */
export const MissingData = 'MissingData';
/** The private key does not parse, or the certificate's public key is not its public half. */
export const InvalidKeyPair = 'InvalidKeyPair';
/** The certificate in the Secret does not parse. */
export const InvalidCertificate = 'InvalidCertificate';
/** The current CertificateRequest's CSR does not parse. */
export const InvalidCertificateRequest = 'InvalidCertificateRequest';
/** The Secret's key or certificate no longer fits the spec (key type/size, names, current request). */
export const SecretMismatch = 'SecretMismatch';
/** The Secret's issuer annotations name a different issuer than spec.issuerRef. */
export const IncorrectIssuer = 'IncorrectIssuer';
/** The Secret belongs to another Certificate (its certificate-name annotation differs). */
export const IncorrectCertificate = 'IncorrectCertificate';
/** The CertificateRequest of the current revision no longer matches the spec. */
export const RequestChanged = 'RequestChanged';
/** The renewal time has come. */
export const Renewing = 'Renewing';
/** The certificate has expired. */
export const Expired = 'Expired';

/** All reasons by name, for callers that prefer `Reasons.Renewing` to importing each constant. */
export const Reasons = {
  DoesNotExist,
  MissingData,
  InvalidKeyPair,
  InvalidCertificate,
  InvalidCertificateRequest,
  SecretMismatch,
  IncorrectIssuer,
  IncorrectCertificate,
  RequestChanged,
  Renewing,
  Expired,
} as const;

export interface PolicyInput {
  certificate: Certificate;
  secret?: Secret;
  now: Date;
  /** The CertificateRequest that produced the current revision, when it still exists. */
  currentRequest?: CertificateRequest;
}

export interface Violation {
  reason: string;
  message: string;
}

export type Policy = (input: PolicyInput) => Violation | undefined;

/** What the policies read of the Secret: its facts (see secret-facts.ts), never its PEM. */
interface Parsed {
  key?: KeyFacts;
  keyError?: string;
  cert?: CertificateFacts;
  certError?: string;
}

function parsed(input: PolicyInput): Parsed {
  if (!input.secret) return {};
  const facts = secretFacts(input.secret);
  return { key: facts.key, keyError: facts.keyError, cert: facts.certificate, certError: facts.certificateError };
}

function violation(reason: string, message: string): Violation {
  return { reason, message };
}

export const secretDoesNotExist: Policy = (input) =>
  input.secret ? undefined : violation(DoesNotExist, 'Issuing certificate as Secret does not exist');

export const secretIsMissingData: Policy = (input) => {
  const data = input.secret?.data;
  if (!data) return violation(MissingData, 'Issuing certificate as Secret does not contain any data');
  const facts = secretFacts(input.secret!);
  if (!facts.hasKey) return violation(MissingData, 'Issuing certificate as Secret does not contain a private key');
  if (!facts.hasCertificate) return violation(MissingData, 'Issuing certificate as Secret does not contain a certificate');
  return undefined;
};

export const secretPublicKeysDiffer: Policy = (input) => {
  const { key, keyError, cert, certError } = parsed(input);
  if (!key) return violation(InvalidKeyPair, `Issuing certificate as Secret contains invalid private key data: ${keyError}`);
  if (!cert) return violation(InvalidCertificate, `Issuing certificate as Secret contains an invalid certificate: ${certError}`);
  if (cert.publicKeyFingerprint !== key.publicKeyFingerprint) {
    return violation(InvalidKeyPair, 'Issuing certificate as Secret contains a private key that does not match the certificate');
  }
  return undefined;
};

export const secretIssuerAnnotationsMismatch: Policy = (input) => {
  const annotations = input.secret?.metadata.annotations ?? {};
  const name = annotations[SecretAnnotations.issuerName];
  const kind = annotations[SecretAnnotations.issuerKind];
  const group = annotations[SecretAnnotations.issuerGroup];
  // Only judged when cert-manager-style annotations are present at all: a
  // Secret created by hand or by another tool is not evidence of another issuer.
  if (name === undefined && kind === undefined && group === undefined) return undefined;
  const previous = { name: name ?? '', kind, group };
  if (issuerRefsEqual(previous, input.certificate.spec.issuerRef)) return undefined;
  return violation(IncorrectIssuer, `Issuing certificate as Secret was previously issued by "${formatIssuerRef(previous)}"`);
};

export const secretCertificateNameAnnotationsMismatch: Policy = (input) => {
  const name = input.secret?.metadata.annotations?.[SecretAnnotations.certificateName];
  if (name === undefined || name === input.certificate.metadata.name) return undefined;
  return violation(
    IncorrectCertificate,
    `Secret was issued for "${name}". If this message is not transient, you might have two conflicting Certificates pointing to the same secret.`,
  );
};

export const secretPrivateKeyMismatchesSpec: Policy = (input) => {
  const { key } = parsed(input);
  if (!key) return violation(InvalidKeyPair, 'Issuing certificate as Secret contains invalid private key data');
  let violations: string[];
  try {
    violations = keySpecViolations(key, input.certificate.spec.privateKey);
  } catch (err) {
    return violation(SecretMismatch, `Existing private key is not up to date for spec: ${(err as Error).message}`);
  }
  if (violations.length === 0) return undefined;
  return violation(SecretMismatch, `Existing private key is not up to date for spec: [${violations.join(' ')}]`);
};

export const secretPublicKeyDiffersFromCurrentRequest: Policy = (input) => {
  if (!input.currentRequest) return undefined;
  const { key } = parsed(input);
  if (!key) return violation(InvalidKeyPair, 'Issuing certificate as Secret contains invalid private key data');
  const csr = currentCsr(input.currentRequest);
  if (typeof csr === 'string') return violation(InvalidCertificateRequest, `Failed to decode current CertificateRequest: ${csr}`);
  if (csr.publicKeyFingerprint === key.publicKeyFingerprint) return undefined;
  return violation(SecretMismatch, 'Secret contains a private key that does not match the current CertificateRequest');
};

/**
 * Compares the current CertificateRequest with the spec (RequestChanged). When
 * that request has been deleted (revisionHistoryLimit), falls back to a looser
 * comparison of the issued certificate, which tolerates a CA moving the common
 * name into the DNS names or back (SecretMismatch).
 */
export const currentRequestMismatchesSpec: Policy = (input) => {
  if (!input.currentRequest) return issuedCertificateMismatchesSpec(input);
  const csr = currentCsr(input.currentRequest);
  // An unreadable request is not a reason to replace a certificate that may be fine.
  if (typeof csr === 'string') return undefined;
  const fields = requestMismatches(input.currentRequest, input.certificate.spec, csr);
  if (fields.length === 0) return undefined;
  return violation(RequestChanged, `Fields on existing CertificateRequest resource not up to date: [${fields.join(' ')}]`);
};

export const currentCertificateHasExpired: Policy = (input) => {
  const { cert } = parsed(input);
  if (!cert) return violation(InvalidCertificate, 'Issuing certificate as Secret contains an invalid certificate');
  if (input.now.getTime() <= cert.notAfter.getTime()) return undefined;
  return violation(Expired, `Certificate expired on ${cert.notAfter.toUTCString()}`);
};

export const currentCertificateNearingExpiry: Policy = (input) => {
  const { cert } = parsed(input);
  if (!cert) return violation(InvalidCertificate, 'Issuing certificate as Secret contains an invalid certificate');
  let at: Date;
  try {
    at = certificateRenewalTime(input.certificate, cert);
  } catch {
    // A spec the CRD should have rejected; the controller reports it when it sets status.renewalTime.
    return undefined;
  }
  if (at.getTime() > input.now.getTime()) return undefined;
  return violation(Renewing, `Renewing certificate as renewal was scheduled at ${at.toISOString()}`);
};

/** cert-manager's readiness chain: any violation means Ready=False with that reason. */
export const readinessPolicies: readonly Policy[] = [
  secretDoesNotExist,
  secretIsMissingData,
  secretPublicKeysDiffer,
  secretIssuerAnnotationsMismatch,
  secretCertificateNameAnnotationsMismatch,
  secretPrivateKeyMismatchesSpec,
  secretPublicKeyDiffersFromCurrentRequest,
  currentRequestMismatchesSpec,
  currentCertificateHasExpired,
];

/**
 * cert-manager's trigger chain: whatever makes a Certificate not Ready, then
 * the renewal time. Expired comes before Renewing, so an expired certificate
 * says so instead of "renewal was scheduled"; a certificate due for renewal
 * is still Ready.
 */
export const triggerPolicies: readonly Policy[] = [...readinessPolicies, currentCertificateNearingExpiry];

/** Runs a chain; the first violation wins. */
export function evaluate(chain: readonly Policy[], input: PolicyInput): Violation | undefined {
  for (const policy of chain) {
    const found = policy(input);
    if (found) return found;
  }
  return undefined;
}

/** Why the Certificate must be (re-)issued now, or undefined when it need not be. */
export function shouldReissue(input: PolicyInput): Violation | undefined {
  return evaluate(triggerPolicies, input);
}

/** Why the Certificate is not Ready, or undefined when it is. */
export function readinessReason(input: PolicyInput): Violation | undefined {
  return evaluate(readinessPolicies, input);
}

function currentCsr(request: CertificateRequest): ParsedCsr | string {
  try {
    return requestCsr(request);
  } catch (err) {
    return (err as Error).message;
  }
}

function issuedCertificateMismatchesSpec(input: PolicyInput): Violation | undefined {
  const { cert } = parsed(input);
  if (!cert) return violation(InvalidCertificate, 'Issuing certificate as Secret contains an invalid certificate');
  const spec = input.certificate.spec;
  const out: string[] = [];
  const expected = new Set([...(spec.dnsNames ?? []), ...(spec.commonName ? [spec.commonName] : [])]);
  const actual = new Set([...cert.dnsNames, ...(cert.commonName ? [cert.commonName] : [])]);
  if (!sameSet([...expected], [...actual])) {
    if ((spec.commonName && !actual.has(spec.commonName)) || (cert.commonName && !expected.has(cert.commonName))) out.push('spec.commonName');
    if (!(spec.dnsNames ?? []).every((n) => actual.has(n)) || !cert.dnsNames.every((n) => expected.has(n))) out.push('spec.dnsNames');
  }
  if (!sameIps(cert.ipAddresses, spec.ipAddresses)) out.push('spec.ipAddresses');
  if (!sameSet(cert.uris, spec.uris)) out.push('spec.uris');
  if (out.length === 0) return undefined;
  return violation(SecretMismatch, `Issuing certificate as Existing issued Secret is not up to date for spec: [${out.join(' ')}]`);
}
