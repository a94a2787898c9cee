/**
 * Certificate signing requests, built and read the way cert-manager does.
 *
 * The CSR is the record of what was asked for: the RequestChanged policy
 * compares it with the Certificate spec to decide whether a re-issue is due,
 * and the SelfSigned and CA signers copy names and usages from it. So the CSR
 * carries the usages (key usage and EKU extensions, as cert-manager's
 * `encodeUsagesInRequest` default does) and, for a CA, basic constraints.
 */
import { createPublicKey } from 'node:crypto';
import type { CertificateSpec, NameConstraints, OtherName, SignatureAlgorithm } from '../api/types.ts';
import { parsePrivateKey, spkiFingerprint } from './keys.ts';
import { literalSubjectName, subjectKey } from './literal-subject.ts';
import { nameConstraintsExtension, nameConstraintsKey } from './name-constraints.ts';
import { isEmptyName, sanExtension, sansFromExtensions, subjectFields, subjectName, type SubjectAltNames, type SubjectFields } from './names.ts';
import { memoize } from './memo.ts';
import { pemBlocks, pemEncode } from './pem.ts';
import { bitString, children, encoding, integer, oid, oidText, readTlv, sequence, Tag, tlv } from './der.ts';
import { nativeSignerFor, signatureAlgorithmName, verifyNatively } from './signer.ts';
import { usageBits, usageBitsFromExtensions, usageExtensions, usageStrings } from './usages.ts';
import { decodeDer, isCaByExtensions, x509 } from './x509.ts';

export interface CsrOptions {
  /** PEM private key whose public half the CSR carries and which signs it. */
  keyPem: string;
  commonName?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
  emailAddresses?: string[];
  otherNames?: OtherName[];
  /** cert-manager usage strings; empty or absent means the defaults. */
  usages?: string[];
  isCA?: boolean;
  subject?: CertificateSpec['subject'];
  /** RFC 4514 subject; replaces commonName and subject. */
  literalSubject?: string;
  /** The algorithm the CSR is signed with; SelfSigned and CA issuers sign the certificate with it. */
  signatureAlgorithm?: SignatureAlgorithm;
  nameConstraints?: NameConstraints;
  /** false leaves the key usage and EKU extensions out of the CSR. */
  encodeUsagesInRequest?: boolean;
}

export interface ParsedCsr extends SubjectAltNames, SubjectFields {
  publicKeyFingerprint: string;
  /** Canonical usage strings from the CSR's extensions; empty when it has none. */
  usages: string[];
  /** True when the CSR asks for basic constraints cA=TRUE. */
  isCA: boolean;
  /** The subject's RDNs in order, as comparable text (see literal-subject.ts). */
  subjectKey: string;
  /** The name constraints asked for, as comparable text; '' for none. */
  nameConstraints: string;
  /** The algorithm the CSR is signed with, by cert-manager's name. */
  signatureAlgorithm?: SignatureAlgorithm;
  /** The parsed request, for signers that copy its subject and key. */
  request: x509.Pkcs10CertificateRequest;
  /** The same request's DER parts, for native signing and verification. */
  der: CsrDer;
}

/**
 * Builds and signs a PEM CSR. Throws when no identity at all is requested,
 * because no issuer can sign such a request and the error is easier to read
 * here than in an ACME finalize response.
 */
export async function createCsr(options: CsrOptions): Promise<string> {
  const { commonName, dnsNames = [], ipAddresses = [], uris = [], emailAddresses = [], otherNames = [] } = options;
  if (!commonName && !options.literalSubject && dnsNames.length === 0 && ipAddresses.length === 0 && uris.length === 0 && emailAddresses.length === 0 && otherNames.length === 0) {
    throw new Error('the certificate names no commonName, literalSubject, dnsNames, ipAddresses, uris, emailAddresses or otherNames: set at least one');
  }
  const name = options.literalSubject ? literalSubjectName(options.literalSubject) : subjectName({ ...options.subject, commonName });
  const extensions: x509.Extension[] = [];
  const san = sanExtension({ dnsNames, ipAddresses, uris, emailAddresses, otherNames }, isEmptyName(name));
  if (san) extensions.push(san);
  if (options.encodeUsagesInRequest !== false) extensions.push(...usageExtensions(usageBits(options.usages, options.isCA)));
  if (options.isCA) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
  const constraints = nameConstraintsExtension(options.nameConstraints);
  if (constraints) extensions.push(constraints);

  // Laid out here and signed by Node (der.ts says why); the name and extensions are @peculiar's DER.
  const key = parsePrivateKey(options.keyPem);
  const signer = nativeSignerFor(key, options.signatureAlgorithm);
  const attributes = extensions.length ? [sequence(oid(EXTENSION_REQUEST_OID), tlv(Tag.SET, sequence(...extensions.map((e) => new Uint8Array(e.rawData)))))] : [];
  const info = sequence(integer(0), new Uint8Array(name.toArrayBuffer()), createPublicKey(key).export({ type: 'spki', format: 'der' }), tlv(0xa0, ...attributes));
  return pemEncode('CERTIFICATE REQUEST', sequence(info, signer.algorithmIdentifier, bitString(signer.sign(info))));
}

