/**
 * Signing for the SelfSigned and CA issuers.
 *
 * Mirrors cert-manager's behaviour where clients can tell the difference: the
 * subject and SANs come from the CSR, usages from the CertificateRequest
 * (falling back to the CSR's, then to the defaults), `ca.crt` is the top of
 * the issuer's chain (the certificate itself when self-signed), and a leaf
 * never outlives the CA that signed it.
 */
import { createHash, randomBytes, X509Certificate as NodeCertificate } from 'node:crypto';
import { parseCertificateChain } from './cert.ts';
import { memoize } from './memo.ts';
import { parseCsr, verifyCsr } from './csr.ts';
import { bitString, encoding, explicit, extensionDer, integer, sequence, Tag, tbsFields, time, tlv, unsignedInteger } from './der.ts';
import { pemEncode } from './pem.ts';
import { parsePrivateKey, publicKeyFingerprint } from './keys.ts';
import { NAME_CONSTRAINTS_OID, nameConstraintsExtension, nameConstraintsOf } from './name-constraints.ts';
import { nativeSignerFor, signatureAlgorithmFits } from './signer.ts';
import { EXT_KEY_USAGE_OID, KEY_USAGE_OID, usageBits, usageExtensions, usagesEqual, usageStrings } from './usages.ts';
import { BASIC_CONSTRAINTS_OID, x509 } from './x509.ts';

export interface SignOptions {
  /** PEM CSR (or base64 of PEM, as in a CertificateRequest). */
  csrPem: string;
  /** Requested lifetime; a CA issuer caps it at its own expiry. */
  durationMs: number;
  /**
   * The CertificateRequest's usages; when empty cert-manager's defaults. Usages the CSR encodes
   * must be the same, or signing refuses.
   */
  usages?: string[];
  /**
   * The CertificateRequest's isCA; false when undefined. Basic constraints the CSR encodes must
   * say the same, or signing refuses: only the spec, which approvers read, makes a CA.
   */
  isCA?: boolean;
  /** CA issuer: the CA Secret's tls.crt (issuing certificate first) and tls.key. */
  issuer?: { certPem: string; keyPem: string };
  /** SelfSigned issuer: the private key whose public half is in the CSR. */
  selfSignKeyPem?: string;
  /** The issuer's distribution points, put into every certificate it signs (cert-manager's CA and SelfSigned fields). */
  crlDistributionPoints?: string[];
  /** CA issuer: OCSP responder URLs (authority information access). */
  ocspServers?: string[];
  /** CA issuer: where the issuing certificate can be fetched (authority information access). */
  issuingCertificateURLs?: string[];
  /** Injected clock; defaults to the current time. */
  now?: Date;
}

export interface SignedCertificate {
  /** The leaf followed by the issuer's intermediates: what goes in tls.crt. */
  certificatePem: string;
  /** What goes in ca.crt. */
  caPem: string;
}

const SAN_OID = '2.5.29.17';
const SKI_OID = '2.5.29.14';
const AKI_OID = '2.5.29.35';

/**
 * Signs a CSR. Throws with a message for the CertificateRequest's status when
 * the CSR is unreadable, its signature is bad, it asks for what the spec does
 * not state, or the self-sign key is not the CSR's key; throws a CaSecretError
 * when the CA's key, certificate or validity cannot sign.
 */
export async function signCsr(options: SignOptions): Promise<SignedCertificate> {
  const csr = parseCsr(options.csrPem);
  if (!(await verifyCsr(options.csrPem))) throw new Error('the CSR signature is invalid: it was not signed by the key it carries');
  const now = options.now ?? new Date();
  const signer = resolveSigner(options, csr.publicKeyFingerprint, now);

  // As cert-manager: the spec decides, and what the CSR encodes must agree with it.
  const isCA = options.isCA ?? false;
  const encodes = (oid: string) => csr.der.extensions.some((e) => e.oid === oid);
  if (encodes(BASIC_CONSTRAINTS_OID) && csr.isCA !== isCA) {
    throw new Error(`the CSR's basic constraints say cA=${csr.isCA} but spec.isCA is ${isCA}: set spec.isCA to ${csr.isCA}, or send a CSR whose basic constraints match`);
  }
  const usages = options.usages?.length ? options.usages : undefined;
  if ((encodes(KEY_USAGE_OID) || encodes(EXT_KEY_USAGE_OID)) && !usagesEqual(csr.usages, usages, isCA)) {
    throw new Error(`the CSR's key usages [${csr.usages.join(', ')}] are not spec.usages [${usageStrings(usageBits(usages, isCA)).join(', ')}]: list the CSR's usages in spec.usages, or send a CSR whose usages match`);
  }
  const ski = createHash('sha1').update(csr.der.publicKeyBits).digest();
  // A self-signed certificate is its own authority; a CA without an SKI gets no AKI, as a guessed one could mislead path building.
  const authorityKeyId = signer.chain ? signer.keyId : ski;
  const extensions: Uint8Array[] = [
    extensionDer(BASIC_CONSTRAINTS_OID, true, sequence(...(isCA ? [tlv(Tag.BOOLEAN, Buffer.from([0xff]))] : []))),
    ...usageExtensions(usageBits(usages, isCA)).map((e) => new Uint8Array(e.rawData)),
    extensionDer(SKI_OID, false, tlv(Tag.OCTET_STRING, ski)),
  ];
  if (authorityKeyId) extensions.push(extensionDer(AKI_OID, false, sequence(tlv(0x80, authorityKeyId))));
  // Names are the CSR's, byte for byte (parseCsr read them strictly). A CA's name constraints are
  // written anew from their strict reading, as cert-manager does: a mask with holes or a BER
  // encoding in the CSR never reaches the certificate.
  const san = csr.der.extensions.find((e) => e.oid === SAN_OID);
  if (san) extensions.push(san.der);
  const constraints = isCA ? csr.der.extensions.find((e) => e.oid === NAME_CONSTRAINTS_OID) : undefined;
  const rewritten = constraints ? nameConstraintsExtension(nameConstraintsOf(constraints)) : undefined;
  if (rewritten) extensions.push(rewritten);
  extensions.push(...issuerUrlExtensions(options).map((e) => new Uint8Array(e.rawData)));

  let notAfter = new Date(now.getTime() + options.durationMs);
  if (signer.notAfter && notAfter > signer.notAfter) notAfter = signer.notAfter;
  // The CSR's signature algorithm (spec.signatureAlgorithm) when the signing key can make it, as cert-manager does.
  const requested = csr.signatureAlgorithm && signatureAlgorithmFits(signer.key, csr.signatureAlgorithm) ? csr.signatureAlgorithm : undefined;
  // Laid out here and signed by Node (der.ts says why).
  const native = nativeSignerFor(signer.key, requested);
  const tbs = sequence(
    explicit(0, integer(2)),
    unsignedInteger(randomBytes(16)),
    native.algorithmIdentifier,
    signer.issuerName ?? csr.der.subject,
    sequence(time(now), time(notAfter)),
    csr.der.subject,
    csr.der.spki,
    explicit(3, sequence(...extensions)),
  );
  const leafPem = pemEncode('CERTIFICATE', sequence(tbs, native.algorithmIdentifier, bitString(native.sign(tbs))));
  if (!signer.chain) return { certificatePem: leafPem, caPem: leafPem };
  return { certificatePem: leafPem + (signer.intermediates ?? []).join(''), caPem: signer.chain[signer.chain.length - 1] ?? leafPem };
}

