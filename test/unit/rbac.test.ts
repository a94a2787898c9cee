/**
 * Least privilege, checked from both ends. `grants` below is the RBAC the controller needs, one
 * line per grant with the code that needs it. The test holds it against:
 *
 * - the code: a scan of every module `certroute controller` loads (src/cli/controller.ts and its
 *   relative imports, so the operator CLI's own calls do not count) for KubeClient calls,
 *   informers, status writes and owner references with blockOwnerDeletion. Every pair the code
 *   uses must be granted, and every granted pair must be used;
 * - the chart: `helm template` of templates/rbac.yaml in each mode, expanded to
 *   (scope, resource, verb, resourceName) tuples, must equal the table's rows for that mode.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { Resources, type ResourceDef } from '../../src/api/types.ts';
import { CHALLENGE_HTTPROUTE_NAME } from '../../src/shim/gateway-challenge-route.ts';
import { CHALLENGE_ROUTE_NAME } from '../../src/traefik/challenge-route.ts';
import { binary } from '../env/binaries.ts';

const repo = resolve(import.meta.dirname, '..', '..');
const chart = join(repo, 'charts', 'certroute');
const run = promisify(execFile);

/** The Lease name is the literal default of --lease-name in the controller's leaderElection options. */
const LEASE_NAME = /leaderElection:\s*{[^}]*?name:\s*(?:values\['lease-name'\]\s*\?\?\s*)?'([^']+)'/s.exec(readFileSync(join(repo, 'src/cli/controller.ts'), 'utf8'))?.[1] ?? 'not found';

interface Mode {
  shimOnly: boolean;
  wiring: 'route' | 'middleware' | 'gateway';
  /** gatewayAPI.enabled: the Gateway shim (never in shim-only mode). */
  gatewayAPI: boolean;
  leaderElection: boolean;
  /** No traefik.selfCheckAddress: the controller reads Traefik's Service at start-up. */
  readsTraefikService: boolean;
  /** shim.defaultSecretName: the shim patches an empty spec.tls.secretName. */
  defaultSecretName: boolean;
  /** caInjector.enabled (the CA injector runs only outside shim-only mode). */
  caInjector: boolean;
  /** autoApprove: certroute sets the Approved condition itself. */
  autoApprove?: boolean;
}

type Scope = 'cluster' | 'release namespace' | 'traefik namespace';

interface Grant {
  scope: Scope;
  group: string;
  resource: string;
  verbs: string[];
  names?: string[];
  when: (m: Mode) => boolean;
  /** The code that needs it. */
  why: string;
}

/** The custom verb the admission policy checks with the authorizer. */
const ADMISSION_VERB = /check\('([^']+)'\)/.exec(readFileSync(join(repo, 'crds/certroute.io_admission-policy.yaml'), 'utf8'))?.[1] ?? 'not found';

/** The verb the approval policy checks; the code never calls it. */
const APPROVE_VERB = 'approve';

const always = (): boolean => true;
const full = (m: Mode): boolean => !m.shimOnly;
const injector = (m: Mode): boolean => full(m) && m.caInjector;
const gatewayShim = (m: Mode): boolean => full(m) && m.gatewayAPI;
const GATEWAY = 'gateway.networking.k8s.io';
const CM = 'cert-manager.io';
const ACME = 'acme.cert-manager.io';
const TRAEFIK = 'traefik.io';