const EXTENSION_REQUEST_OID = '1.2.840.113549.1.9.14';

/** A CSR's parts as DER, read natively: what signing copies and what proves possession. */
export interface CsrDer {
  /** CertificationRequestInfo, the signed bytes. */
  info: Uint8Array;
  subject: Uint8Array;
  /** SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** The subjectPublicKey bits (what a key identifier is a hash of). */
  publicKeyBits: Uint8Array;
  signatureAlgorithm: string;
  signature: Uint8Array;
  /** Each requested extension, whole, by OID, in order. */
  extensions: Array<{ oid: string; der: Uint8Array }>;
}

function readCsrDer(der: Uint8Array): CsrDer {
  const outer = readTlv(der, 0);
  const [info, algorithm, signature] = outer ? children(der, outer) : [];
  if (!info || !algorithm || signature?.tag !== Tag.BIT_STRING) throw new Error('not a CertificationRequest');
  const [, subject, spki, attributes] = children(der, info);
  const [algorithmOid] = children(der, algorithm);
  if (!subject || spki?.tag !== Tag.SEQUENCE || algorithmOid?.tag !== Tag.OID) throw new Error('not a CertificationRequestInfo');
  const bits = children(der, spki)[1];
  const extensions: CsrDer['extensions'] = [];
  for (const attribute of attributes?.tag === 0xa0 ? children(der, attributes) : []) {
    const [type, values] = children(der, attribute);
    if (type?.tag !== Tag.OID || oidText(der, type) !== EXTENSION_REQUEST_OID || !values) continue;
    const list = children(der, values)[0];
    for (const ext of list ? children(der, list) : []) {
      const extOid = children(der, ext)[0];
      if (extOid?.tag === Tag.OID) extensions.push({ oid: oidText(der, extOid), der: encoding(der, ext) });
    }
  }
  return {
    info: encoding(der, info),
    subject: encoding(der, subject),
    spki: encoding(der, spki),
    publicKeyBits: bits?.tag === Tag.BIT_STRING ? der.subarray(bits.start + 1, bits.end) : new Uint8Array(),
    signatureAlgorithm: oidText(der, algorithmOid),
    signature: der.subarray(signature.start + 1, signature.end),
    extensions,
  };
}

/**
 * Reads a CSR (PEM, or base64 of PEM as in `spec.request`). Does not check the
 * signature; see `verifyCsr`, which is async because WebCrypto is. Memoized by
 * input: the result is frozen and shared.
 */
export const parseCsr: (pem: string) => ParsedCsr = memoize(parseCsrUncached, 512);

function parseCsrUncached(pem: string): ParsedCsr {
  const block = pemBlocks(pem, 'CERTIFICATE REQUEST')[0];
  if (!block) throw new Error('the data holds no PEM CERTIFICATE REQUEST block');
  const request = decodeDer('certificate request', () => new x509.Pkcs10CertificateRequest(block));
  const extensions = request.extensions;
  const bits = usageBitsFromExtensions(extensions);
  return {
    ...subjectFields(request.subjectName),
    ...sansFromExtensions(extensions),
    publicKeyFingerprint: spkiFingerprint(request.publicKey.rawData),
    usages: bits.keyUsage === 0 && bits.extKeyUsages.length === 0 ? [] : usageStrings(bits),
    isCA: isCaByExtensions(extensions),
    subjectKey: subjectKey(request.subjectName),
    nameConstraints: nameConstraintsKey(extensions),
    signatureAlgorithm: signatureAlgorithmName(request.signatureAlgorithm),
    request,
    der: decodeDer('certificate request', () => readCsrDer(new Uint8Array(request.rawData))),
  };
}

/** Whether the CSR is signed by the key it carries (proof of possession). */
export async function verifyCsr(pem: string): Promise<boolean> {
  try {
    const csr = parseCsr(pem);
    const { signatureAlgorithm, info, spki, signature } = csr.der;
    // Natively for the algorithms certroute and cert-manager make; the library for any other.
    return verifyNatively(signatureAlgorithm, info, spki, signature) ?? (await csr.request.verify());
  } catch {
    return false;
  }
}
