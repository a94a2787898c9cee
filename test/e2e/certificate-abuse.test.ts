/**
 * What a namespace user who may write Certificates and their status (cert-manager's `edit`
 * role) must not be able to do with them:
 * - point `status.nextPrivateKeySecretName` at another Secret, to have the controller delete it
 *   (it has no tls.key) or adopt its key and delete it after the issuance;
 * - give two Certificates one `secretName`, so that they overwrite each other for ever and burn
 *   the ACME account's rate limits.
 * - have a CA issuer sign a hand-made CSR with a name nobody saw (a forged SAN entry or common
 *   name that OpenSSL reads as a host name, a second PEM block that a Go approver never reads) or
 *   a CA certificate the request's spec.isCA does not ask for.
 * SelfSigned and CA issuers keep the issuances local and fast.
 */
import test from 'ava';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createCsr } from '../../src/pki/csr.ts';
import { sequence, Tag, tlv } from '../../src/pki/der.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { kubectl } from '../env/stack.ts';
import { commonName, craftedCsr, extension, generalName, SAN } from '../helpers/crafted-csr.ts';
import {
  cleanUpFile, applyYaml, freshNamespace, kubectlJson, secretPem, startController, waitFor, waitForCertificateRevision,
  type CertificateView, type ControllerProcess, type SecretView,
} from '../helpers/controller.ts';

let controller: ControllerProcess | undefined;

test.before(async () => {
  controller = await startController();
});

test.after.always(async () => {
  await cleanUpFile();
});

const selfSigned = (ns: string) => `apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned, namespace: ${ns}}
spec: {selfSigned: {}}
`;
const certificate = (ns: string, name: string, secretName: string) => `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: ${name}, namespace: ${ns}}
spec:
  secretName: ${secretName}
  dnsNames: [${name}.${ns}.test]
  issuerRef: {name: selfsigned, kind: Issuer}
`;

interface EventView { reason: string; message: string; involvedObject: { name: string } }
const events = async (ns: string) => (await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events'])).items;

/** What `cmctl renew` writes, plus the attacker's nextPrivateKeySecretName. */
async function renewWithKeyFrom(ns: string, name: string, secret: string): Promise<void> {
  const cert = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', name]);
  const conditions = [
    ...(cert.status?.conditions ?? []).filter((c) => c.type !== 'Issuing'),
    { type: 'Issuing', status: 'True', reason: 'ManuallyTriggered', message: 'Certificate re-issuance manually triggered', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
  ];
  await kubectl(['-n', ns, 'patch', 'certificate', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions, nextPrivateKeySecretName: secret } })]);
}

test('status.nextPrivateKeySecretName naming another Secret neither deletes it nor adopts its key', async (t) => {
  const ns = await freshNamespace('nextkey');
  await applyYaml(selfSigned(ns) + '---\n' + certificate(ns, 'web', 'web-tls'));
  await waitForCertificateRevision(ns, 'web', 1, 60_000);

  // A Secret without tls.key: the old code deleted it as a "bad next key".
  await kubectl(['-n', ns, 'create', 'secret', 'generic', 'db-password', '--from-literal=password=hunter2']);
  await renewWithKeyFrom(ns, 'web', 'db-password');
  await waitFor('the NextPrivateKeyIgnored warning', async () => (await events(ns)).find((e) => e.reason === 'NextPrivateKeyIgnored' && e.message.includes('db-password')), 30_000);
  await waitForCertificateRevision(ns, 'web', 2, 60_000);
  const db = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'db-password']);
  t.is(secretPem(db, 'password'), 'hunter2', 'the named Secret is untouched');

  // Another app's TLS Secret whose key fits the spec (RSA 2048): the old code used that key and
  // then deleted the Secret.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const foreignKey = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await applyYaml(`apiVersion: v1
kind: Secret
metadata: {name: other-app, namespace: ${ns}}
type: Opaque
data: {tls.key: ${Buffer.from(foreignKey).toString('base64')}}
`);
  await renewWithKeyFrom(ns, 'web', 'other-app');
  await waitFor('the second NextPrivateKeyIgnored warning', async () => (await events(ns)).find((e) => e.reason === 'NextPrivateKeyIgnored' && e.message.includes('other-app')), 30_000);
  await waitForCertificateRevision(ns, 'web', 3, 60_000);
  const other = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'other-app']);
  t.is(secretPem(other, 'tls.key'), foreignKey, 'the other app\'s Secret is untouched');
  const served = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'web-tls']);
  t.not(secretPem(served, 'tls.key'), foreignKey, 'its key was not adopted');
});

test('two Certificates naming one Secret are both Ready=False with the reason, and neither is issued until one goes', async (t) => {
  const ns = await freshNamespace('dupsecret');
  await applyYaml([selfSigned(ns), certificate(ns, 'first', 'shared-tls'), certificate(ns, 'second', 'shared-tls')].join('---\n'));
  for (const name of ['first', 'second']) {
    const ready = await waitFor(`${name} to report the conflict`, async () => {
      const c = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', name]);
      const r = c.status?.conditions?.find((x) => x.type === 'Ready');
      return r?.reason === 'DuplicateSecretName' ? r : undefined;
    }, 30_000);
    t.is(ready.status, 'False');
    t.regex(ready.message ?? '', /Certificates first, second all name Secret shared-tls .* give each its own spec\.secretName/);
  }
  const requests = await kubectlJson<{ items: unknown[] }>(['-n', ns, 'get', 'certificaterequests']);
  t.deepEqual(requests.items, [], 'no CertificateRequest for either');
  await t.throwsAsync(kubectl(['-n', ns, 'get', 'secret', 'shared-tls']), undefined, 'no Secret written');

  await kubectl(['-n', ns, 'delete', 'certificate', 'second']);
  const first = await waitForCertificateRevision(ns, 'first', 1, 60_000);
  t.is(first.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True', 'the one left is issued');
});

/** A CertificateRequest as a namespace user writes one by hand, with their own CSR. */
const request = (ns: string, name: string, csrPem: string, extra = '') => `apiVersion: cert-manager.io/v1
kind: CertificateRequest
metadata: {name: ${name}, namespace: ${ns}}
spec:
  request: ${Buffer.from(csrPem).toString('base64')}
  issuerRef: {name: ca, kind: Issuer}
