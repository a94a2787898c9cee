/**
 * SelfSigned and CA signing, certificate parsing, and the gate that keeps a
 * bad certificate out of a Secret. Chains are checked with node:crypto's own
 * X509Certificate, independently of the library that built them.
 */
import test from 'ava';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { certificateMatchesKey, parseCertificateChain, validateForSecret } from '../../src/pki/cert.ts';
import { createCsr, type CsrOptions } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { encodeB64 } from '../../src/base/objects.ts';
import { signCsr, type SignOptions } from '../../src/pki/sign.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface Issued {
  keyPem: string;
  certificatePem: string;
  caPem: string;
}

/** A self-signed CA with its key. */
async function selfSignedCa(commonName = 'Test Root CA', durationMs = 365 * DAY, algorithm: 'RSA' | 'ECDSA' | 'Ed25519' = 'ECDSA'): Promise<Issued> {
  const keyPem = await generatePrivateKey({ algorithm });
  const csrPem = await createCsr({ keyPem, commonName, isCA: true });
  return { keyPem, ...(await signCsr({ csrPem, durationMs, selfSignKeyPem: keyPem, isCA: true })) };
}

/** A certificate issued by `ca` for the given names. */
async function issuedBy(ca: Issued, names: Omit<CsrOptions, 'keyPem'>, extra: Partial<SignOptions> = {}): Promise<Issued> {
  const keyPem = await generatePrivateKey({});
  const csrPem = await createCsr({ keyPem, ...names });
  return { keyPem, ...(await signCsr({ csrPem, durationMs: 90 * DAY, issuer: { certPem: ca.certificatePem, keyPem: ca.keyPem }, ...extra })) };
}

for (const algorithm of ['RSA', 'ECDSA', 'Ed25519'] as const) {
  test(`a self-signed ${algorithm} certificate verifies with its own key and is its own ca.crt`, async (t) => {
    const ca = await selfSignedCa('Self', DAY, algorithm);
    const cert = new X509Certificate(ca.certificatePem);
    t.true(cert.verify(cert.publicKey));
    t.true(cert.checkIssued(cert));
    t.true(cert.ca);
    t.is(ca.caPem, ca.certificatePem);
    t.true(cert.checkPrivateKey(createPrivateKey(ca.keyPem)));
  });
}

test('a certificate signed by a CA verifies against the CA and carries the CSR’s names', async (t) => {
  const ca = await selfSignedCa();
  const leaf = await issuedBy(ca, { commonName: 'a.test', dnsNames: ['a.test', 'b.test'], ipAddresses: ['10.1.2.3'], uris: ['spiffe://x/y'] });
  const cert = new X509Certificate(leaf.certificatePem);
  const caCert = new X509Certificate(ca.certificatePem);
  t.true(cert.verify(caCert.publicKey));
  t.true(cert.checkIssued(caCert));
  t.false(cert.ca);
  t.is(cert.subjectAltName, 'DNS:a.test, DNS:b.test, IP Address:10.1.2.3, URI:spiffe://x/y');
  t.is(leaf.caPem, ca.certificatePem);
  t.is(parseCertificateChain(leaf.certificatePem).chain.length, 1, 'a root CA is not repeated in tls.crt');
});

test('a certificate signed by an intermediate carries the intermediate in tls.crt and the root in ca.crt', async (t) => {
  const root = await selfSignedCa('Root');
  const intermediate = await issuedBy(root, { commonName: 'Intermediate', isCA: true }, { isCA: true });
  const issuerChain = { keyPem: intermediate.keyPem, certificatePem: intermediate.certificatePem + root.certificatePem, caPem: root.caPem };
  const leaf = await issuedBy(issuerChain, { dnsNames: ['a.test'] });
  const chain = parseCertificateChain(leaf.certificatePem).chain;
  t.deepEqual(chain.map((c) => c.commonName), ['', 'Intermediate']);
  t.is(leaf.caPem, root.certificatePem);
  t.is(validateForSecret(leaf.certificatePem, leaf.keyPem, new Date()), undefined);
  const [leafCert, interCert] = [new X509Certificate(chain[0]?.pem ?? ''), new X509Certificate(chain[1]?.pem ?? '')];
  t.true(leafCert.verify(interCert.publicKey));
  t.true(interCert.verify(new X509Certificate(root.certificatePem).publicKey));
});