/** What the controller uses, derived by reading src/ (see the file header for how it is kept true). */
const grants: Grant[] = [
  // Informers (the Manager's caches and the Traefik controllers'), cluster-wide, in every mode: shim-only runs them too.
  { scope: 'cluster', group: CM, resource: 'certificates', verbs: ['list', 'watch'], when: always, why: 'informer' },
  { scope: 'cluster', group: CM, resource: 'certificaterequests', verbs: ['list', 'watch'], when: always, why: 'informer' },
  { scope: 'cluster', group: CM, resource: 'issuers', verbs: ['list', 'watch'], when: always, why: 'informer' },
  { scope: 'cluster', group: CM, resource: 'clusterissuers', verbs: ['list', 'watch'], when: always, why: 'informer' },
  { scope: 'cluster', group: ACME, resource: 'orders', verbs: ['list', 'watch'], when: always, why: 'informer' },
  { scope: 'cluster', group: ACME, resource: 'challenges', verbs: ['list', 'watch'], when: always, why: 'informer' },
  { scope: 'cluster', group: '', resource: 'secrets', verbs: ['list', 'watch'], when: always, why: 'informer (label certroute managed; RBAC cannot narrow by label)' },
  { scope: 'cluster', group: TRAEFIK, resource: 'ingressroutes', verbs: ['list', 'watch'], when: always, why: 'informer for the shim and the challenge route' },

  // The route-kind shims (src/shim/), every mode.
  { scope: 'cluster', group: CM, resource: 'certificates', verbs: ['create', 'update', 'delete'], when: always, why: 'shim: create/replace/delete the Certificate it owns' },
  { scope: 'cluster', group: TRAEFIK, resource: 'ingressroutes', verbs: ['patch'], when: (m) => m.defaultSecretName, why: 'shim: merge-patch an empty spec.tls.secretName (shim.defaultSecretName)' },
  { scope: 'cluster', group: TRAEFIK, resource: 'ingressroutes/finalizers', verbs: ['update'], when: always, why: 'shim: Certificate ownerReference to the IngressRoute with blockOwnerDeletion' },
  { scope: 'cluster', group: '', resource: 'events', verbs: ['create', 'patch'], when: always, why: 'src/kube/events.ts: create, then patch the count of a repeat' },

  // The reconcilers (src/controller/*), not in shim-only mode.
  { scope: 'cluster', group: CM, resource: 'certificates/status', verbs: ['update'], when: full, why: 'certificates.ts writeStatus' },
  { scope: 'cluster', group: CM, resource: 'certificates/finalizers', verbs: ['update'], when: full, why: 'CertificateRequest and next-key Secret owned by the Certificate with blockOwnerDeletion' },
  { scope: 'cluster', group: CM, resource: 'certificaterequests', verbs: ['create', 'delete'], when: full, why: 'certificates.ts: request a revision, drop failed and old ones' },
  { scope: 'cluster', group: CM, resource: 'certificaterequests/status', verbs: ['update'], when: full, why: 'certificaterequests.ts writeStatus (approval, issuance)' },
  { scope: 'cluster', group: CM, resource: 'certificaterequests/finalizers', verbs: ['update'], when: full, why: 'Order owned by the CertificateRequest with blockOwnerDeletion' },
  { scope: 'cluster', group: CM, resource: 'issuers/status', verbs: ['update'], when: full, why: 'issuers.ts writeStatus' },
  { scope: 'cluster', group: CM, resource: 'clusterissuers/status', verbs: ['update'], when: full, why: 'issuers.ts writeStatus' },
  { scope: 'cluster', group: ACME, resource: 'orders', verbs: ['create', 'delete'], when: full, why: 'certificaterequests.ts creates, orders.ts deletes' },
  { scope: 'cluster', group: ACME, resource: 'orders/status', verbs: ['update'], when: full, why: 'orders.ts writeStatus' },
  { scope: 'cluster', group: ACME, resource: 'orders/finalizers', verbs: ['update'], when: full, why: 'Challenge owned by the Order with blockOwnerDeletion' },
  { scope: 'cluster', group: ACME, resource: 'challenges', verbs: ['create', 'delete', 'patch'], when: full, why: 'orders.ts creates and deletes; challenges.ts patches its finalizer away' },
  { scope: 'cluster', group: ACME, resource: 'challenges/status', verbs: ['update'], when: full, why: 'challenges.ts writeStatus' },
  { scope: 'cluster', group: '', resource: 'secrets', verbs: ['get', 'create', 'update', 'delete'], when: full, why: 'certificates, issuers, certificaterequests: keys, issued certificates, ACME account keys' },
  // Not an API verb: what the admission policy in crds/ checks before a spec write.
  { scope: 'cluster', group: ACME, resource: 'orders', verbs: [ADMISSION_VERB], when: full, why: 'crds/certroute.io_admission-policy.yaml: only its holders create Orders or change their spec' },
  { scope: 'cluster', group: ACME, resource: 'challenges', verbs: [ADMISSION_VERB], when: full, why: 'crds/certroute.io_admission-policy.yaml: only its holders create Challenges or change their spec' },
  // Not an API resource: what the approval policy in crds/ checks before an Approved condition is set.
  { scope: 'cluster', group: CM, resource: 'signers', verbs: [APPROVE_VERB], names: ['issuers.cert-manager.io/*', 'clusterissuers.cert-manager.io/*'], when: (m) => full(m) && m.autoApprove !== false, why: 'certificaterequests.ts approves (autoApprove), as cert-manager\'s approver' },

  // The Ingress and Gateway shims (src/shim/ingress.ts, gateway.ts), never in shim-only mode.
  { scope: 'cluster', group: 'networking.k8s.io', resource: 'ingresses', verbs: ['list', 'watch'], when: full, why: 'ingress shim: informer' },
  { scope: 'cluster', group: 'networking.k8s.io', resource: 'ingresses/finalizers', verbs: ['update'], when: full, why: 'ingress shim: Certificate ownerReference to the Ingress with blockOwnerDeletion' },
  { scope: 'cluster', group: GATEWAY, resource: 'gateways', verbs: ['list', 'watch'], when: gatewayShim, why: 'gateway shim and challenge HTTPRoute: informer' },
  { scope: 'cluster', group: GATEWAY, resource: 'gateways/finalizers', verbs: ['update'], when: gatewayShim, why: 'gateway shim: Certificate ownerReference to the Gateway with blockOwnerDeletion' },

  // The CA injector (src/cainjector/), on by default, never in shim-only mode.
  ...(['validatingwebhookconfigurations', 'mutatingwebhookconfigurations'] as const).map((resource) => ({ scope: 'cluster' as const, group: 'admissionregistration.k8s.io', resource, verbs: ['get', 'list', 'watch', 'patch'], when: injector, why: 'cainjector: informer, caBundle merge patch, fresh read after a conflict' })),
  { scope: 'cluster', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions', verbs: ['get', 'list', 'watch', 'patch'], when: injector, why: 'cainjector: informer, conversion webhook caBundle patch, fresh read after a conflict' },
  { scope: 'cluster', group: 'apiregistration.k8s.io', resource: 'apiservices', verbs: ['get', 'list', 'watch', 'patch'], when: injector, why: 'cainjector: informer, spec.caBundle patch, fresh read after a conflict' },

  // Leader election (src/kube/leader.ts), in the release namespace.
  { scope: 'release namespace', group: 'coordination.k8s.io', resource: 'leases', verbs: ['create'], when: (m) => m.leaderElection, why: 'leader.ts: first candidate creates the Lease' },
  { scope: 'release namespace', group: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'update'], names: [LEASE_NAME], when: (m) => m.leaderElection, why: 'leader.ts: read, renew, take over, release' },

  // Route mode (src/traefik/challenge-route.ts): the one challenge IngressRoute.
  { scope: 'release namespace', group: TRAEFIK, resource: 'ingressroutes', verbs: ['create'], when: (m) => full(m) && m.wiring === 'route', why: 'challenge-route.ts: create it' },
  { scope: 'release namespace', group: TRAEFIK, resource: 'ingressroutes', verbs: ['get', 'update', 'delete'], names: [CHALLENGE_ROUTE_NAME], when: (m) => full(m) && m.wiring === 'route', why: 'challenge-route.ts: read and restore it' },
  { scope: 'release namespace', group: TRAEFIK, resource: 'ingressroutes', verbs: ['get', 'delete'], names: [CHALLENGE_ROUTE_NAME], when: (m) => !(full(m) && m.wiring === 'route'), why: 'challenge-route.ts: remove a route left by an earlier route-mode run' },

  // Gateway wiring (src/shim/gateway-challenge-route.ts): the one challenge HTTPRoute, read by name.
  { scope: 'release namespace', group: GATEWAY, resource: 'httproutes', verbs: ['create'], when: (m) => gatewayShim(m) && m.wiring === 'gateway', why: 'gateway-challenge-route.ts: create it' },
  { scope: 'release namespace', group: GATEWAY, resource: 'httproutes', verbs: ['get', 'update', 'delete'], names: [CHALLENGE_HTTPROUTE_NAME], when: (m) => gatewayShim(m) && m.wiring === 'gateway', why: 'gateway-challenge-route.ts: read and restore it' },
  { scope: 'release namespace', group: GATEWAY, resource: 'httproutes', verbs: ['get', 'delete'], names: [CHALLENGE_HTTPROUTE_NAME], when: (m) => gatewayShim(m) && m.wiring !== 'gateway', why: 'gateway-challenge-route.ts: remove a route left by an earlier gateway-wiring run' },

  // TLS-ALPN-01 (src/solvers/tls-alpn01.ts): one IngressRouteTCP per challenge, names not known in advance.
  { scope: 'release namespace', group: TRAEFIK, resource: 'ingressroutetcps', verbs: ['get', 'create', 'update', 'delete'], when: full, why: 'tls-alpn01.ts: present (find, create, replace) and cleanUp' },

  // Self-check target (challenge-route.ts resolveTraefikWeb), read once at start-up.
  { scope: 'traefik namespace', group: '', resource: 'services', verbs: ['get'], names: ['traefik'], when: (m) => m.readsTraefikService, why: "resolveTraefikWeb: Traefik's web/websecure ports" },
];

