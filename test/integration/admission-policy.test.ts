/**
 * The admission policy in crds/ (a ValidatingAdmissionPolicy: CEL in the API server, no webhook)
 * against the real kube-apiserver: a namespace user bound to a role like cert-manager's `edit`,
 * which RBAC lets create Challenges and Orders, cannot create one or change its spec; the same
 * user can still touch what the policy leaves alone (labels); certroute's ServiceAccount, which
 * holds the verb certroute-write-spec, can. The user is impersonated with kubectl `--as`.
 */
import test from 'ava';
import { kubectl, readEnv } from '../env/stack.ts';
import { applyYaml, freshNamespace, kubectlJson, waitFor } from '../helpers/controller.ts';
import { applyCrds } from '../helpers/crds.ts';

const env = readEnv();
let ns = '';
const user = 'alice@tenant.test';
const clusterRole = `certroute-test-cm-edit-${process.pid}`;
const writerRole = `certroute-test-writer-${process.pid}`;

/** What cert-manager's aggregated edit role grants on its kinds (rbac.yaml in its chart). */
const editRole = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ${clusterRole}}
rules:
  - apiGroups: [cert-manager.io]
    resources: [certificates, certificates/status, certificaterequests, issuers]
    verbs: [create, delete, deletecollection, patch, update, get, list, watch]
  - apiGroups: [acme.cert-manager.io]
    resources: [challenges, orders]
    verbs: [create, delete, deletecollection, patch, update, get, list, watch]
`;

const challengeYaml = (name: string, dnsName: string, token: string) => `apiVersion: acme.cert-manager.io/v1
kind: Challenge
metadata: {name: ${name}, namespace: ${ns}}
spec:
  url: https://acme.test/chall/${token}
  authorizationURL: https://acme.test/authz/${token}
  dnsName: ${dnsName}
  type: HTTP-01
  token: ${token}
  key: ${token}.thumbprint
  solver: {http01: {ingress: {}}}
  issuerRef: {name: letsencrypt, kind: ClusterIssuer}
`;

const orderYaml = (name: string) => `apiVersion: acme.cert-manager.io/v1
kind: Order
metadata: {name: ${name}, namespace: ${ns}}
spec:
  request: ${Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n').toString('base64')}
  issuerRef: {name: letsencrypt, kind: ClusterIssuer}
  dnsNames: [victim.example.com]
`;

/** kubectl as someone else; resolves with the error text when the API server refuses. */
async function as(who: string, args: string[], input?: string): Promise<{ ok: true; stdout: string } | { ok: false; error: string }> {
  try {
    const { stdout } = await kubectl(['--as', who, ...args], input === undefined ? {} : { input });
    return { ok: true, stdout };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

test.before(async () => {
  await applyCrds(env.kubeconfig);
  ns = await freshNamespace('admission');
  await applyYaml(editRole);
  await kubectl(['-n', ns, 'create', 'rolebinding', 'alice-edit', `--clusterrole=${clusterRole}`, `--user=${user}`]);
  // certroute's grant, as the chart gives it to its ServiceAccount: create, plus the policy's verb.
  await applyYaml(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ${writerRole}}
rules:
  - apiGroups: [acme.cert-manager.io]
    resources: [challenges, orders]
    verbs: [create, update, get, certroute-write-spec]
`);
  await kubectl(['-n', ns, 'create', 'serviceaccount', 'certroute']);
  await kubectl(['create', 'clusterrolebinding', `${writerRole}-${ns}`, `--clusterrole=${writerRole}`, `--serviceaccount=${ns}:certroute`]);
});

test.after.always(async () => {
  await kubectl(['delete', 'clusterrole', clusterRole, writerRole, '--ignore-not-found']).catch(() => undefined);
  if (ns) {
    // The bare API server has no namespace controller: what the namespace holds stays unless deleted.
    await kubectl(['-n', ns, 'delete', 'challenges,orders', '--all', '--wait=false']).catch(() => undefined);
    await kubectl(['delete', 'clusterrolebinding', `${writerRole}-${ns}`, '--ignore-not-found']).catch(() => undefined);
    await kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => undefined);
  }
});

