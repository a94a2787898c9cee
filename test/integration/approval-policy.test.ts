/**
 * The approval policy in crds/ (a ValidatingAdmissionPolicy, as cert-manager's webhook checks it)
 * against the real kube-apiserver. A namespace user whom RBAC lets update
 * certificaterequests/status tries to approve her own request the way `cmctl approve` does and is
 * refused; an approver holding `approve` on the issuer's signer name may; once set, a decision
 * never changes. Users are impersonated with kubectl `--as`.
 */
import test from 'ava';
import { kubectl, readEnv } from '../env/stack.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { applyYaml, cleanUpFile, freshNamespace, kubectlJson, waitFor } from '../helpers/controller.ts';
import { applyCrds } from '../helpers/crds.ts';

const env = readEnv();
let ns = '';
let csrB64 = '';
const alice = 'alice@tenant.test';
const approver = `approver-${process.pid}@pki.test`;
const approverRole = `certroute-test-approver-${process.pid}`;

interface Condition { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }
interface RequestView { status?: { conditions?: Condition[] } }

const requestYaml = (name: string, issuerRef: Record<string, string>): string => JSON.stringify({
  apiVersion: 'cert-manager.io/v1', kind: 'CertificateRequest',
  metadata: { name, namespace: ns },
  spec: { request: csrB64, issuerRef },
});

const decision = (type: 'Approved' | 'Denied', by = 'cmctl'): Condition => ({
  type, status: 'True', reason: 'KubectlCertManager', message: `manually ${type === 'Approved' ? 'approved' : 'denied'} by "${by}"`,
  lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
});

