/**
 * cert-manager's subject and extension fields, from the CSR to the signed certificate, read back
 * with openssl (independently of the library that built them): emailAddresses, otherNames,
 * literalSubject, the full subject, signatureAlgorithm, nameConstraints, and the CA issuer's
 * CRL distribution points, OCSP servers and issuing certificate URLs. Also: the re-issue policy
 * notices a change to each of them, and a request cert-manager made is not seen as changed.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import type { CertificateRequest, CertificateSpec } from '../../src/api/types.ts';
import { encodeB64 } from '../../src/base/objects.ts';
import { createCsr, parseCsr, type CsrOptions } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { literalSubjectKey, parseLiteralSubject } from '../../src/pki/literal-subject.ts';
import { requestMismatches } from '../../src/pki/request-match.ts';
import { signCsr, type SignOptions } from '../../src/pki/sign.ts';
import { buildSecret } from '../../src/controller/issuing.ts';
import { certificate, withSpec } from '../helpers/builders.ts';

const DAY = 86_400_000;

const text = (pem: string): string => execFileSync('openssl', ['x509', '-noout', '-text', '-nameopt', 'RFC2253'], { input: pem }).toString();

async function selfSignedWith(options: Omit<CsrOptions, 'keyPem'>, key: Parameters<typeof generatePrivateKey>[0] = {}, sign: Partial<SignOptions> = {}): Promise<{ pem: string; keyPem: string; csrPem: string }> {
  const keyPem = await generatePrivateKey(key);
  const csrPem = await createCsr({ keyPem, ...options });
  const signed = await signCsr({ csrPem, durationMs: DAY, selfSignKeyPem: keyPem, isCA: options.isCA, ...sign });
  return { pem: signed.certificatePem, keyPem, csrPem };
}

function requestFor(csrPem: string, spec: Partial<CertificateSpec>): CertificateRequest {
  return { metadata: { name: 'r' }, spec: { request: encodeB64(csrPem), issuerRef: { name: 'i', kind: 'Issuer', group: 'cert-manager.io' }, ...(spec.isCA ? { isCA: true } : {}) } };
}

function specOf(spec: Partial<CertificateSpec>): CertificateSpec {
  return { secretName: 's', issuerRef: { name: 'i' }, ...spec };
}

test('emailAddresses become rfc822Name SANs', async (t) => {
  const { pem } = await selfSignedWith({ emailAddresses: ['alice@example.com'], dnsNames: ['a.example.com'] });
  t.regex(text(pem), /DNS:a\.example\.com, email:alice@example\.com/);
});

test('an otherName is encoded as cert-manager does: the OID, then [0] EXPLICIT UTF8String, which openssl shows as a UPN', async (t) => {
  const { pem } = await selfSignedWith({ otherNames: [{ oid: '1.3.6.1.4.1.311.20.2.3', utf8Value: 'upn@example.local' }, { oid: '1.2.3.4', utf8Value: 'other' }] });
  const out = text(pem);
  t.regex(out, /othername: UPN::upn@example\.local/);
  t.regex(out, /othername: 1\.2\.3\.4::other/);
});

test('a literalSubject keeps its order: CN=foo,DC=corp,DC=example,DC=com reads back the same, DC=com first in the DER', async (t) => {
  const { pem } = await selfSignedWith({ literalSubject: 'CN=foo,DC=corp,DC=example,DC=com' });
  t.regex(text(pem), /Subject: CN=foo,DC=corp,DC=example,DC=com\n/);
  t.is(new X509Certificate(pem).subject.split('\n')[0], 'DC=com', 'the last RDN of the string is the first of the sequence');
});

test('a literalSubject with escapes, a multi-valued RDN, UID and a dotted OID parses as RFC 4514 says', (t) => {
  t.deepEqual(parseLiteralSubject('CN=Doe\\, John+UID=jdoe,O=Acme \\E2\\82\\AC,2.5.4.11=#0c03616263'), [
    [{ oid: '2.5.4.11', value: 'abc' }],
    [{ oid: '2.5.4.10', value: 'Acme €' }],
    [{ oid: '2.5.4.3', value: 'Doe, John' }, { oid: '0.9.2342.19200300.100.1.1', value: 'jdoe' }],
  ]);
  t.throws(() => parseLiteralSubject('CN=a,FOO=b'), { message: /the attribute type "FOO"/ });
  t.throws(() => parseLiteralSubject('CN=a,O'), { message: /without "="/ });
});

test('every subject field reaches the certificate, in the order Go writes them', async (t) => {
  const { pem } = await selfSignedWith({
    commonName: 'app', subject: { countries: ['GB'], provinces: ['London'], localities: ['Westminster'], streetAddresses: ['1 Road'], postalCodes: ['SW1'], organizations: ['Acme'], organizationalUnits: ['Web'], serialNumber: '1234' },
  });
  t.regex(text(pem), /Subject: serialNumber=1234,CN=app,OU=Web,O=Acme,postalCode=SW1,street=1 Road,L=Westminster,ST=London,C=GB\n/);
});

for (const [name, key, shown] of [
  ['SHA512WithRSA', { algorithm: 'RSA' }, 'sha512WithRSAEncryption'],
  ['SHA384WithRSA', { algorithm: 'RSA' }, 'sha384WithRSAEncryption'],
  ['ECDSAWithSHA512', { algorithm: 'ECDSA' }, 'ecdsa-with-SHA512'],
  ['PureEd25519', { algorithm: 'Ed25519' }, 'ED25519'],
] as const) {
  test(`signatureAlgorithm ${name} signs both the CSR and the self-signed certificate with ${shown}`, async (t) => {
    const { pem, csrPem } = await selfSignedWith({ dnsNames: ['a.test'], signatureAlgorithm: name }, key);
    t.regex(text(pem), new RegExp(`Signature Algorithm: ${shown}`));
    t.is(parseCsr(csrPem).signatureAlgorithm, name);
  });
}

test('a CA issuer signs with the requested algorithm when its key is of that type, and with its own default otherwise', async (t) => {
  const ca = await selfSignedWith({ commonName: 'ca', isCA: true }, { algorithm: 'RSA' });
  const issuer = { certPem: ca.pem, keyPem: ca.keyPem };
  const rsaKey = await generatePrivateKey({ algorithm: 'RSA' });
  const rsa = await signCsr({ csrPem: await createCsr({ keyPem: rsaKey, dnsNames: ['a.test'], signatureAlgorithm: 'SHA384WithRSA' }), durationMs: DAY, issuer });
  t.regex(text(rsa.certificatePem), /Signature Algorithm: sha384WithRSAEncryption/);
  const ecKey = await generatePrivateKey({ algorithm: 'ECDSA' });
  const ec = await signCsr({ csrPem: await createCsr({ keyPem: ecKey, dnsNames: ['a.test'], signatureAlgorithm: 'ECDSAWithSHA512' }), durationMs: DAY, issuer });
  t.regex(text(ec.certificatePem), /Signature Algorithm: sha256WithRSAEncryption/);
});

test('a signature algorithm for another type of key is refused, naming the field', async (t) => {
  const keyPem = await generatePrivateKey({ algorithm: 'ECDSA' });
  await t.throwsAsync(createCsr({ keyPem, dnsNames: ['a.test'], signatureAlgorithm: 'SHA256WithRSA' }), { message: /spec\.signatureAlgorithm SHA256WithRSA needs an RSA key, and the signing key is ECDSA/ });
});

test('nameConstraints reach a CA certificate, critical when asked, with DNS, IP, email and URI subtrees', async (t) => {
  const { pem } = await selfSignedWith({
    commonName: 'constrained ca', isCA: true,
    nameConstraints: { critical: true, permitted: { dnsDomains: ['example.com'], ipRanges: ['10.0.0.0/8'], emailAddresses: ['example.com'], uriDomains: ['.example.com'] }, excluded: { dnsDomains: ['bad.example.com'], ipRanges: ['2001:db8::/32'] } },
  });
  const out = text(pem);
  t.regex(out, /X509v3 Name Constraints: critical\n\s+Permitted:\n\s+DNS:example\.com\n\s+IP:10\.0\.0\.0\/255\.0\.0\.0\n\s+email:example\.com\n\s+URI:\.example\.com\n\s+Excluded:\n\s+DNS:bad\.example\.com\n\s+IP:2001:DB8:0:0:0:0:0:0\/FFFF:FFFF:0:0:0:0:0:0/);
});

test('a CA issuer puts its CRL distribution points, OCSP servers and issuing certificate URLs into what it signs', async (t) => {
  const ca = await selfSignedWith({ commonName: 'ca', isCA: true });
  const keyPem = await generatePrivateKey({});
  const signed = await signCsr({
    csrPem: await createCsr({ keyPem, dnsNames: ['a.test'] }), durationMs: DAY, issuer: { certPem: ca.pem, keyPem: ca.keyPem },
    crlDistributionPoints: ['http://crl.example.com/ca.crl'], ocspServers: ['http://ocsp.example.com'], issuingCertificateURLs: ['http://ca.example.com/ca.crt'],
  });
  const out = text(signed.certificatePem);
  t.regex(out, /X509v3 CRL Distribution Points:\s+Full Name:\s+URI:http:\/\/crl\.example\.com\/ca\.crl/);
  t.regex(out, /Authority Information Access:\s+OCSP - URI:http:\/\/ocsp\.example\.com\s+CA Issuers - URI:http:\/\/ca\.example\.com\/ca\.crt/);
});

// The re-issue policy: a change to any of the new fields is a mismatch, named as cert-manager names it.
const base: Partial<CertificateSpec> = {
  dnsNames: ['a.test'], emailAddresses: ['a@example.com'], otherNames: [{ oid: '1.3.6.1.4.1.311.20.2.3', utf8Value: 'u@x' }],
  subject: { localities: ['Paris'], serialNumber: '7' }, signatureAlgorithm: 'SHA384WithRSA',
};
const changes: Array<[string, Partial<CertificateSpec>]> = [
  ['spec.emailAddresses', { emailAddresses: ['b@example.com'] }],
  ['spec.otherNames', { otherNames: [{ oid: '1.3.6.1.4.1.311.20.2.3', utf8Value: 'v@x' }] }],
  ['spec.subject.localities', { subject: { localities: ['Lyon'], serialNumber: '7' } }],
  ['spec.subject.serialNumber', { subject: { localities: ['Paris'], serialNumber: '8' } }],
  ['spec.signatureAlgorithm', { signatureAlgorithm: 'SHA512WithRSA' }],
];

test('a request made for a spec matches that spec, and each changed field is named', async (t) => {
  const keyPem = await generatePrivateKey({});
  const csrPem = await createCsr({ keyPem, ...base });
  t.deepEqual(requestMismatches(requestFor(csrPem, base), specOf(base)), []);
  for (const [field, change] of changes) {
    t.deepEqual(requestMismatches(requestFor(csrPem, base), specOf({ ...base, ...change })), [field], field);
  }
  t.deepEqual(requestMismatches(requestFor(csrPem, base), specOf({ ...base, signatureAlgorithm: undefined })), [], 'dropping signatureAlgorithm asks for nothing new');
});

test('literalSubject and nameConstraints changes are noticed; the same subject spelt with other string types is not a change', async (t) => {
  const keyPem = await generatePrivateKey({});
  const literal = { literalSubject: 'CN=foo,DC=corp,DC=example,DC=com' };
  const csrPem = await createCsr({ keyPem, ...literal });
  t.deepEqual(requestMismatches(requestFor(csrPem, literal), specOf(literal)), []);
  t.deepEqual(requestMismatches(requestFor(csrPem, literal), specOf({ literalSubject: 'DC=com,DC=example,DC=corp,CN=foo' })), ['spec.literalSubject'], 'order matters');
  t.is(literalSubjectKey('CN=foo, DC=corp'), literalSubjectKey('CN=foo,DC=corp'), 'spaces after a comma are not part of a value');

  const ca = { commonName: 'ca', isCA: true, nameConstraints: { permitted: { dnsDomains: ['example.com'] } } };
  const caCsr = await createCsr({ keyPem, ...ca });
  t.deepEqual(requestMismatches(requestFor(caCsr, ca), specOf(ca)), []);
  t.deepEqual(requestMismatches(requestFor(caCsr, ca), specOf({ ...ca, nameConstraints: { permitted: { dnsDomains: ['example.org'] } } })), ['spec.nameConstraints']);
  t.deepEqual(requestMismatches(requestFor(caCsr, ca), specOf({ ...ca, nameConstraints: { critical: true, permitted: { dnsDomains: ['example.com'] } } })), ['spec.nameConstraints']);
});

test('the Secret carries cert-manager’s email-sans and subject-* annotations, CSV-quoted where a value has a comma', async (t) => {
  const { pem, keyPem } = await selfSignedWith({ commonName: 'app', emailAddresses: ['a@example.com', 'b@example.com'], subject: { organizations: ['Acme, Inc.'], localities: ['Paris'], serialNumber: '42' } });
  const built = buildSecret(certificate('c', withSpec({ secretName: 's', issuerRef: { name: 'i' } })), pem, keyPem, '', new Date());
  if ('error' in built) return t.fail(built.error);
  const a = built.secret.metadata.annotations ?? {};
  t.is(a['cert-manager.io/email-sans'], 'a@example.com,b@example.com');
  t.is(a['cert-manager.io/subject-organizations'], '"Acme, Inc."');
  t.is(a['cert-manager.io/subject-localities'], 'Paris');
  t.is(a['cert-manager.io/subject-serialnumber'], '42');
  t.false('cert-manager.io/subject-countries' in a, 'an empty subject field gets no annotation');
  t.is(a['cert-manager.io/alt-names'], '', 'alt-names is written even when empty, as cert-manager does');
});

test('a CSR that openssl wrote reads back field by field, and a CA certificate signed from it verifies with openssl', async (t) => {
  // Made by another implementation than the one that reads it (der.ts): IPv6, email, otherName-free
  // SANs, key usage bits beyond the first byte, EKUs, basic constraints, a multi-valued subject.
  const key = await generatePrivateKey({ algorithm: 'ECDSA', size: 384 });
  const config = [
    '[req]', 'distinguished_name = dn', 'req_extensions = ext', 'prompt = no', 'string_mask = utf8only',
    '[dn]', 'C = DE', 'O = Zweite', 'OU = Plattform', 'CN = openssl.example.com',
    '[ext]', 'subjectAltName = DNS:a.example.com, IP:2001:db8::7, IP:192.0.2.9, email:ops@example.com, URI:spiffe://x/y',
    'keyUsage = critical, digitalSignature, keyCertSign, cRLSign, decipherOnly', 'extendedKeyUsage = serverAuth, clientAuth',
    'basicConstraints = critical, CA:TRUE',
  ].join('\n');
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/certroute-csr-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(`${dir}/key.pem`, key);
  writeFileSync(`${dir}/req.cnf`, config);
  const pem = execFileSync('openssl', ['req', '-new', '-key', `${dir}/key.pem`, '-config', `${dir}/req.cnf`, '-sha384']).toString();
  const csr = parseCsr(pem);
  t.like(csr, {
    commonName: 'openssl.example.com', countries: ['DE'], organizations: ['Zweite'], organizationalUnits: ['Plattform'],
    dnsNames: ['a.example.com'], ipAddresses: ['2001:db8::7', '192.0.2.9'], emailAddresses: ['ops@example.com'], uris: ['spiffe://x/y'],
    isCA: true, signatureAlgorithm: 'ECDSAWithSHA384',
  });
  t.deepEqual([...csr.usages].sort(), ['cert sign', 'client auth', 'crl sign', 'decipher only', 'digital signature', 'server auth']);
  const signed = await signCsr({ csrPem: pem, durationMs: 3_600_000, selfSignKeyPem: key, isCA: true, usages: [...csr.usages] });
  writeFileSync(`${dir}/ca.pem`, signed.certificatePem);
  t.is(execFileSync('openssl', ['verify', '-CAfile', `${dir}/ca.pem`, `${dir}/ca.pem`]).toString().trim(), `${dir}/ca.pem: OK`);
  t.regex(text(signed.certificatePem), /Signature Algorithm: ecdsa-with-SHA384/);
});
