/**
 * The TLS-ALPN-01 validation certificate (RFC 8737 §3): self-signed, exactly one dNSName SAN (the
 * challenged name), and the critical id-pe-acmeIdentifier extension whose value is the SHA-256
 * digest of the key authorization. Made here, and read back here by the self-check, so the two
 * cannot disagree on the encoding.
 */
import { createHash, webcrypto } from 'node:crypto';
import { x509 } from './x509.ts';

/** id-pe-acmeIdentifier (RFC 8737 §6.1). */
export const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';
/** The one protocol the validation handshake negotiates (RFC 8737 §6.2). */
export const ACME_TLS_PROTOCOL = 'acme-tls/1';

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** The extension's value: `Authorization ::= OCTET STRING (SIZE (32))`, DER encoded. */
export function acmeIdentifierValue(keyAuthorization: string): Buffer {
  const digest = createHash('sha256').update(keyAuthorization).digest();
  return Buffer.concat([Buffer.from([0x04, digest.length]), digest]);
}

export interface ValidationCertificate {
  key: string;
  cert: string;
}

/** A fresh key and certificate for one challenge; valid from a minute ago for a week. */
export async function validationCertificate(name: string, keyAuthorization: string, now = new Date()): Promise<ValidationCertificate> {
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: webcrypto.getRandomValues(Buffer.alloc(16)).toString('hex').replace(/^[89a-f]/, '1'),
    name: [],
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 7 * 24 * 3600_000),
    signingAlgorithm: ALGORITHM,
    keys: keys as unknown as CryptoKeyPair,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }], true),
      new x509.Extension(ACME_IDENTIFIER_OID, true, new Uint8Array(acmeIdentifierValue(keyAuthorization))),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), cert: cert.toString('pem') };
}

/**
 * What is wrong with a certificate presented for `name` on an `acme-tls/1` handshake, as the CA
 * would judge it; undefined when it is the answer to `keyAuthorization`.
 */
export function validationCertificateProblem(der: Uint8Array, name: string, keyAuthorization: string): string | undefined {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(new Uint8Array(der));
  } catch {
    return 'is not a valid X.509 certificate';
  }
  const ext = cert.getExtension(ACME_IDENTIFIER_OID);
  if (!ext) return `has no acmeIdentifier extension (${ACME_IDENTIFIER_OID}): it is not a TLS-ALPN-01 answer`;
  if (!ext.critical) return 'carries the acmeIdentifier extension but not as critical';
  if (!Buffer.from(ext.value).equals(acmeIdentifierValue(keyAuthorization))) return 'carries the digest of another key authorization (a stale or foreign challenge)';
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  if (names.length !== 1 || names[0]?.type !== 'dns' || names[0].value.toLowerCase() !== name.toLowerCase()) {
    return `names ${names.map((n) => `${n.type}:${n.value}`).join(', ') || 'no subjectAltName'} instead of exactly dNSName ${name}`;
  }
  return undefined;
}
