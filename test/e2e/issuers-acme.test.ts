/**
 * ACME issuers on the real stack: the account is registered once, again
 * only when the email (or server, or key) changes, never on a restart; and
 * external account binding works against a Pebble that requires it.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubectl, readEnv, restart } from '../env/stack.ts';
import { applyYaml, freshNamespace, pebbleClusterIssuer, startController, waitFor, waitForCertificateRevision } from '../helpers/controller.ts';
import { freePorts } from '../env/ports.ts';

interface IssuerView {
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>; acme?: { uri?: string; lastRegisteredEmail?: string } };
}

async function issuer(name: string): Promise<IssuerView> {
  return JSON.parse((await kubectl(['get', 'clusterissuer', name, '-o', 'json'])).stdout) as IssuerView;
}

async function waitReady(name: string, want: 'True' | 'False' = 'True'): Promise<IssuerView> {
  return waitFor(`ClusterIssuer ${name} Ready=${want}`, async () => {
    const i = await issuer(name);
    return i.status?.conditions?.find((c) => c.type === 'Ready')?.status === want ? i : undefined;
  }, 60_000);
}

async function accountRequests(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return text.split('\n')
    .filter((l) => l.startsWith('certmanager_http_acme_client_request_count') && /action="(sign-me-up|new-acct|new-account)"/.test(l))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

test.serial('the ACME account is registered once, updated when the email changes, and not registered again after a restart', async (t) => {
  const name = `pebble-acct-${Date.now().toString(36)}`;
  const [port] = (await freePorts(1)) as [number];
  await applyYaml(pebbleClusterIssuer(name));
  let controller = startController([`--metrics-port=${port}`]);
  try {
    const first = await waitReady(name);
    t.is(first.status?.conditions?.[0]?.reason, 'ACMEAccountRegistered');
    t.is(first.status?.acme?.lastRegisteredEmail, 'ops@example.com');
    t.regex(first.status?.acme?.uri ?? '', /^https:\/\/127\.0\.0\.1:\d+\/my-account\//);
    t.is(await accountRequests(port), 1);

    await kubectl(['patch', 'clusterissuer', name, '--type=merge', '-p', JSON.stringify({ spec: { acme: { email: 'security@example.com' } } })]);
    const updated = await waitFor('the new email recorded', async () => {
      const i = await issuer(name);
      return i.status?.acme?.lastRegisteredEmail === 'security@example.com' ? i : undefined;
    });
    t.is(updated.status?.acme?.uri, first.status?.acme?.uri, 'the same key keeps the same account');

    await controller.stop();
    controller = startController([`--metrics-port=${port}`]);
    await waitFor('metrics after restart', async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).ok);
    await sleep(1_500);
    t.is(await accountRequests(port), 0, 'a restarted controller does not talk to the CA to register');
    t.is((await waitReady(name)).status?.acme?.uri, first.status?.acme?.uri);
  } finally {
    await controller.stop();
    await kubectl(['delete', 'clusterissuer', name, '--wait=false']);
  }
});

test.serial('external account binding: Pebble requiring EAB accepts the bound account and certificates issue', async (t) => {
  const keyId = 'kid-certroute';
  const hmac = randomBytes(32).toString('base64url');
  await restart('pebble', { externalAccountBinding: { required: true, macKeys: { [keyId]: hmac } } });
  const name = `pebble-eab-${Date.now().toString(36)}`;
  const unbound = `${name}-unbound`;
  const controller = startController();
  try {
    await kubectl(['-n', 'certroute', 'create', 'secret', 'generic', `${name}-eab`, `--from-literal=secret=${hmac}`]);
    await applyYaml(pebbleClusterIssuer(name, readEnv(), '').replace('    privateKeySecretRef:', `    externalAccountBinding:\n      keyID: ${keyId}\n      keySecretRef:\n        name: ${name}-eab\n        key: secret\n    privateKeySecretRef:`));
    await applyYaml(pebbleClusterIssuer(unbound));
    await waitReady(name);
    const refused = await waitReady(unbound, 'False');
    const cond = refused.status?.conditions?.find((c) => c.type === 'Ready');
    t.is(cond?.reason, 'ErrRegisterACMEAccount');
    t.regex(cond?.message ?? '', /requires external account binding: set spec\.acme\.externalAccountBinding/);

    const ns = await freshNamespace('eab');
    await applyYaml(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: bound, namespace: ${ns}}
spec:
  secretName: bound-tls
  dnsNames: [bound.eab.test]
  issuerRef: {name: ${name}, kind: ClusterIssuer}
`);
    await waitForCertificateRevision(ns, 'bound', 1);
    t.pass();
  } finally {
    await controller.stop();
    await kubectl(['delete', 'clusterissuer', name, unbound, '--wait=false']);
    await restart('pebble');
  }
});

test.serial('when the CA forgets the account (Pebble restarted), the issuer registers again and issuance carries on', async (t) => {
  const name = `pebble-reset-${Date.now().toString(36)}`;
  await applyYaml(pebbleClusterIssuer(name));
  const controller = startController();
  try {
    const before = await waitReady(name);
    await restart('pebble');
    const ns = await freshNamespace('reset');
    await applyYaml(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: after-reset, namespace: ${ns}}
spec:
  secretName: after-reset-tls
  dnsNames: [after.reset.test]
  issuerRef: {name: ${name}, kind: ClusterIssuer}
`);
    await waitForCertificateRevision(ns, 'after-reset', 1, 90_000);
    const after = await issuer(name);
    t.not(after.status?.acme?.uri, before.status?.acme?.uri, 'a new account at the reset CA');
    t.is(after.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  } finally {
    await controller.stop();
    await kubectl(['delete', 'clusterissuer', name, '--wait=false']);
  }
});
