/**
 * The facts of a Secret's leaf certificate that the policies read, decoded
 * by Node's native X.509 parser (OpenSSL) rather than @peculiar/x509.
 *
 * Why: @peculiar/x509 decodes ASN.1 in JavaScript. Profiled on the bench's
 * steady state (1,000 Secrets, controller start to idle), parsing the leaf
 * that way was 30 of the 39 s spent on the Secret list, about 3 ms a
 * certificate on the loaded 2-core machine; the native parser takes a few
 * per cent of that. Only the leaf is read: a Secret's chain says nothing a
 * policy asks about.
 *
 * The fields are those @peculiar/x509 gives in `parseCertificate` (same
 * serial form, same canonical IP form, the first CN, the same ARI
 * identifier); a unit test holds the two parsers to the same answers.
 */
import { X509Certificate } from 'node:crypto';
import type { CertificateInfo } from './cert.ts';
import { ariCertificateId } from './ari.ts';
import { spkiFingerprint } from './keys.ts';
import { CN_OID, ipKey, subjectFieldsOf } from './names.ts';
import { pemBlocks } from './pem.ts';
import { children, encoding, nameAttributes, oidText, readTlv, tbsFields, Tag, type Tlv } from './der.ts';

/** What the policies read of a leaf certificate. */
export type LeafFacts = Pick<CertificateInfo,
  'serialNumber' | 'notBefore' | 'notAfter' | 'commonName' | 'dnsNames' | 'ipAddresses' | 'uris' | 'emailAddresses' | 'isCA' | 'publicKeyFingerprint' | 'renewalInfoId'>;

/** Facts of the first certificate in `tls.crt`-style PEM; throws as parseCertificateChain does. */
export function leafFacts(pem: string): LeafFacts {
  return readLeaf(pem).facts;
}

/** What a Secret's annotations say of its leaf: the facts and every subject attribute cert-manager reads. */
export type LeafDetails = LeafFacts & Pick<CertificateInfo, 'subjectFields'>;

/** The leaf's facts with its subject's attributes; throws as `leafFacts` does. */
export function leafDetails(pem: string): LeafDetails {
  const { facts, attributes } = readLeaf(pem);
  return { ...facts, subjectFields: subjectFieldsOf(attributes) };
}

/** A serial number as `openssl x509 -serial` shows it: lower-case hex, no leading zero bytes. */
export function serialText(cert: { serialNumber: string }): string {
  return cert.serialNumber.toLowerCase().replace(/^(?:00)+(?=.)/, '');
}

function readLeaf(pem: string): { facts: LeafFacts; attributes: Array<{ oid: string; value: string }> } {
  const first = pemBlocks(pem, 'CERTIFICATE')[0];
  if (!first) throw new Error('the data holds no PEM CERTIFICATE block');
  let cert: X509Certificate;
  let fields: Tlv[];
  try {
    cert = new X509Certificate(first);
    fields = tbsFields(cert.raw).fields;
  } catch (cause) {
    throw new Error('the certificate is not valid DER', { cause });
  }
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, …
  const [, , , , subject, spki] = fields;
  const attributes = subject ? nameAttributes(cert.raw, subject) : [];
  const keyId = authorityKeyId(cert.raw, fields);
  const facts: LeafFacts = {
    serialNumber: serialText(cert),
    notBefore: cert.validFromDate,
    notAfter: cert.validToDate,
    commonName: attributes.find((a) => a.oid === CN_OID)?.value ?? '',
    ...subjectAltNames(cert.subjectAltName),
    isCA: cert.ca,
    // The SubjectPublicKeyInfo as the certificate holds it, as parseCertificate reads it (Node's
    // publicKey.export() re-encodes it, and cost more than the rest of this function).
    publicKeyFingerprint: spkiFingerprint(spki ? encoding(cert.raw, spki) : new Uint8Array()),
    ...(keyId ? { renewalInfoId: ariCertificateId(keyId, cert.serialNumber) } : {}),
  };
  return { facts, attributes };
}

const AKI_OID = '2.5.29.35';

/**
 * The keyIdentifier of the Authority Key Identifier extension, in hex (what ARI's certificate ID
 * is made of; Node's parser does not expose it): Extension { extnID, critical?, extnValue OCTET
 * STRING holding SEQUENCE { [0] keyIdentifier, … } }. Anything else reads as absent.
 */
function authorityKeyId(der: Buffer, fields: Tlv[]): string | undefined {
  const extensions = fields.find((f) => f.tag === 0xa3);
  const list = extensions && children(der, extensions)[0];
  for (const ext of list ? children(der, list) : []) {
    const parts = children(der, ext);
    if (parts[0]?.tag !== Tag.OID || oidText(der, parts[0]) !== AKI_OID) continue;
    const octets = parts.at(-1);
    const sequence = octets?.tag === Tag.OCTET_STRING ? readTlv(der, octets.start, octets.end) : undefined;
    const keyId = sequence?.tag === Tag.SEQUENCE ? readTlv(der, sequence.start, sequence.end) : undefined;
    return keyId?.tag === 0x80 ? der.subarray(keyId.start, keyId.end).toString('hex') : undefined;
  }
  return undefined;
}

/**
 * Node's SAN text: `DNS:a.test, IP Address:127.0.0.1, URI:…, email:…`, where a
 * value holding a comma, quote or other special character is a JSON string.
 */
const SAN_ENTRY = /(DNS|IP Address|URI|email|[A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;

function subjectAltNames(text: string | undefined): Pick<LeafFacts, 'dnsNames' | 'ipAddresses' | 'uris' | 'emailAddresses'> {
  const out = { dnsNames: [] as string[], ipAddresses: [] as string[], uris: [] as string[], emailAddresses: [] as string[] };
  for (const [, type, raw = ''] of (text ?? '').matchAll(SAN_ENTRY)) {
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    if (type === 'DNS') out.dnsNames.push(value);
    else if (type === 'IP Address') out.ipAddresses.push(ipKey(value));
    else if (type === 'URI') out.uris.push(value);
    else if (type === 'email') out.emailAddresses.push(value);
  }
  return out;
}