/** `cmctl approve` / `cmctl deny` as `who`: read, add the condition, PUT the status subresource. */
async function setStatus(who: string[], name: string, edit: (conditions: Condition[]) => Condition[], dryRun = false): Promise<{ ok: true } | { ok: false; error: string }> {
  const cr = await kubectlJson<RequestView & Record<string, unknown>>(['-n', ns, 'get', 'certificaterequest', name]);
  const updated = { ...cr, status: { ...cr.status, conditions: edit(cr.status?.conditions ?? []) } };
  try {
    await kubectl([...who, 'replace', '--subresource=status', ...(dryRun ? ['--dry-run=server'] : []), '-f', '-'], { input: JSON.stringify(updated) });
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

const conditionsOf = async (name: string): Promise<Condition[]> =>
  (await kubectlJson<RequestView>(['-n', ns, 'get', 'certificaterequest', name])).status?.conditions ?? [];

test.before(async () => {
  await applyCrds(env.kubeconfig);
  ns = await freshNamespace('approval-policy');
  csrB64 = Buffer.from(await createCsr({ keyPem: await generatePrivateKey({ algorithm: 'ECDSA', size: 256 }), dnsNames: ['app.example.com'] })).toString('base64');
  // RBAC alone would let alice approve: she may update the status of requests in her namespace.
  await applyYaml(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: requester, namespace: ${ns}}
rules:
  - apiGroups: [cert-manager.io]
    resources: [certificaterequests, certificaterequests/status]
    verbs: [create, get, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ${approverRole}}
rules:
  - apiGroups: [cert-manager.io]
    resources: [certificaterequests, certificaterequests/status]
    verbs: [get, update]
  - apiGroups: [cert-manager.io]
    resources: [signers]
    verbs: [approve]
    resourceNames: [issuers.cert-manager.io/${ns}.internal, clusterissuers.cert-manager.io/*]
`);
  await kubectl(['-n', ns, 'create', 'rolebinding', 'alice', '--role=requester', `--user=${alice}`]);
  await kubectl(['create', 'clusterrolebinding', approverRole, `--clusterrole=${approverRole}`, `--user=${approver}`]);
  for (const [name, ref] of [['mine', { name: 'internal' }], ['other-issuer', { name: 'partner' }], ['cluster', { name: 'letsencrypt', kind: 'ClusterIssuer' }]] as const) {
    await kubectl(['--as', alice, 'create', '-f', '-'], { input: requestYaml(name, ref) });
  }
});

test.after.always(async () => {
  await kubectl(['delete', 'clusterrole,clusterrolebinding', approverRole, '--ignore-not-found']).catch(() => undefined);
  await cleanUpFile();
});

test.serial('a requester whom RBAC lets update the status cannot approve her own request', async (t) => {
  // The policy is compiled moments after it is applied: wait (with dry runs) until it refuses.
  await waitFor('the policy to refuse a dry-run approval', async () => {
    const r = await setStatus(['--as', alice], 'mine', (c) => [...c, decision('Approved')], true);
    return !r.ok && r.error.includes('certroute-certificaterequest-approval');
  }, 30_000, 250);
  const attack = await setStatus(['--as', alice], 'mine', (c) => [...c, decision('Approved')]);
  t.false(attack.ok);
  const refusal = attack.ok ? '' : attack.error;
  t.regex(refusal, /user alice@tenant\.test does not have permissions to set approved\/denied conditions for issuer issuers\.cert-manager\.io\/[a-z0-9-]+\.internal/);
  t.regex(refusal, /certroute-certificaterequest-approval/);
  const denial = await setStatus(['--as', alice], 'mine', (c) => [...c, decision('Denied')]);
  t.false(denial.ok, 'nor deny it');
  t.deepEqual(await conditionsOf('mine'), []);
});

test.serial('a status write that leaves the decision alone needs no approve verb', async (t) => {
  const r = await setStatus(['--as', alice], 'mine', (c) => [...c, { type: 'Ready', status: 'False', reason: 'Pending', message: 'waiting', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }]);
  t.like(r, { ok: true });
});

test.serial('an approver with approve on the issuer\'s signer name approves; on another issuer it is refused', async (t) => {
  t.like(await setStatus(['--as', approver], 'mine', (c) => [...c, decision('Approved')]), { ok: true });
  t.like((await conditionsOf('mine')).find((c) => c.type === 'Approved'), { status: 'True', reason: 'KubectlCertManager', message: 'manually approved by "cmctl"' });
  const other = await setStatus(['--as', approver], 'other-issuer', (c) => [...c, decision('Approved')]);
  t.false(other.ok);
  if (!other.ok) t.regex(other.error, /issuers\.cert-manager\.io\/[a-z0-9-]+\.partner/);
  // clusterissuers.cert-manager.io/* covers every ClusterIssuer.
  t.like(await setStatus(['--as', approver], 'cluster', (c) => [...c, decision('Denied')]), { ok: true });
});

test.serial('once set, a decision cannot be changed, removed or joined by the other one, even by a cluster admin', async (t) => {
  const attempts: Array<[string, (c: Condition[]) => Condition[], RegExp]> = [
    ['approved turned denied', (c) => [...c.filter((x) => x.type !== 'Approved'), decision('Denied')], /may not be modified once set/],
    ['approval removed', (c) => c.filter((x) => x.type !== 'Approved'), /may not be modified once set/],
    ['approval rewritten', (c) => c.map((x) => (x.type === 'Approved' ? { ...x, message: 'approved by someone else' } : x)), /may not be modified once set/],
    ['denied added beside approved', (c) => [...c, decision('Denied')], /cannot coexist/],
  ];
  for (const [what, edit, message] of attempts) {
    const r = await setStatus([], 'mine', edit);
    t.false(r.ok, what);
    if (!r.ok) t.regex(r.error, message, what);
  }
  const flip = await setStatus([], 'cluster', (c) => c.map((x) => (x.type === 'Denied' ? { ...x, status: 'False' } : x)));
  t.false(flip.ok, 'a denial cannot be withdrawn');
  t.like((await conditionsOf('mine')).find((c) => c.type === 'Approved'), { status: 'True', message: 'manually approved by "cmctl"' });
});
