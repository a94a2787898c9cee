/**
 * Reading issued certificates and guarding the Secret they go into.
 *
 * Traefik serves whatever is in the Secret the moment it changes, so a bad
 * write is an outage: `validateForSecret` is the gate every Secret update goes
 * through, and it refuses a certificate that does not match its key or is
 * already expired. The old certificate then keeps serving.
 */
import { X509Certificate as NodeCertificate } from 'node:crypto';
import { ariCertificateId } from './ari.ts';
import { parsePrivateKey, publicKeyFingerprint, spkiFingerprint } from './keys.ts';
import { sansFromExtensions, subjectFields, type SubjectFields } from './names.ts';
import { memoize } from './memo.ts';
import { leafFacts, serialText, type LeafFacts } from './leaf-facts.ts';
import { pemBlocks } from './pem.ts';
import { usageBitsFromExtensions, usageStrings } from './usages.ts';
import { decodeDer, isCaByExtensions, rawExtension, x509 } from './x509.ts';

export interface CertificateInfo {
  /** Lower-case hex without leading zero padding, as `openssl x509 -serial` shows it. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  uris: string[];
  emailAddresses: string[];
  organizations: string[];
  /** Every subject attribute cert-manager reads, for the Secret's annotations. */
  subjectFields: SubjectFields;
  /** Distinguished names, attributes in certificate order ("O=certroute, CN=Test CA"). */
  subject: string;
  issuer: string;
  isCA: boolean;
  usages: string[];
  publicKeyFingerprint: string;
  /** The ARI certificate identifier (RFC 9773 §4.1); undefined without an Authority Key Identifier. */
  renewalInfoId?: string;
  /** This certificate alone, PEM. */
  pem: string;
}

export interface CertificateChain {
  leaf: CertificateInfo;
  /** Every certificate in the order given, leaf first. */
  chain: CertificateInfo[];
}

/** Parses one PEM certificate. Memoized by PEM: the result is frozen and shared. */
export const parseCertificate: (pem: string) => CertificateInfo = memoize(parseCertificateUncached, 512);

function parseCertificateUncached(pem: string): CertificateInfo {
  const cert = decodeDer('certificate', () => new x509.X509Certificate(pem));
  const extensions = cert.extensions.map(rawExtension);
  const names = subjectFields(cert.subjectName);
  return {
    serialNumber: serialText(cert),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    commonName: names.commonName,
    organizations: names.organizations,
    subjectFields: names,
    ...sansFromExtensions(extensions),
    subject: cert.subject,
    issuer: cert.issuer,
    isCA: isCaByExtensions(extensions),
    usages: usageStrings(usageBitsFromExtensions(extensions)),
    publicKeyFingerprint: spkiFingerprint(cert.publicKey.rawData),
    ...renewalInfoIdOf(cert),
    pem: cert.toString('pem') + '\n',
  };
}

function renewalInfoIdOf(cert: x509.X509Certificate): Pick<CertificateInfo, 'renewalInfoId'> {
  const keyId = cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  return keyId ? { renewalInfoId: ariCertificateId(keyId, cert.serialNumber) } : {};
}

/**
 * Parses `tls.crt`-style PEM (or base64 of it): leaf first, then the chain.
 * Throws when there is no certificate, since an empty chain cannot serve TLS.
 */
export function parseCertificateChain(pem: string): CertificateChain {
  const blocks = pemBlocks(pem, 'CERTIFICATE');
  const chain = blocks.map(parseCertificate);
  const leaf = chain[0];
  if (!leaf) throw new Error('the data holds no PEM CERTIFICATE block');
  return { leaf, chain };
}

/** Whether the leaf certificate carries the public half of the private key. */
export function certificateMatchesKey(certPem: string, keyPem: string): boolean {
  try {
    return parseCertificateChain(certPem).leaf.publicKeyFingerprint === publicKeyFingerprint(parsePrivateKey(keyPem));
  } catch {
    return false;
  }
}

/**
 * Checks a certificate and key before they are written to a Secret. Returns a
 * message saying what is wrong, or undefined when the pair is safe to serve:
 * both parse, the leaf matches the key, the leaf has not expired, and each
 * certificate in the chain was issued by the next (so Traefik does not serve
 * an unrelated intermediate). A notBefore slightly in the future is allowed,
 * since the issuer's clock may run ahead of ours.
 */
export function validateForSecret(certPem: string, keyPem: string, now: Date): string | undefined {
  // Node's native parser: this runs once per issuance, and decoding in JavaScript cost more
  // than the rest of storing the Secret (see der.ts).
  let leaf: LeafFacts;
  let chain: NodeCertificate[];
  try {
    leaf = leafFacts(certPem);
    chain = pemBlocks(certPem, 'CERTIFICATE').map((pem) => new NodeCertificate(pem));
  } catch (err) {
    return `the certificate cannot be parsed: ${(err as Error).message}`;
  }
  let keyFingerprint: string;
  try {
    keyFingerprint = publicKeyFingerprint(parsePrivateKey(keyPem));
  } catch (err) {
    return `the private key cannot be parsed: ${(err as Error).message}`;
  }
  if (leaf.publicKeyFingerprint !== keyFingerprint) {
    return `the certificate (serial ${leaf.serialNumber}) does not match the private key`;
  }
  if (now.getTime() >= leaf.notAfter.getTime()) {
    return `the certificate (serial ${leaf.serialNumber}) expired at ${leaf.notAfter.toISOString()}`;
  }
  return chainOrderError(chain);
}

function chainOrderError(chain: readonly NodeCertificate[]): string | undefined {
  for (let i = 0; i + 1 < chain.length; i++) {
    const [child, parent] = [chain[i], chain[i + 1]];
    if (!child || !parent) break;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      return `certificate ${i + 1} in the chain (serial ${serialText(child)}) was not issued by the one after it`;
    }
  }
  return undefined;
}
