/**
 * Private keys: what a Certificate's spec.privateKey produces, and how a stored
 * key is judged against a spec (rotationPolicy Never and SecretMismatch rest on it).
 */
import test from 'ava';
import type { PrivateKeySpec } from '../../src/api/types.ts';
import {
  describeKey,
  encodePrivateKey,
  generatePrivateKey,
  keyMatchesSpec,
  keySpecViolations,
  parsePrivateKey,
  publicKeyFingerprint,
  resolveKeySpec,
} from '../../src/pki/keys.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { signCsr } from '../../src/pki/sign.ts';

interface GenerateCase {
  name: string;
  spec: PrivateKeySpec;
  header: string;
  algorithm: string;
  size: number;
}

const generateCases: GenerateCase[] = [
  { name: 'an empty spec gives RSA 2048 in PKCS#1, as cert-manager', spec: {}, header: 'RSA PRIVATE KEY', algorithm: 'RSA', size: 2048 },
  { name: 'RSA 3072 is generated at that size', spec: { algorithm: 'RSA', size: 3072 }, header: 'RSA PRIVATE KEY', algorithm: 'RSA', size: 3072 },
  { name: 'RSA with PKCS8 encoding is a plain PRIVATE KEY block', spec: { algorithm: 'RSA', encoding: 'PKCS8' }, header: 'PRIVATE KEY', algorithm: 'RSA', size: 2048 },
  { name: 'ECDSA without a size is P-256 in SEC1', spec: { algorithm: 'ECDSA' }, header: 'EC PRIVATE KEY', algorithm: 'ECDSA', size: 256 },
  { name: 'ECDSA 384 is P-384', spec: { algorithm: 'ECDSA', size: 384 }, header: 'EC PRIVATE KEY', algorithm: 'ECDSA', size: 384 },
  { name: 'ECDSA 521 is P-521', spec: { algorithm: 'ECDSA', size: 521 }, header: 'EC PRIVATE KEY', algorithm: 'ECDSA', size: 521 },
  { name: 'ECDSA with PKCS8 encoding is a plain PRIVATE KEY block', spec: { algorithm: 'ECDSA', encoding: 'PKCS8' }, header: 'PRIVATE KEY', algorithm: 'ECDSA', size: 256 },
  { name: 'Ed25519 is PKCS#8 even when PKCS1 is asked, since it has no PKCS#1 form', spec: { algorithm: 'Ed25519', encoding: 'PKCS1' }, header: 'PRIVATE KEY', algorithm: 'Ed25519', size: 256 },
];

for (const c of generateCases) {
  test(`generating a key: ${c.name}`, async (t) => {
    const pem = await generatePrivateKey(c.spec);
    t.true(pem.startsWith(`-----BEGIN ${c.header}-----`));
    t.deepEqual(describeKey(parsePrivateKey(pem)), { algorithm: c.algorithm, size: c.size });
    t.true(keyMatchesSpec(pem, c.spec));
  });
}

const invalidSpecs: Array<[string, PrivateKeySpec, RegExp]> = [
  ['an RSA key below 2048 bits', { algorithm: 'RSA', size: 1024 }, /spec\.privateKey\.size 1024/],
  ['an RSA key above 8192 bits', { algorithm: 'RSA', size: 16384 }, /spec\.privateKey\.size/],
  ['an ECDSA curve that is not 256, 384 or 521', { algorithm: 'ECDSA', size: 224 }, /use 256, 384 or 521/],
  ['an unknown algorithm', { algorithm: 'DSA' as 'RSA' }, /spec\.privateKey\.algorithm/],
  ['an unknown encoding', { encoding: 'DER' as 'PKCS1' }, /spec\.privateKey\.encoding/],
];

for (const [name, spec, message] of invalidSpecs) {
  test(`a spec asking for ${name} is rejected with the field named`, async (t) => {
    t.throws(() => resolveKeySpec(spec), { message });
    await t.throwsAsync(generatePrivateKey(spec), { message });
  });
}

test('generating an RSA 4096 key leaves the event loop free to run other work', async (t) => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    await generatePrivateKey({ algorithm: 'RSA', size: 4096 });
  } finally {
    clearInterval(timer);
  }
  t.true(ticks > 0, 'no timer ran while the key was being generated');
});

test('keys of the right algorithm and size match the spec and others are named as violations', async (t) => {
  const rsa = await generatePrivateKey({});
  const ec = await generatePrivateKey({ algorithm: 'ECDSA' });
  const ed = await generatePrivateKey({ algorithm: 'Ed25519' });
  const table: Array<[string, string, PrivateKeySpec, string[]]> = [
    ['RSA 2048', rsa, {}, []],
    ['RSA 2048', rsa, { algorithm: 'RSA', size: 2048 }, []],
    ['RSA 2048', rsa, { algorithm: 'RSA', size: 4096 }, ['spec.privateKey.size']],
    ['RSA 2048', rsa, { algorithm: 'ECDSA' }, ['spec.privateKey.algorithm']],
    ['P-256', ec, { algorithm: 'ECDSA', size: 256 }, []],
    ['P-256', ec, { algorithm: 'ECDSA', size: 384 }, ['spec.privateKey.size']],
    ['P-256', ec, {}, ['spec.privateKey.algorithm']],
    ['Ed25519', ed, { algorithm: 'Ed25519', size: 123 }, []],
    ['Ed25519', ed, { algorithm: 'RSA' }, ['spec.privateKey.algorithm']],
    ['P-256 stored as PKCS8', encodePrivateKey(parsePrivateKey(ec), 'PKCS8'), { algorithm: 'ECDSA', encoding: 'PKCS1' }, []],
  ];
  for (const [label, pem, spec, violations] of table) {
    t.deepEqual(keySpecViolations(pem, spec), violations, `${label} against ${JSON.stringify(spec)}`);
    t.is(keyMatchesSpec(pem, spec), violations.length === 0);
  }
});

test('a PEM that is not a private key cannot be parsed and says so', (t) => {
  t.throws(() => parsePrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), { message: /not a valid unencrypted PEM private key/ });
  t.throws(() => parsePrivateKey('hello'), { message: /not a valid/ });
});

test('re-encoding a key between PKCS1 and PKCS8 keeps the same key', async (t) => {
  const pkcs1 = await generatePrivateKey({ algorithm: 'ECDSA' });
  const pkcs8 = encodePrivateKey(parsePrivateKey(pkcs1), 'PKCS8');
  t.true(pkcs8.startsWith('-----BEGIN PRIVATE KEY-----'));
  t.is(publicKeyFingerprint(pkcs8), publicKeyFingerprint(pkcs1));
});

test('the public key fingerprint is the same from the private key, its KeyObject and a certificate for it', async (t) => {
  const keyPem = await generatePrivateKey({ algorithm: 'ECDSA' });
  const { certificatePem } = await signCsr({ csrPem: await createCsr({ keyPem, commonName: 'a.test' }), durationMs: 3_600_000, selfSignKeyPem: keyPem });
  const fingerprint = publicKeyFingerprint(keyPem);
  t.regex(fingerprint, /^[0-9a-f]{64}$/);
  t.is(publicKeyFingerprint(parsePrivateKey(keyPem)), fingerprint);
  t.is(publicKeyFingerprint(certificatePem), fingerprint);
  t.not(publicKeyFingerprint(await generatePrivateKey({ algorithm: 'ECDSA' })), fingerprint);
});