test('a signed certificate has a fresh positive 128-bit serial and the requested validity', async (t) => {
  const now = new Date('2030-05-01T12:00:00Z');
  const ca = await selfSignedCa('Root', 3650 * DAY);
  const keyPem = await generatePrivateKey({ algorithm: 'ECDSA' });
  const csrPem = await createCsr({ keyPem, dnsNames: ['a.test'] });
  const sign = () => signCsr({ csrPem, durationMs: 2 * HOUR, issuer: { certPem: ca.certificatePem, keyPem: ca.keyPem }, now });
  const [a, b] = [parseCertificateChain((await sign()).certificatePem).leaf, parseCertificateChain((await sign()).certificatePem).leaf];
  t.not(a.serialNumber, b.serialNumber);
  for (const serial of [a.serialNumber, b.serialNumber]) {
    t.regex(serial, /^[0-9a-f]+$/i);
    const n = BigInt(`0x${serial}`);
    t.true(n > 0n && n < 1n << 128n, `serial ${serial} is positive and fits in 128 bits`);
    // A random 128-bit number is below 2^64 once in 2^64 draws: this is no counter or timestamp.
    t.true(n >= 1n << 64n, `serial ${serial} uses more than 64 bits`);
  }
  t.is(a.notBefore.toISOString(), now.toISOString());
  t.is(a.notAfter.toISOString(), '2030-05-01T14:00:00.000Z');
});

test('a certificate never outlives the CA that signed it', async (t) => {
  const ca = await selfSignedCa('Short-lived CA', DAY);
  const leaf = await issuedBy(ca, { dnsNames: ['a.test'] });
  t.is(parseCertificateChain(leaf.certificatePem).leaf.notAfter.getTime(), parseCertificateChain(ca.certificatePem).leaf.notAfter.getTime());
});

test('usages come from the request, else the defaults, whether or not the CSR encodes them; a CA also gets cert sign', async (t) => {
  const ca = await selfSignedCa();
  const fromRequest = await issuedBy(ca, { dnsNames: ['a.test'], usages: ['digital signature', 'client auth'] }, { usages: ['client auth', 'signing'] });
  const notEncoded = await issuedBy(ca, { dnsNames: ['a.test'], encodeUsagesInRequest: false }, { usages: ['digital signature', 'server auth'] });
  const defaults = await issuedBy(ca, { dnsNames: ['a.test'] });
  const asCa = await issuedBy(ca, { commonName: 'Sub CA', isCA: true }, { isCA: true });
  const usages = (i: Issued) => parseCertificateChain(i.certificatePem).leaf.usages;
  t.deepEqual(usages(fromRequest), ['digital signature', 'client auth']);
  t.deepEqual(usages(notEncoded), ['digital signature', 'server auth']);
  t.deepEqual(usages(defaults), ['digital signature', 'key encipherment']);
  t.deepEqual(usages(asCa), ['digital signature', 'key encipherment', 'cert sign']);
  t.true(parseCertificateChain(asCa.certificatePem).leaf.isCA);
});

test('a CSR is accepted as base64 of PEM, the form spec.request holds', async (t) => {
  const keyPem = await generatePrivateKey({ algorithm: 'ECDSA' });
  const csrPem = await createCsr({ keyPem, dnsNames: ['a.test'] });
  const signed = await signCsr({ csrPem: encodeB64(csrPem), durationMs: HOUR, selfSignKeyPem: keyPem });
  t.deepEqual(parseCertificateChain(signed.certificatePem).leaf.dnsNames, ['a.test']);
});

