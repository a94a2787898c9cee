/**
 * What a namespace user who may write Certificates and their status (cert-manager's `edit`
 * role) must not be able to do with them:
 * - point `status.nextPrivateKeySecretName` at another Secret, to have the controller delete it
 *   (it has no tls.key) or adopt its key and delete it after the issuance;
 * - give two Certificates one `secretName`, so that they overwrite each other for ever and burn
 *   the ACME account's rate limits.
 * A SelfSigned issuer keeps the issuances local and fast.
 */
import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { kubectl } from '../env/stack.ts';
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
