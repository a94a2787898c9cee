/**
 * The requester-identity MutatingAdmissionPolicy (charts/certroute/files/requester-identity.yaml)
 * against the real kube-apiserver: a CertificateRequest comes back with spec.username, uid,
 * groups and extra of whoever created it, as cert-manager's webhook writes them, whatever the
 * client sent; and nobody changes them afterwards. Users are impersonated with kubectl `--as`.
 */
import test from 'ava';
import { kubectl, readEnv } from '../env/stack.ts';
import { requesterIdentityPolicy } from '../env/paths.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { applyYaml, cleanUpFile, freshNamespace, kubectlJson, waitFor } from '../helpers/controller.ts';
import { applyCrds } from '../helpers/crds.ts';

const env = readEnv();
let ns = '';
let csrB64 = '';
const alice = 'alice@tenant.test';
const role = 'certificaterequest-author';

interface Identity {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/**
 * What `cmctl check api` creates with a dry run: a CertificateRequest with a generated name and
 * an issuerRef to an issuer that need not exist; extra spec fields (a forgery) are optional.
 */
const requestYaml = (name: string, forged: Identity = {}): string => JSON.stringify({
  apiVersion: 'cert-manager.io/v1',
  kind: 'CertificateRequest',
  metadata: name.endsWith('-') ? { generateName: name, namespace: ns } : { name, namespace: ns },
  spec: { request: csrB64, issuerRef: { name: 'cmapichecker' }, ...forged },
});

/** kubectl as someone else; resolves with the stored (or dry-run) object, or the refusal. */
async function as(who: string[], args: string[], input?: string): Promise<{ ok: true; spec: Identity } | { ok: false; error: string }> {
  try {
    const { stdout } = await kubectl([...who, ...args, '-o', 'json'], input === undefined ? {} : { input });
    return { ok: true, spec: (JSON.parse(stdout) as { spec: Identity }).spec };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

const identityOf = (spec: Identity): Identity => ({ username: spec.username, uid: spec.uid, groups: spec.groups, extra: spec.extra });

test.before(async () => {
  await applyCrds(env.kubeconfig);
  // The stack's set-up applies it too; applied here as well so a stack started before it existed works.
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', requesterIdentityPolicy]);
  ns = await freshNamespace('identity');
  csrB64 = Buffer.from(await createCsr({ keyPem: await generatePrivateKey({ algorithm: 'ECDSA', size: 256 }), dnsNames: ['example.com'] })).toString('base64');
  // What a namespace user who may ask for certificates holds (cert-manager's edit role has more).
  await applyYaml(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: ${role}, namespace: ${ns}}
rules:
  - apiGroups: [cert-manager.io]
    resources: [certificaterequests]
    verbs: [create, get, update, patch]
`);
  await kubectl(['-n', ns, 'create', 'rolebinding', 'alice', `--role=${role}`, `--user=${alice}`]);
});

test.after.always(async () => {
  await cleanUpFile();
});

test.serial('a dry-run create as some user comes back with spec.username set to that user, as `cmctl check api` checks', async (t) => {
  // The policy is compiled moments after it is applied: wait, with dry runs, which store nothing.
  const dryRun = await waitFor('the policy to fill spec.username on a dry run', async () => {
    const r = await as(['--as', alice], ['create', '--dry-run=server', '-f', '-'], requestYaml('cmapichecker-valid-'));
    if (!r.ok) throw new Error(r.error);
    return r.spec.username ? r.spec : undefined;
  }, 30_000, 250);
  // Impersonation adds system:authenticated; a user with no uid and no extra gets neither field,
  // as cert-manager leaves empty ones out.
  t.deepEqual(identityOf(dryRun), { username: alice, uid: undefined, groups: ['system:authenticated'], extra: undefined });
  const { items } = await kubectlJson<{ items: unknown[] }>(['-n', ns, 'get', 'certificaterequests']);
  t.deepEqual(items, [], 'the dry run stored nothing');
});

test.serial('uid, groups and extra are those of the requester, each extra key a list of strings as cert-manager writes it', async (t) => {
  const who = ['--as', alice, '--as-uid', 'a1b2c3', '--as-group', 'team-web', '--as-user-extra', 'scopes=view', '--as-user-extra', 'scopes=edit', '--as-user-extra', 'reason=on-call'];
  const r = await as(who, ['create', '-f', '-'], requestYaml('full-identity'));
  t.true(r.ok, r.ok ? '' : r.error);
  const stored = await kubectlJson<{ spec: Identity }>(['-n', ns, 'get', 'certificaterequest', 'full-identity']);
  t.deepEqual(identityOf(stored.spec), {
    username: alice,
    uid: 'a1b2c3',
    groups: ['team-web', 'system:authenticated'],
    extra: { scopes: ['view', 'edit'], reason: ['on-call'] },
  });
});

test.serial('a requester cannot create a request in someone else\'s name: forged username, uid, groups and extra are replaced or removed', async (t) => {
  const forged: Identity = { username: 'system:admin', uid: 'forged-uid', groups: ['system:masters'], extra: { scopes: ['cluster-admin'] } };
  const r = await as(['--as', alice], ['create', '-f', '-'], requestYaml('forged', forged));
  t.true(r.ok, r.ok ? '' : r.error);
  const stored = await kubectlJson<{ spec: Identity }>(['-n', ns, 'get', 'certificaterequest', 'forged']);
  // alice has no uid and no extra: the forged ones are gone, not kept.
  t.deepEqual(identityOf(stored.spec), { username: alice, uid: undefined, groups: ['system:authenticated'], extra: undefined });
});

test.serial('nobody can change the requester identity after creation, neither the requester nor a cluster admin', async (t) => {
  await kubectl(['create', '-f', '-'], { input: requestYaml('settled') });
  const before = await kubectlJson<{ spec: Identity }>(['-n', ns, 'get', 'certificaterequest', 'settled']);
  t.truthy(before.spec.username, 'created with an identity');

  const attempts: Array<[string, string[], object]> = [
    ['the requester renames it', ['--as', alice], { spec: { username: alice } }],
    ['an admin adds a group', [], { spec: { groups: [...(before.spec.groups ?? []), 'system:masters'] } }],
    ['an admin sets a uid', [], { spec: { uid: 'new-uid' } }],
    ['an admin adds extra', [], { spec: { extra: { scopes: ['all'] } } }],
  ];
  for (const [what, who, patch] of attempts) {
    const r = await as(who, ['-n', ns, 'patch', 'certificaterequest', 'settled', '--type=merge', '-p', JSON.stringify(patch)]);
    t.false(r.ok, what);
    if (!r.ok) t.regex(r.error, /the spec of a CertificateRequest cannot change after creation/, what);
  }
  const after = await kubectlJson<{ spec: Identity }>(['-n', ns, 'get', 'certificaterequest', 'settled']);
  t.deepEqual(identityOf(after.spec), identityOf(before.spec));
});