const tuple = (scope: string, group: string, resource: string, verb: string, name?: string): string =>
  `${scope}: ${group || 'core'}/${resource} ${verb}${name ? ` [${name}]` : ''}`;

function expected(mode: Mode): string[] {
  return grants.filter((g) => g.when(mode)).flatMap((g) => g.verbs.flatMap((v) => (g.names ?? [undefined]).map((n) => tuple(g.scope, g.group, g.resource, v, n)))).sort();
}

// ---------------------------------------------------------------- the code side

/** Every module the controller command loads: relative imports from src/cli/controller.ts. */
function controllerModules(): string[] {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+\.ts)'/g)) {
      const target = resolve(dirname(file), m[1] ?? '');
      if (existsSync(target)) visit(target);
    }
  };
  visit(join(repo, 'src/cli/controller.ts'));
  return [...seen].map((f) => relative(repo, f)).sort();
}

const verbOf: Record<string, string> = { get: 'get', find: 'get', list: 'list', create: 'create', replace: 'update', replaceStatus: 'update', mergePatch: 'patch', delete: 'delete' };

const cainjectorTargets = [
  'admissionregistration.k8s.io/validatingwebhookconfigurations', 'admissionregistration.k8s.io/mutatingwebhookconfigurations',
  'apiextensions.k8s.io/customresourcedefinitions', 'apiregistration.k8s.io/apiservices',
];

