/**
 * Builders shared by the issuing path: the CertificateRequest for a
 * revision, and the Secret that will carry the issued chain. Kept pure so the
 * shape cert-manager users rely on (annotations, labels, keys) is unit-tested.
 */
import type { Certificate, CertificateRequest, Secret } from '../api/types.ts';
import { normalizeIssuerRef } from '../api/issuer-ref.ts';
import { CertificateRequestAnnotations as CRA, MANAGED_LABEL, Resources, SecretAnnotations as SA } from '../api/types.ts';
import { controllerReference, encodeB64 } from '../base/objects.ts';
import { validateForSecret } from '../pki/cert.ts';
import { leafDetails, type LeafDetails } from '../pki/leaf-facts.ts';
import { createCsr } from '../pki/csr.ts';
import { parsePrivateKey, publicKeyFingerprint } from '../pki/keys.ts';
import { formatOutputs } from '../pki/outputs.ts';
import { requestCsr, requestMismatches } from '../pki/request-match.ts';

export async function buildCertificateRequest(cert: Certificate, name: string, revision: number, keySecretName: string, keyPem: string): Promise<CertificateRequest> {
  const { spec } = cert;
  const csrPem = await createCsr({
    keyPem,
    commonName: spec.commonName,
    dnsNames: spec.dnsNames,
    ipAddresses: spec.ipAddresses,
    uris: spec.uris,
    emailAddresses: spec.emailAddresses,
    otherNames: spec.otherNames,
    usages: spec.usages,
    isCA: spec.isCA,
    subject: spec.subject,
    literalSubject: spec.literalSubject,
    signatureAlgorithm: spec.signatureAlgorithm,
    nameConstraints: spec.isCA ? spec.nameConstraints : undefined,
    encodeUsagesInRequest: spec.encodeUsagesInRequest,
  });
  return {
    metadata: {
      name,
      namespace: cert.metadata.namespace,
      labels: { ...(cert.metadata.labels ?? {}) },
      annotations: {
        [CRA.certificateName]: cert.metadata.name,
        [CRA.revision]: String(revision),
        [CRA.privateKeySecretName]: keySecretName,
      },
      ownerReferences: [controllerReference(Resources.certificates, cert)],
    },
    spec: {
      request: encodeB64(csrPem),
      issuerRef: normalizeIssuerRef(cert.spec.issuerRef),
      ...(cert.spec.duration ? { duration: cert.spec.duration } : {}),
      ...(cert.spec.usages ? { usages: [...cert.spec.usages] } : {}),
      ...(cert.spec.isCA ? { isCA: true } : {}),
    },
  };
}

/** RFC 4180 fields as Go's encoding/csv writes them: quoted only when they must be. */
function csvJoin(values: readonly string[]): string {
  return values.map((v) => (/[",\r\n]/.test(v) || /^\s/.test(v) ? `"${v.replaceAll('"', '""')}"` : v)).join(',');
}

/**
 * cert-manager's annotations describing the issued leaf: the common name and
 * the SAN lists always, the subject attributes and email SANs when present.
 */
function certificateDetailAnnotations(leaf: LeafDetails): Record<string, string> {
  const subject = leaf.subjectFields;
  const out: Record<string, string> = { [SA.commonName]: leaf.commonName ?? '' };
  if (subject.serialNumber) out[SA.subjectSerialNumber] = subject.serialNumber;
  const lists: Array<[string, readonly string[], boolean]> = [
    [SA.subjectOrganizations, subject.organizations, false],
    [SA.subjectOrganizationalUnits, subject.organizationalUnits, false],
    [SA.subjectCountries, subject.countries, false],
    [SA.subjectProvinces, subject.provinces, false],
    [SA.subjectLocalities, subject.localities, false],
    [SA.subjectPostalCodes, subject.postalCodes, false],
    [SA.subjectStreetAddresses, subject.streetAddresses, false],
    [SA.emailSans, leaf.emailAddresses, false],
    [SA.altNames, leaf.dnsNames, true],
    [SA.ipSans, leaf.ipAddresses, true],
    [SA.uriSans, leaf.uris, true],
  ];
  for (const [key, values, keepEmpty] of lists) {
    if (values.length > 0 || keepEmpty) out[key] = csvJoin(values);
  }
  return out;
}

/**
 * Whether an in-flight request can go on: it is for the next key, and asks
 * for what the spec asks for by the same rule the trigger policy applies
 * (`requestMismatches`), so an edit that re-spells the spec keeps it.
 */
export function requestMatchesSpec(cr: CertificateRequest, cert: Certificate, keyPem: string): boolean {
  try {
    const csr = requestCsr(cr);
    return csr.publicKeyFingerprint === publicKeyFingerprint(parsePrivateKey(keyPem)) && requestMismatches(cr, cert.spec, csr).length === 0;
  } catch {
    return false;
  }
}

export type BuiltSecret = { secret: Secret; leaf: LeafDetails; remove: string[] } | { error: string };

/**
 * The Secret exactly as cert-manager writes it, with the additional output
 * formats the spec asks for; `remove` lists the format keys it no longer
 * asks for, to be dropped from an existing Secret. Refuses (returns an error)
 * when the chain does not match the key or is already expired: a Secret is
 * never overwritten with something worse than what Traefik serves now.
 */
export function buildSecret(cert: Certificate, chainPem: string, keyPem: string, caPem: string, now: Date): BuiltSecret {
  const problem = validateForSecret(chainPem, keyPem, now);
  if (problem) return { error: problem };
  const leaf = leafDetails(chainPem);
  const ref = normalizeIssuerRef(cert.spec.issuerRef);
  const annotations: Record<string, string> = {
    ...(cert.spec.secretTemplate?.annotations ?? {}),
    [SA.certificateName]: cert.metadata.name,
    [SA.issuerName]: ref.name,
    [SA.issuerKind]: ref.kind,
    [SA.issuerGroup]: ref.group,
    ...certificateDetailAnnotations(leaf),
  };
  const outputs = formatOutputs(cert.spec, Buffer.from(keyPem), Buffer.from(chainPem));
  const data: Record<string, string> = { 'tls.crt': encodeB64(chainPem), 'tls.key': encodeB64(keyPem), ...outputs.data };
  if (caPem) data['ca.crt'] = encodeB64(caPem);
  return {
    leaf,
    remove: outputs.remove,
    secret: {
      metadata: {
        name: cert.spec.secretName,
        namespace: cert.metadata.namespace,
        labels: { ...(cert.spec.secretTemplate?.labels ?? {}), [MANAGED_LABEL]: 'true' },
        annotations,
      },
      type: 'kubernetes.io/tls',
      data,
    },
  };
}
