/**
 * ACME issuers on the real stack: the account is registered once, again
 * only when the email (or server, or key) changes, never on a restart; and
 * external account binding works against a Pebble that requires it.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { kubectl, readEnv, restart } from '../env/stack.ts';
import {
  applyYaml, cleanUpFile, CONTROLLER_NAMESPACE, freshNamespace, kubectlJson, pebbleClusterIssuer, readLog, startController, waitFor,
  waitForCertificateRevision,
} from '../helpers/controller.ts';
import { PebblePaths, requestsTo, startAcmeProxy } from '../helpers/acme-proxy.ts';
import { applyIssuer, certificateYaml, deleteIssuer, freshIssuerName, waitIssuerReady as waitReady, type IssuerView } from '../helpers/issuance.ts';

const issuers: string[] = [];
let pebbleChanged = false;

/** A ClusterIssuer name no earlier run used, deleted after the file. */
function issuerName(prefix: string): string {
  const name = freshIssuerName(prefix);
  issuers.push(name);
  return name;
}

test.after.always(async () => {
  await cleanUpFile();
  for (const name of issuers) await deleteIssuer(name);
  // Pebble as every other file expects it: its defaults, no EAB.
  if (pebbleChanged) await restart('pebble');
});

const issuer = (name: string): Promise<IssuerView> => kubectlJson<IssuerView>(['get', 'clusterissuer', name]);

test.serial('the ACME account is registered once, updated when the email changes, and not registered again after a restart', async (t) => {
  const name = issuerName('pebble-acct');
  // The CA's own view of new-account requests: an ACME proxy in front of Pebble counts them.
  const proxy = await startAcmeProxy(readEnv());
  t.teardown(() => proxy.close());
  const accountRequests = (since = 0) => requestsTo(proxy, PebblePaths.newAccount).filter((r) => r.at >= since).length;
  await applyIssuer(name, proxy.directory);
  let controller = await startController();
  try {
    const first = await waitReady(name);
    t.is(first.status?.conditions?.[0]?.reason, 'ACMEAccountRegistered');
    t.is(first.status?.acme?.lastRegisteredEmail, 'ops@example.com');
    t.regex(first.status?.acme?.uri ?? '', /^https:\/\/127\.0\.0\.1:\d+\/my-account\//);
    t.is(accountRequests(), 1, 'one new-account request reached the CA');

    await kubectl(['patch', 'clusterissuer', name, '--type=merge', '-p', JSON.stringify({ spec: { acme: { email: 'security@example.com' } } })]);
    const updated = await waitFor('the new email recorded', async () => {
      const i = await issuer(name);
      return i.status?.acme?.lastRegisteredEmail === 'security@example.com' ? i : undefined;
    });
    t.is(updated.status?.acme?.uri, first.status?.acme?.uri, 'the same key keeps the same account');

    await controller.stop();
    const restartedAt = Date.now();
    const restarted = await startController();
    controller = restarted;
    // Evidence first: the restarted controller has reconciled this issuer.
    await waitFor('the restarted controller to reconcile the issuer', async () =>
      readLog(restarted).split('\n').some((l) => l.includes('"controller":"clusterissuers"') && l.includes(`/${name}"`) && l.includes('"msg":"reconciled"')), 30_000);
    t.is(accountRequests(restartedAt), 0, 'a restarted controller does not talk to the CA to register');
    t.is((await waitReady(name)).status?.acme?.uri, first.status?.acme?.uri);
  } finally {
    await controller.stop();
  }
});

test.serial('external account binding: Pebble requiring EAB accepts the bound account and certificates issue', async (t) => {
  const keyId = 'kid-certroute';
  const hmac = randomBytes(32).toString('base64url');
  pebbleChanged = true;
  await restart('pebble', { externalAccountBinding: { required: true, macKeys: { [keyId]: hmac } } });
  const name = issuerName('pebble-eab');
  const unbound = issuerName(`${name}-unbound`);
  const controller = await startController();
  try {
    await kubectl(['-n', CONTROLLER_NAMESPACE, 'create', 'secret', 'generic', `${name}-eab`, `--from-literal=secret=${hmac}`]);
    await applyYaml(pebbleClusterIssuer(name, readEnv(), { acme: { externalAccountBinding: { keyID: keyId, keySecretRef: { name: `${name}-eab`, key: 'secret' } } } }));
    await applyYaml(pebbleClusterIssuer(unbound));
    await waitReady(name);
    const refused = await waitReady(unbound, { want: 'False' });
    const cond = refused.status?.conditions?.find((c) => c.type === 'Ready');
    t.is(cond?.reason, 'ErrRegisterACMEAccount');
    t.regex(cond?.message ?? '', /requires external account binding: set spec\.acme\.externalAccountBinding/);

    const ns = await freshNamespace('eab');
    await applyYaml(certificateYaml(ns, 'bound', ['bound.eab.test'], name));
    const issued = await waitForCertificateRevision(ns, 'bound', 1);
    t.is(issued.status?.revision, 1, 'the bound account\'s certificate was issued');
  } finally {
    await controller.stop();
    await kubectl(['-n', CONTROLLER_NAMESPACE, 'delete', 'secret', `${name}-eab`, '--ignore-not-found', '--wait=false']);
    await restart('pebble');
    pebbleChanged = false;
  }
});

test.serial('when the CA forgets the account (Pebble restarted), the issuer registers again and issuance carries on', async (t) => {
  const name = issuerName('pebble-reset');
  await applyYaml(pebbleClusterIssuer(name));
  const controller = await startController();
  try {
    const before = await waitReady(name);
    await restart('pebble');
    const ns = await freshNamespace('reset');
    await applyYaml(certificateYaml(ns, 'after-reset', ['after.reset.test'], name));
    await waitForCertificateRevision(ns, 'after-reset', 1, 90_000);
    const after = await issuer(name);
    t.not(after.status?.acme?.uri, before.status?.acme?.uri, 'a new account at the reset CA');
    t.is(after.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  } finally {
    await controller.stop();
  }
});