${extra}`;

interface RequestView { status?: { certificate?: string; conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } }

async function requestOutcome(ns: string, name: string): Promise<{ ready: { status: string; reason?: string; message?: string }; certificate?: string }> {
  return waitFor(`CertificateRequest ${name} to end`, async () => {
    const cr = await kubectlJson<RequestView>(['-n', ns, 'get', 'certificaterequest', name]);
    const ready = cr.status?.conditions?.find((c) => c.type === 'Ready');
    return ready && (ready.status === 'True' || ready.reason === 'Failed') ? { ready, certificate: cr.status?.certificate } : undefined;
  }, 60_000);
}

test('a CA issuer signs no hand-made CSR that hides a name (a forged SAN entry, a second PEM block, a constructed common name) or asks for a CA that spec.isCA does not', async (t) => {
  const ns = await freshNamespace('forgedcsr');
  await applyYaml(`${selfSigned(ns)}---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: root, namespace: ${ns}}
spec:
  isCA: true
  commonName: forged-csr root
  secretName: root-ca
  issuerRef: {name: selfsigned, kind: Issuer}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: ca, namespace: ${ns}}
spec: {ca: {secretName: root-ca}}
`);
  await waitForCertificateRevision(ns, 'root', 1, 60_000);
  const keyPem = await generatePrivateKey({ algorithm: 'ECDSA' });

  // OpenSSL (and so every TLS client) reads the constructed [2] entry as DNS:evil.test.
  const hidden = craftedCsr(keyPem, [extension(SAN, sequence(generalName(0x82, `good.${ns}.test`), generalName(0xa2, 'evil.test')))]);
  const sneakyCa = await createCsr({ keyPem, commonName: 'sneaky sub CA', isCA: true });
  const honest = await createCsr({ keyPem, dnsNames: [`good.${ns}.test`] });
  // Go-based approvers read the first PEM block, whatever its label; the second is the one to sign.
  const evil = await createCsr({ keyPem, dnsNames: ['bank.example.test'] });
  const twoBlocks = honest.replaceAll('CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST') + evil;
  // A constructed UTF8String common name: OpenSSL reads CN = bank.example.test and matches hosts by it.
  const constructedCn = craftedCsr(keyPem, [], { subject: sequence(commonName(tlv(0x2c, tlv(Tag.UTF8_STRING, Buffer.from('bank.')), tlv(Tag.UTF8_STRING, Buffer.from('example.test'))))) });
  await applyYaml([
    request(ns, 'hidden-name', hidden), request(ns, 'sneaky-ca', sneakyCa), request(ns, 'two-blocks', twoBlocks), request(ns, 'constructed-cn', constructedCn), request(ns, 'honest', honest),
  ].join('---\n'));

  const forged = await requestOutcome(ns, 'hidden-name');
  t.like(forged.ready, { status: 'False', reason: 'Failed' });
  t.regex(forged.ready.message ?? '', /Error signing the CSR in spec\.request: .*GeneralName with tag 0xa2/);
  t.is(forged.certificate, undefined, 'nothing signed');
  const ca = await requestOutcome(ns, 'sneaky-ca');
  t.like(ca.ready, { status: 'False', reason: 'Failed' });
  t.regex(ca.ready.message ?? '', /basic constraints say cA=true but spec\.isCA is false: set spec\.isCA to true/);
  t.is(ca.certificate, undefined, 'nothing signed');

  for (const [name, reason] of [['two-blocks', /must be one PEM block/], ['constructed-cn', /subject holds an attribute that is not an OID and a directory string/]] as const) {
    const outcome = await requestOutcome(ns, name);
    t.like(outcome.ready, { status: 'False', reason: 'Failed' }, name);
    t.regex(outcome.ready.message ?? '', reason, name);
    t.is(outcome.certificate, undefined, `${name}: nothing signed`);
  }

  // The same issuer signs the honest request: the refusals are about the CSRs, not the issuer.
  const ok = await requestOutcome(ns, 'honest');
  t.is(ok.ready.status, 'True');
  const issued = new X509Certificate(Buffer.from(ok.certificate ?? '', 'base64'));
  t.is(issued.subjectAltName, `DNS:good.${ns}.test`);
  t.false(issued.ca);
  t.regex(issued.issuer, /CN=forged-csr root/);

  // What the user sees: the READY column and a Warning Event naming the reason.
  const table = (await kubectl(['-n', ns, 'get', 'certificaterequests'])).stdout;
  t.regex(table, /^hidden-name\s+True\s+False\s+ca\s/m);
  t.regex(table, /^sneaky-ca\s+True\s+False\s+ca\s/m);
  t.regex(table, /^two-blocks\s+True\s+False\s+ca\s/m);
  t.regex(table, /^honest\s+True\s+True\s+ca\s/m);
  const warnings = (await events(ns)).filter((e) => e.reason === 'Failed');
  t.truthy(warnings.find((e) => e.involvedObject.name === 'hidden-name' && /tag 0xa2/.test(e.message)));
  t.truthy(warnings.find((e) => e.involvedObject.name === 'sneaky-ca' && /spec\.isCA is false/.test(e.message)));
});
