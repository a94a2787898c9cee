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
import { CN_OID, isEmptyName, sanExtension, sansFromExtensions, subjectFieldsOf, subjectName, type SubjectAltNames, type SubjectFields } from './names.ts';
import { memoize } from './memo.ts';
import { pemEncode, soleBlockDer } from './pem.ts';
import { bitString, children, encoding, extensionsIn, integer, nameRdns, oid, oidText, sequence, Tag, tlv, whole, type RawExtension, type Tlv } from './der.ts';
import { nativeSignerFor, signatureAlgorithmByOid, verifyNatively } from './signer.ts';
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
  /** The request's DER parts, for signing and verification. */
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

  // Laid out here and signed by Node (der.ts says why); the name and extensions are @peculiar's DER.
  const key = parsePrivateKey(options.keyPem);
  const signer = nativeSignerFor(key, options.signatureAlgorithm);
  const extensionDers = [...extensions.map((e) => new Uint8Array(e.rawData)), ...(constraints ? [constraints] : [])];
  const attributes = extensionDers.length ? [sequence(oid(EXTENSION_REQUEST_OID), tlv(Tag.SET, sequence(...extensionDers)))] : [];
  const info = sequence(integer(0), new Uint8Array(name.toArrayBuffer()), createPublicKey(key).export({ type: 'spki', format: 'der' }), tlv(0xa0, ...attributes));
  return pemEncode('CERTIFICATE REQUEST', sequence(info, signer.algorithmIdentifier, bitString(signer.sign(info))));
}

const EXTENSION_REQUEST_OID = '1.2.840.113549.1.9.14';

/** A CSR's parts as DER: what signing copies and what proves possession. */
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
  /** The requested extensions, in order. */
  extensions: RawExtension[];
  /** The whole request, for the library's verifier when the algorithm is not one of ours. */
  request: Uint8Array;
}

/**
 * CertificationRequest { CertificationRequestInfo { version, subject, subjectPKInfo, [0]
 * attributes }, signatureAlgorithm, signature }, read with der.ts: decoding it with @peculiar was
 * about 2 ms of CPU per request on the bench, paid by the signer and by the re-issue check alike.
 */
function readCsrDer(der: Uint8Array): { parts: CsrDer; subject: Array<Array<{ oid: string; value: string }>> } {
  const [info, algorithm, signature] = children(der, whole(der, 'certificate request'));
  if (info?.tag !== Tag.SEQUENCE || algorithm?.tag !== Tag.SEQUENCE || signature?.tag !== Tag.BIT_STRING) throw new Error('not a CertificationRequest');
  const [version, subject, spki, attributes, ...more] = children(der, info);
  const [algorithmOid] = children(der, algorithm);
  if (version?.tag !== Tag.INTEGER || subject?.tag !== Tag.SEQUENCE || spki?.tag !== Tag.SEQUENCE || algorithmOid?.tag !== Tag.OID || (attributes && attributes.tag !== 0xa0) || more.length) {
    throw new Error('not a CertificationRequestInfo (version, subject, subjectPKInfo, [0] attributes)');
  }
  const bits = children(der, spki)[1];
  if (bits?.tag !== Tag.BIT_STRING) throw new Error('no subjectPublicKey');
  let extensions: RawExtension[] | undefined;
  for (const attribute of attributes ? children(der, attributes) : []) {
    // Go skips an attribute that is not a SEQUENCE, so an approver would not see its extensions.
    if (attribute.tag !== Tag.SEQUENCE) throw new Error(`the CSR holds an attribute that is not a SEQUENCE at byte ${attribute.header}`);
    const [type, values] = children(der, attribute);
    if (type?.tag !== Tag.OID || oidText(der, type) !== EXTENSION_REQUEST_OID) continue;
    // One extensionRequest with one list: with two, readers disagree on which extensions count.
    const lists = values?.tag === Tag.SET ? children(der, values) : [];
    if (extensions || lists.length !== 1 || !lists[0]) throw new Error('the CSR must carry one extensionRequest attribute with one list of extensions');
    extensions = extensionsIn(der, lists[0]);
  }
  return {
    parts: {
      info: encoding(der, info),
      subject: encoding(der, subject),
      spki: encoding(der, spki),
      publicKeyBits: der.subarray(bits.start + 1, bits.end),
      signatureAlgorithm: oidText(der, algorithmOid),
      signature: der.subarray(signature.start + 1, signature.end),
      extensions: extensions ?? [],
      request: der,
    },
    subject: strictSubject(der, subject),
  };
}

/**
 * Reads a CSR (PEM, or base64 of PEM as in `spec.request`). Does not check the
 * signature; see `verifyCsr`. Memoized by input: the result is frozen and shared.
 */
export const parseCsr: (pem: string) => ParsedCsr = memoize(parseCsrUncached, 512);

/** A CSR's subject, strictly read (der.ts), with at most one common name: Go reads the last, OpenSSL checks a host against each. */
function strictSubject(der: Uint8Array, subject: Tlv): Array<Array<{ oid: string; value: string }>> {
  const rdns = nameRdns(der, subject, true);
  if (rdns.flat().filter((a) => a.oid === CN_OID).length > 1) throw new Error('the subject holds more than one commonName');
  return rdns;
}

/** What openssl and Go write, and the label older tools (and Windows) put on a CSR. */
const CSR_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];

function parseCsrUncached(pem: string): ParsedCsr {
  const der = soleBlockDer(pem, CSR_LABELS, 'certificate request');
  return decodeDer('certificate request', () => {
    const { parts, subject } = readCsrDer(der);
    const extensions = parts.extensions;
    const bits = usageBitsFromExtensions(extensions);
    return {
      ...subjectFieldsOf(subject.flat()),
      ...sansFromExtensions(extensions),
      publicKeyFingerprint: spkiFingerprint(parts.spki),
      usages: bits.keyUsage === 0 && bits.extKeyUsages.length === 0 ? [] : usageStrings(bits),
      isCA: isCaByExtensions(extensions),
      subjectKey: subjectKey(subject),
      nameConstraints: nameConstraintsKey(extensions),
      signatureAlgorithm: signatureAlgorithmByOid(parts.signatureAlgorithm),
      der: parts,
    };
  });
}

/** Whether the CSR is signed by the key it carries (proof of possession). */
export async function verifyCsr(pem: string): Promise<boolean> {
  try {
    const csr = parseCsr(pem);
    const { signatureAlgorithm, info, spki, signature } = csr.der;
    // Natively for the algorithms certroute and cert-manager make; the library for any other.
    return verifyNatively(signatureAlgorithm, info, spki, signature) ?? (await new x509.Pkcs10CertificateRequest(Uint8Array.from(csr.der.request).buffer).verify());
  } catch {
    return false;
  }
}
