/**
 * The ACME lifecycle on the real stack: Pebble validates every HTTP-01
 * challenge through Traefik's web entrypoint to the controller's responder.
 * What is asserted is what a user sees: `kubectl get certificate`, the
 * Secret, Events, and the certificate's issuer and SANs.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readEnv, kubectl, PEBBLE_VALIDITY_SECONDS } from '../env/stack.ts';
import {
  applyYaml, freshNamespace, kubectlJson, readyCondition, cleanUpFile, secretPem, startController,
  waitFor, waitForCertificateRevision, type CertificateView, type SecretView,
} from '../helpers/controller.ts';
import { certificateYaml, deleteIssuers, newIssuer, triggerRenewal } from '../helpers/issuance.ts';
import { pebbleRoot } from '../helpers/pebble.ts';
import { sourceEntry } from '../../scripts/entry.ts';

let issuer = '';

test.before(async () => {
  await startController(['--min-backoff=2s', '--max-backoff=8s']);
  issuer = await newIssuer('pebble-lifecycle');
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
});

const certificate = (ns: string, name: string, dnsNames: string[], spec: Record<string, unknown> = {}): string => certificateYaml(ns, name, dnsNames, issuer, spec);

test('a Certificate for an ACME ClusterIssuer becomes Ready with a Pebble-signed Secret that kubectl shows', async (t) => {
  const ns = await freshNamespace('acme');
  await applyYaml(certificate(ns, 'web', ['web.acme.test', 'www.acme.test']));
  const cert = await waitForCertificateRevision(ns, 'web', 1);
  t.is(readyCondition(cert)?.reason, 'Ready');
  t.truthy(cert.status?.notAfter && cert.status.renewalTime);

  const table = (await kubectl(['-n', ns, 'get', 'certificate', 'web'])).stdout;
  t.regex(table, /NAME\s+READY\s+SECRET\s+AGE/);
  t.regex(table, /web\s+True\s+web-tls\s+/);

  const secret = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'web-tls']);
  t.is(secret.type, 'kubernetes.io/tls');
  t.is(secret.metadata.labels?.['controller.cert-manager.io/fao'], 'true');
  t.is(secret.metadata.annotations?.['cert-manager.io/certificate-name'], 'web');
  t.is(secret.metadata.annotations?.['cert-manager.io/issuer-name'], issuer);
  t.is(secret.metadata.annotations?.['cert-manager.io/issuer-kind'], 'ClusterIssuer');
  t.is(secret.metadata.annotations?.['cert-manager.io/issuer-group'], 'cert-manager.io');
  t.is(secret.metadata.annotations?.['cert-manager.io/alt-names'], 'web.acme.test,www.acme.test');

  const leaf = new X509Certificate(secretPem(secret, 'tls.crt'));
  t.deepEqual(leaf.subjectAltName?.split(', ').sort(), ['DNS:web.acme.test', 'DNS:www.acme.test']);
  t.true(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(secretPem(secret, 'tls.key'))));
  // The chain in tls.crt ends at an intermediate signed by Pebble's current root.
  const chain = secretPem(secret, 'tls.crt').split(/(?<=-----END CERTIFICATE-----)\s*/).filter(Boolean).map((p) => new X509Certificate(p));
  const root = new X509Certificate(await pebbleRoot(readEnv()));
  t.true(chain.at(-1)!.verify(root.publicKey), 'the chain ends at an intermediate signed by Pebble root /roots/0');

  const events = (await kubectl(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.name=web'])).stdout;
  t.regex(events, /Issuing/);
  t.regex(events, /The certificate has been successfully issued/);
});

test('changing dnsNames re-issues the certificate with the new names', async (t) => {
  const ns = await freshNamespace('reissue');
  await applyYaml(certificate(ns, 'app', ['one.reissue.test']));
  const first = await waitForCertificateRevision(ns, 'app', 1);
  await applyYaml(certificate(ns, 'app', ['one.reissue.test', 'two.reissue.test']));
  const second = await waitForCertificateRevision(ns, 'app', 2);
  t.true(second.metadata.generation > first.metadata.generation);
  const secret = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'app-tls']);
  const leaf = new X509Certificate(secretPem(secret, 'tls.crt'));
  t.deepEqual(leaf.subjectAltName?.split(', ').sort(), ['DNS:one.reissue.test', 'DNS:two.reissue.test']);
});

