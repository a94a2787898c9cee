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
import { ipKey } from './names.ts';
import { pemBlocks } from './pem.ts';

/** What the policies read of a leaf certificate. */
export type LeafFacts = Pick<CertificateInfo,
  'serialNumber' | 'notBefore' | 'notAfter' | 'commonName' | 'dnsNames' | 'ipAddresses' | 'uris' | 'emailAddresses' | 'isCA' | 'publicKeyFingerprint' | 'renewalInfoId'>;

/** Facts of the first certificate in `tls.crt`-style PEM; throws as parseCertificateChain does. */
export function leafFacts(pem: string): LeafFacts {
  const first = pemBlocks(pem, 'CERTIFICATE')[0];
  if (!first) throw new Error('the data holds no PEM CERTIFICATE block');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(first);
  } catch (cause) {
    throw new Error('the certificate is not valid DER', { cause });
  }
  const keyId = authorityKeyId(cert.raw);
  return {
    serialNumber: cert.serialNumber.toLowerCase().replace(/^(?:00)+(?=.)/, ''),
    notBefore: cert.validFromDate,
    notAfter: cert.validToDate,
    commonName: firstValue(cert.toLegacyObject().subject?.CN),
    ...subjectAltNames(cert.subjectAltName),
    isCA: cert.ca,
    publicKeyFingerprint: spkiFingerprint(cert.publicKey.export({ type: 'spki', format: 'der' })),
    ...(keyId ? { renewalInfoId: ariCertificateId(keyId, cert.serialNumber) } : {}),
  };
}

/** The extension's OID, 2.5.29.35, as DER: OBJECT IDENTIFIER, length 3, 55 1D 23. */
const AKI_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);

/**
 * The keyIdentifier of the Authority Key Identifier extension, in hex (what
 * ARI's certificate ID is made of); Node's parser does not expose it. After
 * the OID: an optional `critical` BOOLEAN, then an OCTET STRING holding
 * SEQUENCE { [0] keyIdentifier, … }. Anything else reads as absent.
 */
function authorityKeyId(der: Buffer): string | undefined {
  let at = der.indexOf(AKI_OID);
  if (at < 0) return undefined;
  at += AKI_OID.length;
  if (der[at] === 0x01 && der[at + 1] === 0x01) at += 3;
  const octets = readTlv(der, at, 0x04);
  const sequence = octets && readTlv(der, octets.start, 0x30);
  const keyId = sequence && readTlv(der, sequence.start, 0x80);
  return keyId ? der.subarray(keyId.start, keyId.end).toString('hex') : undefined;
}

/** One DER tag-length-value at `at` with the expected tag: where its content starts and ends. */
function readTlv(der: Buffer, at: number, tag: number): { start: number; end: number } | undefined {
  if (der[at] !== tag) return undefined;
  const first = der[at + 1];
  if (first === undefined) return undefined;
  let length = first;
  let start = at + 2;
  if (first & 0x80) {
    const bytes = first & 0x7f;
    if (bytes === 0 || bytes > 3) return undefined;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[start + i] ?? 0);
    start += bytes;
  }
  return start + length <= der.length ? { start, end: start + length } : undefined;
}

function firstValue(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? '';
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