/** CRL distribution points and authority information access, as Go's x509 writes them for cert-manager. */
function issuerUrlExtensions(options: SignOptions): x509.Extension[] {
  const out: x509.Extension[] = [];
  if (options.crlDistributionPoints?.length) out.push(new x509.CRLDistributionPointsExtension(options.crlDistributionPoints));
  const ocsp = options.ocspServers ?? [];
  const issuers = options.issuingCertificateURLs ?? [];
  if (ocsp.length || issuers.length) out.push(new x509.AuthorityInfoAccessExtension({ ocsp, caIssuers: issuers }));
  return out;
}

interface ResolvedSigner {
  key: ReturnType<typeof parsePrivateKey>;
  /** The CA's subject, DER, exactly as its certificate holds it. */
  issuerName?: Uint8Array;
  keyId?: Buffer;
  notAfter?: Date;
  chain?: string[];
  /** The chain without self-signed certificates: what follows the leaf in tls.crt. */
  intermediates?: string[];
}

function resolveSigner(options: SignOptions, csrFingerprint: string, now: Date): ResolvedSigner {
  if (!options.issuer) {
    if (!options.selfSignKeyPem) throw new Error('signing needs either a CA issuer or the private key to self-sign with');
    const key = parsePrivateKey(options.selfSignKeyPem);
    if (publicKeyFingerprint(key) !== csrFingerprint) {
      throw new Error('the private key for self-signing does not match the public key in the CSR');
    }
    return { key };
  }
  let signer: ResolvedSigner;
  try {
    signer = caSigner(`${options.issuer.certPem}\0${options.issuer.keyPem}`);
  } catch (err) {
    throw new CaSecretError((err as Error).message, { cause: err });
  }
  if (now.getTime() >= signer.notAfter!.getTime()) throw new CaSecretError(`the CA certificate expired at ${signer.notAfter!.toISOString()}`);
  return signer;
}

/**
 * The CA Secret cannot sign (its key and certificate disagree, it is no CA, it expired): the
 * issuer's state, not the request's, and a Secret caught mid-rotation may be right a moment later.
 */
export class CaSecretError extends Error {}

/**
 * A CA Secret's tls.crt and tls.key (joined by a NUL) as a signer: parsed and checked once, not
 * again for every request the CA signs (ASN.1 in JavaScript, and a signature check per
 * certificate of the chain). A CA Secret that changes is a new key here.
 */
const caSigner = memoize((pair: string): ResolvedSigner => {
  const cut = pair.indexOf('\0');
  const chain = parseCertificateChain(pair.slice(0, cut)).chain;
  const ca = chain[0];
  if (!ca) throw new Error('the CA Secret holds no certificate in tls.crt');
  const key = parsePrivateKey(pair.slice(cut + 1));
  if (publicKeyFingerprint(key) !== ca.publicKeyFingerprint) {
    throw new Error("the CA Secret's tls.key does not match the first certificate in its tls.crt");
  }
  if (!ca.isCA) throw new Error(`the CA certificate (subject ${ca.subject}) is not a CA: it lacks basicConstraints cA=TRUE`);
  const parsed = new x509.X509Certificate(ca.pem);
  const caSki = parsed.extensions.find((e) => e.type === SKI_OID);
  const raw = new NodeCertificate(ca.pem).raw;
  const subject = tbsFields(raw).fields[4];
  if (!subject) throw new Error(`the CA certificate (subject ${ca.subject}) has no subject field`);
  const pems = chain.map((c) => c.pem);
  return {
    key,
    issuerName: encoding(raw, subject),
    keyId: caSki ? Buffer.from(new x509.SubjectKeyIdentifierExtension(caSki.rawData).keyId, 'hex') : undefined,
    notAfter: ca.notAfter,
    chain: pems,
    intermediates: pems.filter((pem) => !isSelfSigned(pem)),
  };
}, 32);

function isSelfSigned(pem: string): boolean {
  const cert = new NodeCertificate(pem);
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}
