import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { bundlePem, caOfSecret, mergeBundle, parseBundle } from '../../src/cainjector/bundle.ts';
import { sourceOf } from '../../src/cainjector/sources.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { signCsr } from '../../src/pki/sign.ts';
import { DAY, HOUR, selfSigned } from '../helpers/builders.ts';

const now = new Date();
const cert = async (o: Parameters<typeof selfSigned>[0] = {}) => new X509Certificate((await selfSigned(o)).certificatePem);
const b64 = (s: string) => Buffer.from(s).toString('base64');

test('a new CA is appended to the CAs a bundle holds, so the old and the new CA are both trusted during a rotation', async (t) => {
  const [oldCa, newCa] = await Promise.all([cert({ commonName: 'old' }), cert({ commonName: 'new' })]);
  const merged = mergeBundle(bundlePem([oldCa]), [newCa], now);
  t.deepEqual(merged.map((c) => c.fingerprint256), [oldCa.fingerprint256, newCa.fingerprint256]);
});

test('a CA already in the bundle is not added twice, and duplicates in the bundle are dropped', async (t) => {
  const ca = await cert();
  t.deepEqual(mergeBundle(bundlePem([ca, ca]), [ca], now).map((c) => c.fingerprint256), [ca.fingerprint256]);
});

test('expired CAs leave the bundle, and an expired new CA is not added', async (t) => {
  const [expired, valid] = await Promise.all([cert({ notBefore: new Date(Date.now() - 3 * DAY), durationMs: DAY }), cert()]);
  t.deepEqual(mergeBundle(bundlePem([expired, valid]), [], now).map((c) => c.fingerprint256), [valid.fingerprint256]);
  t.deepEqual(mergeBundle(bundlePem([valid]), [expired], now).map((c) => c.fingerprint256), [valid.fingerprint256]);
});

test('a bundle that does not parse is replaced by the new CA, as cert-manager does', async (t) => {
  const ca = await cert();
  const garbage = '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n';
  t.deepEqual(mergeBundle(garbage, [ca], now).map((c) => c.fingerprint256), [ca.fingerprint256]);
  t.deepEqual(mergeBundle(undefined, [ca], now).map((c) => c.fingerprint256), [ca.fingerprint256]);
});

test("a Secret's CA is its ca.crt", async (t) => {
  const [ca, leaf] = await Promise.all([cert({ commonName: 'ca' }), cert({ commonName: 'leaf' })]);
  const got = caOfSecret({ 'ca.crt': b64(ca.toString()), 'tls.crt': b64(leaf.toString()) }, true);
  t.true(got.ok && got.from === 'ca.crt' && got.certificates[0]?.fingerprint256 === ca.fingerprint256);
});

test("without ca.crt, a Certificate's Secret offers the root that ends its tls.crt chain, and a chain without a root offers nothing", async (t) => {
  const rootKey = await generatePrivateKey({ algorithm: 'ECDSA' });
  const root = await signCsr({ csrPem: await createCsr({ keyPem: rootKey, commonName: 'root' }), isCA: true, durationMs: 30 * DAY, selfSignKeyPem: rootKey, now: new Date(Date.now() - HOUR) });
  const leafKey = await generatePrivateKey({ algorithm: 'ECDSA' });
  const leaf = await signCsr({ csrPem: await createCsr({ keyPem: leafKey, dnsNames: ['a.test'] }), durationMs: DAY, issuer: { certPem: root.certificatePem, keyPem: rootKey }, now: new Date(Date.now() - HOUR) });
  const withRoot = caOfSecret({ 'tls.crt': b64(leaf.certificatePem + root.certificatePem) }, true);
  t.true(withRoot.ok && withRoot.from === 'tls.crt' && withRoot.certificates[0]?.subject === 'CN=root');
  const leafOnly = caOfSecret({ 'tls.crt': b64(leaf.certificatePem) }, true);
  t.false(leafOnly.ok);
  t.false(caOfSecret({ 'tls.crt': b64(root.certificatePem) }, false).ok, 'a plain Secret offers ca.crt only');
});

test('ca.crt that is not PEM certificates is refused with the reason', (t) => {
  const got = caOfSecret({ 'ca.crt': b64('hello') }, true);
  t.false(got.ok);
  t.regex(got.ok ? '' : got.message, /ca\.crt/);
});

test('parseBundle reads every certificate of a bundle in order', async (t) => {
  const [a, b] = await Promise.all([cert(), cert()]);
  t.deepEqual(parseBundle(bundlePem([a, b])).map((c) => c.fingerprint256), [a.fingerprint256, b.fingerprint256]);
});

const sources: Array<[string, Record<string, string> | undefined, unknown]> = [
  ['no annotation asks for nothing', { other: 'x' }, undefined],
  ['inject-apiserver-ca other than "true" asks for nothing', { 'cert-manager.io/inject-apiserver-ca': 'false' }, undefined],
  ['inject-ca-from names a Certificate', { 'cert-manager.io/inject-ca-from': 'ns/ca' }, { kind: 'Certificate', namespace: 'ns', name: 'ca' }],
  ['inject-ca-from-secret names a Secret', { 'cert-manager.io/inject-ca-from-secret': 'ns/ca-tls' }, { kind: 'Secret', namespace: 'ns', name: 'ca-tls' }],
  ['inject-apiserver-ca "true" asks for the API server CA', { 'cert-manager.io/inject-apiserver-ca': 'true' }, { kind: 'APIServer' }],
  ['a name without a namespace is refused', { 'cert-manager.io/inject-ca-from': 'ca' }, 'InvalidInjectAnnotation'],
  ['an empty value is refused', { 'cert-manager.io/inject-ca-from-secret': '' }, 'InvalidInjectAnnotation'],
  ['a name with two slashes is refused', { 'cert-manager.io/inject-ca-from': 'a/b/c' }, 'InvalidInjectAnnotation'],
  ['an upper-case name is refused', { 'cert-manager.io/inject-ca-from': 'ns/CA' }, 'InvalidInjectAnnotation'],
  ['two sources at once are refused', { 'cert-manager.io/inject-ca-from': 'ns/ca', 'cert-manager.io/inject-apiserver-ca': 'true' }, 'InvalidInjectAnnotation'],
];

for (const [title, annotations, want] of sources) {
  test(`annotations: ${title}`, (t) => {
    const got = sourceOf(annotations);
    if (typeof want === 'string') t.is(got && 'reason' in got ? got.reason : undefined, want);
    else t.deepEqual(got, want);
  });
}
