/**
 * The Secret cache decodes leaf certificates with Node's native parser, the rest of certroute
 * with @peculiar/x509: for every field a policy reads, both must give the same answer, or a
 * certificate would look out of date to one path and be re-issued for ever.
 */
import test from 'ava';
import { webcrypto } from 'node:crypto';
import { parseCertificate } from '../../src/pki/cert.ts';
import { leafDetails, leafFacts, type LeafFacts } from '../../src/pki/leaf-facts.ts';
import { x509 } from '../../src/pki/x509.ts';

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

async function certificate(opts: { subject: string; serial: string; sans: x509.JsonGeneralNames; ca?: boolean; authorityKeyId?: string; critical?: boolean }): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: opts.serial,
    name: opts.subject,
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2026-04-01T12:34:56Z'),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.SubjectAlternativeNameExtension(opts.sans),
      new x509.BasicConstraintsExtension(opts.ca ?? false, undefined, true),
      ...(opts.authorityKeyId ? [new x509.AuthorityKeyIdentifierExtension(opts.authorityKeyId, opts.critical)] : []),
    ],
  });
  return cert.toString('pem');
}

const policyFields = (info: LeafFacts): LeafFacts => ({
  serialNumber: info.serialNumber, notBefore: info.notBefore, notAfter: info.notAfter, commonName: info.commonName,
  dnsNames: info.dnsNames, ipAddresses: info.ipAddresses, uris: info.uris, emailAddresses: info.emailAddresses,
  isCA: info.isCA, publicKeyFingerprint: info.publicKeyFingerprint,
  ...(info.renewalInfoId ? { renewalInfoId: info.renewalInfoId } : {}),
});

const cases: Array<[string, Parameters<typeof certificate>[0]]> = [
  ['a plain leaf with one DNS name', { subject: 'CN=web.example.com', serial: '0a1b2c', sans: [{ type: 'dns', value: 'web.example.com' }] }],
  ['a leaf with every kind of name, IPv6 and IPv4-mapped addresses included', {
    subject: 'O=certroute, CN=multi.example.com', serial: '7f',
    sans: [
      { type: 'dns', value: 'a.example.com' }, { type: 'dns', value: '*.b.example.com' },
      { type: 'ip', value: '192.0.2.7' }, { type: 'ip', value: '2001:db8::1' }, { type: 'ip', value: '::ffff:192.0.2.8' },
      { type: 'url', value: 'spiffe://cluster.local/ns/a/sa/b' }, { type: 'email', value: 'ops@example.com' },
    ],
  }],
  ['names holding commas, quotes and colons', {
    subject: 'CN=odd\\, name', serial: '00ff01',
    sans: [{ type: 'url', value: 'https://x.example.com/a,b?c="d"' }, { type: 'email', value: 'a,b@example.com' }, { type: 'dns', value: 'c.example.com' }],
  }],
  ['a leaf with an Authority Key Identifier (its ARI identifier)', { subject: 'CN=ari.example.com', serial: '8a01', sans: [{ type: 'dns', value: 'ari.example.com' }], authorityKeyId: '0123456789abcdef0123456789abcdef01234567' }],
  ['a leaf whose Authority Key Identifier is marked critical', { subject: 'CN=ari2.example.com', serial: '05', sans: [{ type: 'dns', value: 'ari2.example.com' }], authorityKeyId: 'aabbcc', critical: true }],
  ['a CA certificate without a common name', { subject: 'O=Only Org', serial: '01', sans: [{ type: 'dns', value: 'ca.example.com' }], ca: true }],
  ['a subject with every attribute cert-manager reads, repeated ones and non-ASCII text', {
    subject: 'C=DE, ST=Bayern, L=München, 2.5.4.9=Hauptstraße 1, 2.5.4.17=80331, O=Zweite, O=Erste, OU=Plattform, CN=fields.example.com, 2.5.4.5=4711',
    serial: '0100', sans: [{ type: 'dns', value: 'fields.example.com' }],
  }],
];

for (const [title, opts] of cases) {
  test(`native and @peculiar/x509 parsing agree on ${title}`, async (t) => {
    const pem = await certificate(opts);
    t.deepEqual(leafFacts(pem), policyFields(parseCertificate(pem)));
    // The Secret's annotations are written from the native reading too.
    t.deepEqual(leafDetails(pem).subjectFields, parseCertificate(pem).subjectFields);
  });
}

test('the subject attributes are read as they are, in order', async (t) => {
  const fields = leafDetails(await certificate(cases[6]![1])).subjectFields;
  t.deepEqual(fields, {
    commonName: 'fields.example.com', organizations: ['Zweite', 'Erste'], organizationalUnits: ['Plattform'], countries: ['DE'],
    localities: ['München'], provinces: ['Bayern'], streetAddresses: ['Hauptstraße 1'], postalCodes: ['80331'], serialNumber: '4711',
  });
});

test('the leaf is the first certificate of a chain', async (t) => {
  const leaf = await certificate(cases[0]![1]);
  const ca = await certificate(cases[5]![1]);
  t.is(leafFacts(leaf + ca).serialNumber, '0a1b2c');
});

test('PEM without a certificate, and a certificate that is not DER, are refused with a reason', (t) => {
  t.throws(() => leafFacts('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), { message: 'the data holds no PEM CERTIFICATE block' });
  t.throws(() => leafFacts('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), { message: 'the certificate is not valid DER' });
});

test('the ARI identifier is read from the Authority Key Identifier, and absent without one', async (t) => {
  t.is(leafFacts(await certificate(cases[3]![1])).renewalInfoId, 'ASNFZ4mrze8BI0VniavN7wEjRWc.AIoB');
  t.is(leafFacts(await certificate(cases[0]![1])).renewalInfoId, undefined);
});
