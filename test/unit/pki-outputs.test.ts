/**
 * cert-manager's additional output formats, byte for byte as its documentation shows the Secret:
 *
 *   tls-combined.pem: <PEM private key + "\n" + PEM signed certificate chain>
 *   key.der: <DER binary format of private key>
 *
 * and the facts that decide whether a Secret still carries what the spec asks for.
 */
import test from 'ava';
import { createPrivateKey } from 'node:crypto';
import { combinedPem, derKey, formatOutputs, outputFacts, outputsMismatch, OutputKeys, type OutputFacts } from '../../src/pki/outputs.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { selfSigned } from '../helpers/builders.ts';

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

test('CombinedPEM is the key, one newline, then the chain, as cert-manager joins them', (t) => {
  const out = combinedPem(Buffer.from('KEY\n'), Buffer.from('CHAIN\n'));
  t.is(out.toString(), 'KEY\n\nCHAIN\n');
});

for (const [encoding, algorithm, type] of [['PKCS1', 'RSA', 'pkcs1'], ['PKCS8', 'RSA', 'pkcs8'], ['PKCS1', 'ECDSA', 'sec1'], ['PKCS8', 'Ed25519', 'pkcs8']] as const) {
  test(`DER of a ${algorithm} ${encoding} key is that key's own encoding in binary (${type})`, async (t) => {
    const pem = await generatePrivateKey({ algorithm, encoding });
    const der = derKey(Buffer.from(pem));
    const key = createPrivateKey({ key: der, format: 'der', type });
    t.deepEqual(der, key.export({ format: 'der', type }));
  });
}

test('the formats a spec asks for are added, and the ones it does not are listed for removal', async (t) => {
  const { keyPem, certificatePem } = await selfSigned();
  const both = formatOutputs({ additionalOutputFormats: [{ type: 'CombinedPEM' }, { type: 'DER' }] }, Buffer.from(keyPem), Buffer.from(certificatePem));
  t.deepEqual(Object.keys(both.data).sort(), [OutputKeys.der, OutputKeys.combinedPem].sort());
  t.deepEqual(both.remove, []);
  t.is(Buffer.from(both.data[OutputKeys.combinedPem]!, 'base64').toString(), `${keyPem}\n${certificatePem}`);
  const none = formatOutputs({}, Buffer.from(keyPem), Buffer.from(certificatePem));
  t.deepEqual(none, { data: {}, remove: [OutputKeys.combinedPem, OutputKeys.der] });
});

test('a Secret written as cert-manager writes it matches the spec: nothing to rewrite', async (t) => {
  const { keyPem, certificatePem } = await selfSigned();
  const data = { 'tls.key': b64(keyPem), 'tls.crt': b64(certificatePem), 'tls-combined.pem': b64(`${keyPem}\n${certificatePem}`), 'key.der': b64(derKey(Buffer.from(keyPem))) };
  const facts = outputFacts(data);
  t.deepEqual([...facts.present].sort(), ['key.der', 'tls-combined.pem']);
  t.deepEqual(facts.stale, []);
  t.is(outputsMismatch({ additionalOutputFormats: [{ type: 'DER' }, { type: 'CombinedPEM' }] }, facts), undefined);
});

test('a format asked for and missing, one no longer asked for, and stale bytes are each named', async (t) => {
  const { keyPem, certificatePem } = await selfSigned();
  const base = { 'tls.key': b64(keyPem), 'tls.crt': b64(certificatePem) };
  t.regex(outputsMismatch({ additionalOutputFormats: [{ type: 'DER' }] }, outputFacts(base)) ?? '', /key\.der is missing/);
  t.regex(outputsMismatch({}, outputFacts({ ...base, 'key.der': b64(derKey(Buffer.from(keyPem))) })) ?? '', /key\.der is no longer requested/);
  const other = await selfSigned();
  const stale = outputFacts({ ...base, 'tls-combined.pem': b64(`${other.keyPem}\n${other.certificatePem}`) });
  t.regex(outputsMismatch({ additionalOutputFormats: [{ type: 'CombinedPEM' }] }, stale) ?? '', /tls-combined\.pem does not match tls\.key and tls\.crt/);
});

test('a Secret without derived keys and a spec without formats agree', (t) => {
  t.is(outputsMismatch({}, outputFacts({ 'tls.key': b64('k'), 'tls.crt': b64('c') })), undefined);
  t.is(outputsMismatch({}, outputFacts(undefined)), undefined);
});

test('keystores: one asked for and missing, its truststore missing beside a CA, one no longer asked for, and another profile or alias are each named', (t) => {
  const present = (keys: string[], extra: Partial<OutputFacts> = {}): OutputFacts => ({ present: keys, stale: [], hasCa: false, ...extra });
  const pkcs12 = { keystores: { pkcs12: { create: true, password: 'p' } } };
  t.regex(outputsMismatch(pkcs12, present([])) ?? '', /keystore\.p12 is missing/);
  t.is(outputsMismatch(pkcs12, present(['keystore.p12'])), undefined, 'no CA: no truststore needed');
  t.regex(outputsMismatch(pkcs12, present(['keystore.p12'], { hasCa: true })) ?? '', /truststore\.p12 is missing/);
  t.regex(outputsMismatch({}, present(['keystore.jks', 'truststore.jks'])) ?? '', /keystore\.jks is no longer requested, truststore\.jks is no longer requested/);
  t.regex(outputsMismatch({ keystores: { pkcs12: { create: true, password: 'p', profile: 'Modern2023' } } }, present(['keystore.p12'], { pkcs12Profile: 'LegacyRC2' })) ?? '',
    /keystore\.p12 was written with profile LegacyRC2, not Modern2023/);
  t.is(outputsMismatch(pkcs12, present(['keystore.p12'], { pkcs12Profile: 'LegacyRC2' })), undefined, 'LegacyRC2 is the default profile');
  t.regex(outputsMismatch({ keystores: { jks: { create: true, password: 'p', alias: 'app' } } }, present(['keystore.jks'], { jksAlias: 'certificate' })) ?? '',
    /keystore\.jks was written with alias certificate, not app/);
  t.is(outputsMismatch({ keystores: { jks: { create: true, password: 'p' } } }, present(['keystore.jks'], { jksAlias: 'certificate' })), undefined, '"certificate" is the default alias');
});