/**
 * Calls whose resource is a variable, not `Resources.x`: what each one reaches, by reading the
 * code around it. A new call of this kind fails the test until it is added here.
 */
const indirect: Record<string, string[]> = {
  // ListWatch of the Informer's own def: counted through each `informers.for<…>(Resources.x)` (or `inf<…>`).
  'src/kube/listwatch.ts list(this.def)': [],
  // writeStatus's own call: counted through each `writeStatus(ctx, Resources.x, …)`.
  'src/controller/status.ts replaceStatus(def)': [],
  // createObject's own call: counted through each `createObject<…>(ctx, Resources.x, …)`.
  'src/controller/status.ts create(def)': [],
  // deleteObject's own call: counted through each `deleteObject(ctx, Resources.x, …)`.
  'src/controller/status.ts delete(def)': [],
  // The issuer reconciler serves both kinds with one def.
  'src/controller/issuers.ts writeStatus(def)': ['cert-manager.io/issuers/status update', 'cert-manager.io/clusterissuers/status update'],
  // A lost ACME account is cleared from the status of either kind of issuer.
  'src/controller/issuers.ts writeStatus(key.kind)': ['cert-manager.io/issuers/status update', 'cert-manager.io/clusterissuers/status update'],
  // The injector patches and re-reads its four target kinds through one def per kind.
  'src/cainjector/injector.ts mergePatch(kind.def)': cainjectorTargets.map((r) => `${r} patch`),
  'src/cainjector/injector.ts get(kind.def)': cainjectorTargets.map((r) => `${r} get`),
  // resolveTraefikWeb's Service def.
  'src/traefik/challenge-route.ts find(def)': ['core/services get'],
};