const refusals: Array<[string, () => Promise<SignOptions>, RegExp]> = [
  [
    'self-signing with a key that is not the CSR’s',
    async () => ({ csrPem: await createCsr({ keyPem: await generatePrivateKey({ algorithm: 'ECDSA' }), dnsNames: ['a.test'] }), durationMs: HOUR, selfSignKeyPem: await generatePrivateKey({ algorithm: 'ECDSA' }) }),
    /does not match the public key in the CSR/,
  ],
  [
    'signing with neither a CA nor a self-sign key',
    async () => ({ csrPem: await createCsr({ keyPem: await generatePrivateKey({ algorithm: 'ECDSA' }), dnsNames: ['a.test'] }), durationMs: HOUR }),
    /needs either a CA issuer or the private key/,
  ],
  [
    'a CA Secret whose key does not match its certificate',
    async () => {
      const ca = await selfSignedCa();
      const csrPem = await createCsr({ keyPem: await generatePrivateKey({ algorithm: 'ECDSA' }), dnsNames: ['a.test'] });
      return { csrPem, durationMs: HOUR, issuer: { certPem: ca.certificatePem, keyPem: await generatePrivateKey({ algorithm: 'ECDSA' }) } };
    },
    /tls\.key does not match/,
  ],
  [
    'a "CA" that is not a CA',
    async () => {
      const notCa = await issuedBy(await selfSignedCa(), { dnsNames: ['leaf.test'] });
      const csrPem = await createCsr({ keyPem: await generatePrivateKey({ algorithm: 'ECDSA' }), dnsNames: ['a.test'] });
      return { csrPem, durationMs: HOUR, issuer: { certPem: notCa.certificatePem, keyPem: notCa.keyPem } };
    },
    /is not a CA/,
  ],
  [
    'an expired CA',
    async () => {
      const ca = await selfSignedCa('Old CA', HOUR);
      const csrPem = await createCsr({ keyPem: await generatePrivateKey({ algorithm: 'ECDSA' }), dnsNames: ['a.test'] });
      return { csrPem, durationMs: HOUR, issuer: { certPem: ca.certificatePem, keyPem: ca.keyPem }, now: new Date(Date.now() + 2 * HOUR) };
    },
    /CA certificate expired/,
  ],
];

for (const [name, options, message] of refusals) {
  test(`signing is refused for ${name}`, async (t) => {
    await t.throwsAsync(signCsr(await options()), { message });
  });
}

test('a parsed certificate reports what cert-manager’s Secret annotations and status need', async (t) => {
  const ca = await selfSignedCa('Example CA');
  const leaf = await issuedBy(ca, { commonName: 'a.test', dnsNames: ['a.test'], ipAddresses: ['::1'] });
  const info = parseCertificateChain(leaf.certificatePem).leaf;
  t.like(info, { commonName: 'a.test', dnsNames: ['a.test'], ipAddresses: ['::1'], uris: [], isCA: false, subject: 'CN=a.test', issuer: 'CN=Example CA' });
  t.true(info.notBefore < info.notAfter);
  // Compared as numbers: one side writes whole bytes (a leading 0 nibble stays), the other may not.
  t.is(BigInt(`0x${info.serialNumber}`), BigInt(`0x${new X509Certificate(leaf.certificatePem).serialNumber}`));
});

test('a certificate matches its own key and no other', async (t) => {
  const ca = await selfSignedCa();
  const leaf = await issuedBy(ca, { dnsNames: ['a.test'] });
  t.true(certificateMatchesKey(leaf.certificatePem, leaf.keyPem));
  t.false(certificateMatchesKey(leaf.certificatePem, ca.keyPem));
  t.false(certificateMatchesKey('garbage', leaf.keyPem));
});

test('validateForSecret accepts a fresh certificate with its key', async (t) => {
  const leaf = await issuedBy(await selfSignedCa(), { dnsNames: ['a.test'] });
  t.is(validateForSecret(leaf.certificatePem, leaf.keyPem, new Date()), undefined);
});

test('validateForSecret refuses a certificate that does not match the key', async (t) => {
  const ca = await selfSignedCa();
  const leaf = await issuedBy(ca, { dnsNames: ['a.test'] });
  const other = await generatePrivateKey({});
  t.regex(validateForSecret(leaf.certificatePem, other, new Date()) ?? '', /does not match the private key/);
});

test('validateForSecret refuses a certificate that has already expired', async (t) => {
  const leaf = await issuedBy(await selfSignedCa(), { dnsNames: ['a.test'] });
  const later = new Date(Date.now() + 91 * DAY);
  t.regex(validateForSecret(leaf.certificatePem, leaf.keyPem, later) ?? '', /expired at/);
});

test('validateForSecret refuses unreadable data and a chain in the wrong order', async (t) => {
  const root = await selfSignedCa('Root');
  const leaf = await issuedBy(root, { dnsNames: ['a.test'] });
  const unrelated = await selfSignedCa('Unrelated');
  t.regex(validateForSecret('', leaf.keyPem, new Date()) ?? '', /cannot be parsed/);
  t.regex(validateForSecret(leaf.certificatePem, 'junk', new Date()) ?? '', /private key cannot be parsed/);
  t.regex(validateForSecret(leaf.certificatePem + unrelated.certificatePem, leaf.keyPem, new Date()) ?? '', /was not issued by the one after it/);
  t.is(validateForSecret(leaf.certificatePem + root.certificatePem, leaf.keyPem, new Date()), undefined);
});