test.serial('a namespace user whom RBAC lets create Challenges is refused by the admission policy', async (t) => {
  // Positive evidence first: RBAC alone would let this user do it.
  const canI = await as(user, ['-n', ns, 'auth', 'can-i', 'create', 'challenges.acme.cert-manager.io']);
  t.like(canI, { ok: true, stdout: 'yes\n' });

  // The policy is compiled moments after it is applied: wait (with dry runs, which create nothing).
  const refusal = await waitFor('the policy to refuse a dry-run create', async () => {
    const r = await as(user, ['-n', ns, 'create', '--dry-run=server', '-f', '-'], challengeYaml('probe', 'shop.example.com', 'probe-token'));
    return r.ok ? undefined : r.error;
  }, 30_000, 250);
  t.regex(refusal, /certroute-acme-spec-writers/);

  const attack = await as(user, ['-n', ns, 'create', '-f', '-'], challengeYaml('steal-shop', 'shop.example.com', 'attacker-token-1'));
  t.false(attack.ok);
  if (!attack.ok) {
    t.regex(attack.error, /only certroute creates challenges and changes their spec: alice@tenant\.test lacks the verb certroute-write-spec/);
    t.regex(attack.error, /ValidatingAdmissionPolicy 'certroute-acme-spec-writers'/);
  }
  const { items } = await kubectlJson<{ items: unknown[] }>(['-n', ns, 'get', 'challenges']);
  t.deepEqual(items, [], 'no Challenge exists');
});

test.serial('the same user cannot create an Order either', async (t) => {
  const attack = await as(user, ['-n', ns, 'create', '-f', '-'], orderYaml('steal-order'));
  t.false(attack.ok);
  if (!attack.ok) t.regex(attack.error, /only certroute creates orders/);
});

test.serial('the user cannot rewrite the spec or the owner of a Challenge certroute made, but may label it', async (t) => {
  // certroute's ServiceAccount (holding the verb) creates the Challenge: the policy lets it.
  const created = await as(`system:serviceaccount:${ns}:certroute`, ['-n', ns, 'create', '-f', '-'], challengeYaml('real', 'real.example.com', 'real-token'));
  t.like(created, { ok: true });

  const retarget = await as(user, ['-n', ns, 'patch', 'challenge', 'real', '--type=merge', '-p', JSON.stringify({ spec: { dnsName: 'victim.example.com', token: 'attacker-token-2', key: 'attacker-token-2.x' } })]);
  t.false(retarget.ok, 'spec change refused');
  if (!retarget.ok) t.regex(retarget.error, /lacks the verb certroute-write-spec/);

  const adopt = await as(user, ['-n', ns, 'patch', 'challenge', 'real', '--type=merge', '-p', JSON.stringify({ metadata: { ownerReferences: [{ apiVersion: 'acme.cert-manager.io/v1', kind: 'Order', name: 'mine', uid: '00000000-0000-0000-0000-000000000001', controller: true }] } })]);
  t.false(adopt.ok, 'owner change refused');

  const label = await as(user, ['-n', ns, 'label', 'challenge', 'real', 'team=web']);
  t.like(label, { ok: true }, 'labels are not the policy\'s business');

  const stored = await kubectlJson<{ spec: { dnsName: string; token: string }; metadata: { labels?: Record<string, string>; ownerReferences?: unknown[] } }>(['-n', ns, 'get', 'challenge', 'real']);
  t.is(stored.spec.dnsName, 'real.example.com');
  t.is(stored.spec.token, 'real-token');
  t.is(stored.metadata.ownerReferences, undefined);
  t.is(stored.metadata.labels?.team, 'web');
});

test.serial('the schema refuses a Challenge with a dnsName that is not a name, a token that is not base64url, or a wait longer than an hour, whoever writes it', async (t) => {
  // Even certroute's own writes (here the admin's, which the policy lets through) meet the schema.
  const cases: Array<[string, (y: string) => string, RegExp]> = [
    ['a path in the dnsName', (y) => y.replace('dnsName: ok.example.com', 'dnsName: "internal.example/admin?x="'), /spec\.dnsName: Invalid value/],
    ['a token with a slash', (y) => y.replace('token: ok-token', 'token: "../../admin"'), /spec\.token: Invalid value/],
    ['a 35-day wait', (y) => y.replace('solver: {http01: {ingress: {}}}', 'solver: {http01: {certroute: {waitInsteadOfSelfCheck: 840h}}}'), /waitInsteadOfSelfCheck "840h" must\s+be a Go duration between 0s and 1h/],
    ['a wait that is not a duration', (y) => y.replace('solver: {http01: {ingress: {}}}', 'solver: {http01: {certroute: {waitInsteadOfSelfCheck: soon}}}'), /waitInsteadOfSelfCheck "soon"/],
  ];
  const valid = challengeYaml('schema', 'ok.example.com', 'ok-token');
  const accepted = await kubectl(['-n', ns, 'create', '--dry-run=server', '-f', '-'], { input: valid }).then(() => 'accepted', (err: Error) => err.message);
  t.is(accepted, 'accepted', 'the valid one is accepted');
  for (const [what, mutate, message] of cases) {
    const yaml = mutate(valid);
    t.not(yaml, valid, what);
    const r = await kubectl(['-n', ns, 'create', '--dry-run=server', '-f', '-'], { input: yaml }).then(() => 'accepted', (err: Error) => err.message);
    t.regex(r, message, what);
  }
});