const pair = (group: string, resource: string, verb: string): string => `${group || 'core'}/${resource} ${verb}`;

function resourceOf(expr: string): { group: string; plural: string } | undefined {
  if (expr === 'eventsDef') return { group: '', plural: 'events' };
  const key = /^Resources\.(\w+)$/.exec(expr)?.[1];
  const def = key ? (Resources as Record<string, ResourceDef>)[key] : undefined;
  return def ? { group: def.group, plural: def.plural } : undefined;
}

/** (group/resource verb) pairs the controller's code uses, and call sites it could not resolve. */
function scanCode(): { used: Set<string>; unresolved: string[] } {
  const used = new Set<string>();
  const unresolved: string[] = [];
  const note = (key: string): void => {
    const via = indirect[key];
    if (via) for (const p of via) used.add(p);
    else unresolved.push(key);
  };
  for (const file of controllerModules()) {
    const text = readFileSync(join(repo, file), 'utf8');
    for (const m of text.matchAll(/\bclient\.(get|find|list|create|replace|replaceStatus|mergePatch|delete)\s*(?:<[^>()]*>)?\(\s*([\w.]+)/g)) {
      const [, method = '', expr = ''] = m;
      const r = resourceOf(expr);
      if (!r) note(`${file} ${method}(${expr})`);
      else used.add(pair(r.group, method === 'replaceStatus' ? `${r.plural}/status` : r.plural, verbOf[method] ?? method));
    }
    for (const m of text.matchAll(/\bwriteStatus\(\s*ctx,\s*([\w.]+)/g)) {
      const r = resourceOf(m[1] ?? '');
      if (!r) note(`${file} writeStatus(${m[1]})`);
      else used.add(pair(r.group, `${r.plural}/status`, 'update'));
    }
    for (const m of text.matchAll(/\b(createObject|deleteObject)\s*(?:<[^>()]*>)?\(\s*ctx,\s*([\w.]+)/g)) {
      const r = resourceOf(m[2] ?? '');
      if (!r) note(`${file} ${m[1]}(${m[2]})`);
      else used.add(pair(r.group, r.plural, m[1] === 'createObject' ? 'create' : 'delete'));
    }
    for (const m of text.matchAll(/(?:\binf|\.for)<\w+>\(\s*Resources\.(\w+)/g)) {
      const r = resourceOf(`Resources.${m[1]}`);
      if (!r) unresolved.push(`${file} informer ${m[1]}`);
      else for (const v of ['list', 'watch']) used.add(pair(r.group, r.plural, v));
    }
    // A route kind (src/shim/route-kind.ts) names its resource once: the shim controller runs an
    // informer on it and makes it the Certificates' owner, with blockOwnerDeletion.
    for (const m of text.matchAll(/\bresource:\s*Resources\.(\w+)/g)) {
      const r = resourceOf(`Resources.${m[1]}`);
      if (!r) unresolved.push(`${file} route kind ${m[1]}`);
      else for (const p of [pair(r.group, r.plural, 'list'), pair(r.group, r.plural, 'watch'), pair(r.group, `${r.plural}/finalizers`, 'update')]) used.add(p);
    }
    // Owner references with blockOwnerDeletion need update on the owner's finalizers.
    for (const m of text.matchAll(/\bcontrollerReference\(\s*Resources\.(\w+)/g)) {
      const r = resourceOf(`Resources.${m[1]}`);
      if (r) used.add(pair(r.group, `${r.plural}/finalizers`, 'update'));
    }
  }
  return { used, unresolved };
}

test('the controller code uses exactly the (resource, verb) pairs the table grants', (t) => {
  const { used, unresolved } = scanCode();
  t.deepEqual(unresolved, [], 'call sites whose resource the scan cannot name: read them and add them to `indirect`');
  // The admission verb is checked by the API server, not called by the code.
  const granted = new Set(grants.flatMap((g) => g.verbs.filter((v) => v !== ADMISSION_VERB && v !== APPROVE_VERB).map((v) => pair(g.group, g.resource, v))));
  t.deepEqual([...used].filter((p) => !granted.has(p)).sort(), [], 'used by the code but granted by no row of the table (and so not by the chart)');
  t.deepEqual([...granted].filter((p) => !used.has(p)).sort(), [], 'granted but never used by the controller code');
});

test('the scan covers the modules that talk to the API server', (t) => {
  const modules = controllerModules();
  for (const f of ['src/controller/manager.ts', 'src/cainjector/injector.ts', 'src/kube/leader.ts', 'src/kube/events.ts', 'src/shim/controller.ts', 'src/shim/ingressroute.ts', 'src/traefik/challenge-route.ts', 'src/controller/orders.ts']) {
    t.true(modules.includes(f), `${f} is loaded by the controller`);
  }
  t.false(modules.includes('src/cli/renew.ts'), "the operator's CLI commands are not the controller's");
  t.not(LEASE_NAME, 'not found', 'the Lease name is read from src/cli/controller.ts');
});

// ---------------------------------------------------------------- the chart side

interface Rule { apiGroups?: string[]; resources?: string[]; verbs?: string[]; resourceNames?: string[] }
interface RbacDoc {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Rule[];
  roleRef?: { kind: string; name: string };
  subjects?: Array<{ kind: string; name: string; namespace?: string }>;
}

const RELEASE = 'rbac';
const RELEASE_NS = 'rbac-ns';
const TRAEFIK_NS = 'edge';
const SA = 'rbac-certroute';

async function kubeVersion(): Promise<string> {
  const gomod = readFileSync(join(repo, 'tools/kubernetes/go.mod'), 'utf8');
  return /k8s\.io\/kubernetes (v[\d.]+)/.exec(gomod)?.[1] ?? 'v1.36.0';
}

async function renderRbac(set: string[]): Promise<RbacDoc[]> {
  const helm = await binary('helm');
  const args = ['template', RELEASE, chart, '-n', RELEASE_NS, '--kube-version', await kubeVersion(), '--set', `traefik.namespace=${TRAEFIK_NS}`, ...set.flatMap((s) => ['--set', s])];
  const { stdout } = await run(helm, args, { maxBuffer: 16 << 20 });
  // The whole chart, not templates/rbac.yaml alone: a grant in any template counts.
  const rbacKinds = ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
  return parseAllDocuments(stdout).map((d) => d.toJS() as RbacDoc | null).filter((d): d is RbacDoc => d !== null && rbacKinds.includes(d.kind));
}

function chartTuples(docs: RbacDoc[]): string[] {
  const scopeOf = (d: RbacDoc): Scope | string =>
    d.kind === 'ClusterRole' ? 'cluster' : d.metadata.namespace === RELEASE_NS ? 'release namespace' : d.metadata.namespace === TRAEFIK_NS ? 'traefik namespace' : `namespace ${d.metadata.namespace}`;
  return docs.filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role').flatMap((d) =>
    (d.rules ?? []).flatMap((r) =>
      (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) => (r.verbs ?? []).flatMap((v) =>
        (r.resourceNames ?? [undefined]).map((n) => tuple(scopeOf(d), g, res, v, n))))))).sort();
}

const modes: Array<{ title: string; set: string[]; mode: Mode }> = [
  { title: 'defaults (route mode, leader election)', set: [], mode: { shimOnly: false, wiring: 'route', leaderElection: true, readsTraefikService: true, defaultSecretName: true, caInjector: true, gatewayAPI: false } },
  { title: 'shim-only', set: ['shimOnly=true'], mode: { shimOnly: true, wiring: 'route', leaderElection: true, readsTraefikService: true, defaultSecretName: true, caInjector: true, gatewayAPI: false } },
  { title: 'middleware mode', set: ['wiring=middleware'], mode: { shimOnly: false, wiring: 'middleware', leaderElection: true, readsTraefikService: true, defaultSecretName: true, caInjector: true, gatewayAPI: false } },
  {
    title: 'no leader election and a fixed self-check address',
    set: ['leaderElection.enabled=false', 'traefik.selfCheckAddress=http://traefik.edge.svc:80', 'replicas=1'],
    mode: { shimOnly: false, wiring: 'route', leaderElection: false, readsTraefikService: false, defaultSecretName: true, caInjector: true, gatewayAPI: false },
  },
  {
    title: 'shim.defaultSecretName off: no patch on IngressRoutes anywhere',
    set: ['shim.defaultSecretName=false'],
    mode: { shimOnly: false, wiring: 'route', leaderElection: true, readsTraefikService: true, defaultSecretName: false, caInjector: true, gatewayAPI: false },
  },
  { title: 'autoApprove off: no approve on signers', set: ['autoApprove=false'], mode: { shimOnly: false, wiring: 'route', leaderElection: true, readsTraefikService: true, defaultSecretName: true, caInjector: true, gatewayAPI: false, autoApprove: false } },
  { title: 'CA injector off', set: ['caInjector.enabled=false'], mode: { shimOnly: false, wiring: 'route', leaderElection: true, readsTraefikService: true, defaultSecretName: true, caInjector: false, gatewayAPI: false } },
  { title: 'Gateway API on, route wiring', set: ['gatewayAPI.enabled=true'], mode: { shimOnly: false, wiring: 'route', leaderElection: true, readsTraefikService: true, defaultSecretName: true, caInjector: true, gatewayAPI: true } },
  { title: 'gateway wiring', set: ['gatewayAPI.enabled=true', 'wiring=gateway'], mode: { shimOnly: false, wiring: 'gateway', leaderElection: true, readsTraefikService: true, defaultSecretName: true, caInjector: true, gatewayAPI: true } },
  { title: 'Gateway API on in shim-only mode: cert-manager shims Gateways', set: ['gatewayAPI.enabled=true', 'shimOnly=true'], mode: { shimOnly: true, wiring: 'route', leaderElection: true, readsTraefikService: true, defaultSecretName: true, caInjector: true, gatewayAPI: true } },
];

for (const { title, set, mode } of modes) {
  test(`the chart grants exactly what the code uses: ${title}`, async (t) => {
    const docs = await renderRbac(set);
    const have = chartTuples(docs);
    const want = expected(mode);
    t.deepEqual(have.filter((x) => !want.includes(x)), [], 'granted by the chart but not needed in this mode');
    t.deepEqual(want.filter((x) => !have.includes(x)), [], 'needed in this mode but not granted by the chart');
    t.false(JSON.stringify(docs).includes('"*"'), 'no wildcard anywhere');
  });

  test(`every role is bound to the controller's ServiceAccount only: ${title}`, async (t) => {
    const docs = await renderRbac(set);
    const roles = docs.filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role');
    const bindings = docs.filter((d) => d.kind === 'ClusterRoleBinding' || d.kind === 'RoleBinding');
    t.is(bindings.length, roles.length);
    for (const role of roles) {
      const binding = bindings.find((b) => b.roleRef?.kind === role.kind && b.roleRef.name === role.metadata.name && b.metadata.namespace === role.metadata.namespace);
      t.truthy(binding, `${role.kind} ${role.metadata.name} is bound`);
      t.deepEqual(binding?.subjects, [{ kind: 'ServiceAccount', name: SA, namespace: RELEASE_NS }]);
    }
  });
}

test('rbac.create=false renders no RBAC at all', async (t) => {
  t.deepEqual(await renderRbac(['rbac.create=false']), []);
});

test('a renamed Traefik Service is the one resourceName the controller may read', async (t) => {
  const docs = await renderRbac(['traefik.service=edge-proxy']);
  t.true(chartTuples(docs).includes(tuple('traefik namespace', '', 'services', 'get', 'edge-proxy')));
  t.false(chartTuples(docs).some((x) => x.includes('[traefik]')));
});

test('the admission policy checks a verb the chart grants to certroute for Orders and Challenges', (t) => {
  t.is(ADMISSION_VERB, 'certroute-write-spec');
  const rows = grants.filter((g) => g.verbs.includes(ADMISSION_VERB)).map((g) => `${g.group}/${g.resource}`).sort();
  t.deepEqual(rows, [`${ACME}/challenges`, `${ACME}/orders`]);
});
