/**
 * ACME certificate profiles on the real stack. Pebble offers `default` (90 days) and
 * `shortlived` (160 hours); an issuer names one in spec.acme.profile, certroute sends it in
 * newOrder, and the Certificate renews on the schedule of the certificate actually issued.
 * This file's controller runs with --ari=false, so the renewal time is the spec's rule alone
 * (two thirds of the real lifetime) and nothing about ARI is written.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { kubectl } from '../env/stack.ts';
import {
  applyYaml, certroute, cleanUpFile, freshNamespace, kubectlJson, secretPem, startController, waitForCertificateRevision, type SecretView,
} from '../helpers/controller.ts';
import { certificateYaml, deleteIssuers, newIssuer, freshIssuerName, applyIssuer, waitIssuerReady, deleteIssuer } from '../helpers/issuance.ts';

interface AcmeStatusView {
  status?: { notBefore?: string; notAfter?: string; renewalTime?: string; acme?: { profile?: string; ari?: unknown } };
}

test.before(async () => {
  await startController(['--ari=false']);
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
});

const HOUR = 3600_000;

test('an issuer with profile shortlived gets 160-hour certificates that renew after two thirds of that, and says so in status', async (t) => {
  const issuer = await newIssuer('pebble-short', undefined, { acme: { profile: 'shortlived' } });
  const ns = await freshNamespace('short');
  await applyYaml(certificateYaml(ns, 'six-day', ['six-day.short.test'], issuer));
  await waitForCertificateRevision(ns, 'six-day', 1, 90_000);
  const cert = await kubectlJson<AcmeStatusView>(['-n', ns, 'get', 'certificate', 'six-day']);
  const leaf = new X509Certificate(secretPem(await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'six-day-tls']), 'tls.crt'));
  const lifetime = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
  t.true(Math.abs(lifetime - 160 * HOUR) <= 1000, `lifetime is ${lifetime / HOUR} h`);
  t.is(cert.status?.acme?.profile, 'shortlived');
  t.is(cert.status?.acme?.ari, undefined, 'with --ari=false nothing about ARI is written');
  const renewal = Date.parse(cert.status!.renewalTime!);
  const expected = Date.parse(leaf.validTo) - lifetime / 3;
  t.true(Math.abs(renewal - expected) <= 1000, `renewal at ${cert.status?.renewalTime}, two thirds of the lifetime is ${new Date(expected).toISOString()}`);

  const table = await certroute(['status', 'six-day', '-n', ns]);
  t.regex(table.stdout, /profile shortlived/);
});

test('an issuer with profile default gets 90-day certificates, and its Orders name the profile', async (t) => {
  const issuer = await newIssuer('pebble-default', undefined, { acme: { profile: 'default' } });
  const ns = await freshNamespace('classic');
  await applyYaml(certificateYaml(ns, 'ninety', ['ninety.classic.test'], issuer));
  await waitForCertificateRevision(ns, 'ninety', 1, 90_000);
  const cert = await kubectlJson<AcmeStatusView>(['-n', ns, 'get', 'certificate', 'ninety']);
  const lifetime = Date.parse(cert.status!.notAfter!) - Date.parse(cert.status!.notBefore!);
  t.true(Math.abs(lifetime - 90 * 24 * HOUR) <= 1000, `lifetime is ${lifetime / HOUR} h`);
  t.is(cert.status?.acme?.profile, 'default');
  const orders = await kubectlJson<{ items: Array<{ spec: { profile?: string }; status?: { profile?: string } }> }>(['-n', ns, 'get', 'orders']);
  t.true(orders.items.length > 0);
  for (const o of orders.items) {
    t.is(o.spec.profile, 'default');
    t.is(o.status?.profile, 'default');
  }
});

test('an issuer asking for a profile the CA does not offer is not Ready, and its message lists the offered profiles', async (t) => {
  const name = freshIssuerName('pebble-tlsserver');
  await applyIssuer(name, undefined, { acme: { profile: 'tlsserver' } });
  try {
    const issuer = await waitIssuerReady(name, { want: 'False' });
    const ready = issuer.status?.conditions?.find((c) => c.type === 'Ready');
    t.is(ready?.reason, 'ErrUnknownProfile');
    t.regex(ready?.message ?? '', /"tlsserver" is not offered by .*; it offers: default, shortlived/);
  } finally {
    await deleteIssuer(name);
  }
});

test("cert-manager's tutorial issuer with profile tlsserver applies unchanged, as an Issuer and as a ClusterIssuer", async (t) => {
  const ns = await freshNamespace('tutorial');
  // cert-manager's docs/tutorials/acme/example/staging-issuer.yaml, word for word.
  const tutorial = `apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: letsencrypt-staging
spec:
  acme:
    # The ACME server URL
    server: https://acme-staging-v02.api.letsencrypt.org/directory
    # Email address used for ACME registration
    email: user@example.com
    # The ACME certificate profile
    profile: tlsserver
    # Name of a secret used to store the ACME account private key
    privateKeySecretRef:
      name: letsencrypt-staging
    # Enable the HTTP-01 challenge provider
    solvers:
    - http01:
        ingress:
          ingressClassName: nginx
`;
  const clusterName = freshIssuerName('letsencrypt-staging');
  const applied = await kubectl(['-n', ns, 'apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: tutorial });
  t.is((JSON.parse(applied.stdout) as { spec: { acme: { profile?: string } } }).spec.acme.profile, 'tlsserver');
  const cluster = tutorial.replace('kind: Issuer', 'kind: ClusterIssuer').replace('name: letsencrypt-staging\nspec', `name: ${clusterName}\nspec`);
  const appliedCluster = await kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], { input: cluster });
  t.is((JSON.parse(appliedCluster.stdout) as { spec: { acme: { profile?: string } } }).spec.acme.profile, 'tlsserver');
});
