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
 * serial form, same canonical IP form, the first CN); a unit test holds the
 * two parsers to the same answers.
 */
import { X509Certificate } from 'node:crypto';
import type { CertificateInfo } from './cert.ts';
import { spkiFingerprint } from './keys.ts';
import { ipKey } from './names.ts';
import { pemBlocks } from './pem.ts';

/** What the policies read of a leaf certificate. */
export type LeafFacts = Pick<CertificateInfo,
  'serialNumber' | 'notBefore' | 'notAfter' | 'commonName' | 'dnsNames' | 'ipAddresses' | 'uris' | 'emailAddresses' | 'isCA' | 'publicKeyFingerprint'>;

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
  return {
    serialNumber: cert.serialNumber.toLowerCase().replace(/^(?:00)+(?=.)/, ''),
    notBefore: cert.validFromDate,
    notAfter: cert.validToDate,
    commonName: firstValue(cert.toLegacyObject().subject?.CN),
    ...subjectAltNames(cert.subjectAltName),
    isCA: cert.ca,
    publicKeyFingerprint: spkiFingerprint(cert.publicKey.export({ type: 'spki', format: 'der' })),
  };
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