test('setting Issuing=True with reason ManuallyTriggered (cmctl renew) issues a new serial', async (t) => {
  const ns = await freshNamespace('manual');
  await applyYaml(certificate(ns, 'svc', ['svc.manual.test']));
  await waitForCertificateRevision(ns, 'svc', 1);
  const before = new X509Certificate(secretPem(await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'svc-tls']), 'tls.crt'));
  await triggerRenewal(ns, 'svc');
  await waitForCertificateRevision(ns, 'svc', 2);
  const after = new X509Certificate(secretPem(await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'svc-tls']), 'tls.crt'));
  t.not(after.serialNumber, before.serialNumber);
});

test('certroute renew re-issues the certificate like cmctl renew does', async (t) => {
  const ns = await freshNamespace('renewcli');
  await applyYaml(certificate(ns, 'api', ['api.renewcli.test']));
  await waitForCertificateRevision(ns, 'api', 1);
  const { execFile } = await import('node:child_process');
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [sourceEntry, 'renew', 'api', '-n', ns], { env: { ...process.env, KUBECONFIG: readEnv().kubeconfig } }, (err, so, se) => (err ? reject(new Error(se)) : resolve(so)));
  });
  t.regex(out, new RegExp(`Manually triggered issuance of Certificate ${ns}/api`));
  await waitForCertificateRevision(ns, 'api', 2);
  t.pass();
});

test('a Certificate renews by itself when renewBefore puts the renewal time in the past', async (t) => {
  const ns = await freshNamespace('renewal');
  // Renewing 3 s less than the lifetime of Pebble's certificates early puts the
  // renewal time 3 s after issuance.
  const early = PEBBLE_VALIDITY_SECONDS - 3;
  const renewBefore = `${Math.floor(early / 3600)}h${Math.floor((early % 3600) / 60)}m${early % 60}s`;
  await applyYaml(certificate(ns, 'short', ['short.renewal.test'], { renewBefore }));
  const first = await waitForCertificateRevision(ns, 'short', 1);
  const renewalAt = Date.parse(first.status!.renewalTime!);
  t.true(renewalAt - Date.parse(first.status!.notBefore!) <= 4_000);
  try {
    const second = await waitForCertificateRevision(ns, 'short', 2, 60_000);
    t.true(Date.parse(second.status!.notBefore!) >= Date.parse(first.status!.notBefore!));
  } finally {
    // It would renew every 3 s under every later controller.
    await kubectl(['-n', ns, 'delete', 'certificate', 'short', '--wait=false']);
  }
});

test('an order Pebble refuses marks the Certificate failed and retries with back-off', async (t) => {
  const ns = await freshNamespace('backoff');
  await applyYaml(certificate(ns, 'blocked', ['blocked.test']));
  const failed = await waitFor('failed issuance recorded', async () => {
    const c = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'blocked']);
    return (c.status?.failedIssuanceAttempts ?? 0) >= 1 ? c : undefined;
  }, 60_000);
  t.truthy(failed.status?.lastFailureTime);
  const issuing = failed.status?.conditions?.find((c) => c.type === 'Issuing');
  t.is(issuing?.status, 'False');
  t.is(issuing?.reason, 'Failed');
  t.regex(issuing?.message ?? '', /blocked/i);
  const ready = readyCondition(failed);
  t.is(ready?.status, 'False');
  // The back-off (2 s doubling in this test) brings a second attempt, and a third.
  const retried = await waitFor('second failed attempt', async () => {
    const c = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'blocked']);
    return (c.status?.failedIssuanceAttempts ?? 0) >= 2 ? c : undefined;
  }, 60_000);
  const gap = Date.parse(retried.status!.lastFailureTime!) - Date.parse(failed.status!.lastFailureTime!);
  t.true(gap >= 1_000, `second attempt came ${gap} ms after the first failure, before the back-off`);
  const events = (await kubectl(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.name=blocked'])).stdout;
  t.regex(events, /Failed/);
});
