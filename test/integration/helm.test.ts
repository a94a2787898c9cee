/**
 * The Helm chart against the stack's real kube-apiserver, with the real helm and kubectl: it
 * lints, the API server accepts what it renders, `helm install` creates what an operator expects,
 * the ServiceAccount it creates may do exactly what the controller needs, the Deployment's own
 * arguments start a controller under that ServiceAccount, and bad values are refused.
 *
 * A bare apiserver runs no Pods, so the Deployment is checked as an object; the controller under
 * the chart's RBAC runs here as a process with the ServiceAccount's token, as a follower (a Lease
 * held by someone else), so it never reconciles other tests' objects.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { applyCrds, crdFiles, crdNames } from '../helpers/crds.ts';
import { kubectlJson, waitFor } from '../helpers/controller.ts';
import { helmPath, kubectl, readEnv } from '../env/stack.ts';
import { sourceEntry } from '../../scripts/entry.ts';

const env = readEnv();
const repo = resolve(import.meta.dirname, '..', '..');
const chart = join(repo, 'charts', 'certroute');
const id = process.pid % 100000;

interface Run {
  stdout: string;
  stderr: string;
}

/** The real helm against the stack; rejects with helm's stderr (minus its symlink notices). */
async function helm(args: string[], input?: string): Promise<Run> {
  const bin = await helmPath();
  return new Promise((resolvePromise, reject) => {
    const child = execFile(bin, [...args, '--kubeconfig', env.kubeconfig], { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const cleaned = stderr.split('\n').filter((l) => !l.includes('found symbolic link in path')).join('\n').trim();
      if (error) reject(new Error(`helm ${args.slice(0, 2).join(' ')} failed: ${cleaned || error.message}`, { cause: error }));
      else resolvePromise({ stdout, stderr: cleaned });
    });
    child.stdin?.end(input ?? '');
  });
}

/**
 * `helm template` knows no cluster: it is told the stack's version, the k8s.io/kubernetes module
 * tools/ builds the apiserver from (the binary itself reports v0.0.0-master: no version ldflags).
 */
function kubeVersion(): string {
  const gomod = readFileSync(join(repo, 'tools/kubernetes/go.mod'), 'utf8');
  const version = /k8s\.io\/kubernetes (v\d+\.\d+\.\d+)/.exec(gomod)?.[1];
  if (!version) throw new Error('tools/kubernetes/go.mod names no k8s.io/kubernetes version');
  return version;
}

const sets = (values: string[]): string[] => values.flatMap((v) => ['--set', v]);

async function template(release: string, namespace: string, values: string[], flags: string[] = []): Promise<string> {
  return (await helm(['template', release, chart, '-n', namespace, '--kube-version', kubeVersion(), ...flags, ...sets(values)])).stdout;
}

async function namespace(prefix: string): Promise<string> {
  const ns = `${prefix}-${id}`;
  await kubectl(['create', 'namespace', ns]).catch((err: unknown) => {
    if (!String(err).includes('AlreadyExists')) throw err;
  });
  return ns;
}

const modes: Array<{ title: string; values: string[] }> = [
  { title: 'defaults (route mode)', values: [] },
  { title: 'middleware mode', values: ['wiring=middleware'] },
  { title: 'shim-only with the Let\'s Encrypt ClusterIssuers', values: ['shimOnly=true', 'clusterIssuers.letsencrypt.enabled=true', 'acme.email=ops@example.com'] },
  { title: 'one replica, no leader election, fixed self-check address', values: ['replicas=1', 'leaderElection.enabled=false', 'traefik.selfCheckAddress=http://traefik.edge.svc:80'] },
  { title: 'Gateway API with gateway wiring', values: ['gatewayAPI.enabled=true', 'wiring=gateway'] },
];

test('helm lint passes in every mode', async (t) => {
  for (const { title, values } of [...modes, { title: 'ServiceMonitor', values: ['metrics.serviceMonitor.enabled=true'] }]) {
    const { stdout } = await helm(['lint', '--strict', chart, '--kube-version', kubeVersion(), ...sets(values)]);
    t.regex(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/, title);
  }
});

test('the packaged chart carries crds/ and the plugin sources byte for byte', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'certroute-chart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await helm(['package', chart, '-d', dir]);
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  t.is(tgz, 'certroute-0.1.0.tgz');
  await new Promise<void>((done, fail) => execFile('tar', ['-xzf', join(dir, tgz ?? ''), '-C', dir], (e) => (e ? fail(e) : done())));
  const packaged = readdirSync(join(dir, 'certroute', 'crds')).sort();
  t.deepEqual(packaged, crdFiles().map((f) => f.split('/').at(-1)));
  for (const name of packaged) {
    t.is(readFileSync(join(dir, 'certroute', 'crds', name), 'utf8'), readFileSync(join(repo, 'crds', name), 'utf8'), name);
  }
  t.is(readFileSync(join(dir, 'certroute', 'files', 'certroute-challenge', 'challenge.go'), 'utf8'), readFileSync(join(repo, 'plugins', 'certroute-challenge', 'challenge.go'), 'utf8'));
  // What an operator applies before an upgrade: every CRD file, unchanged.
  const { stdout } = await helm(['show', 'crds', join(dir, tgz ?? '')]);
  for (const file of crdFiles()) t.true(stdout.includes(readFileSync(file, 'utf8')), `helm show crds prints ${file}`);
});

for (const { title, values } of modes) {
  test(`the API server accepts what the chart renders: ${title}`, async (t) => {
    await applyCrds(env.kubeconfig);
    const ns = await namespace(`helm-dry-${modes.findIndex((m) => m.title === title)}`);
    const edge = await namespace(`helm-dry-edge-${modes.findIndex((m) => m.title === title)}`);
    const manifest = await template(`certroute-dry-${id}`, ns, [`traefik.namespace=${edge}`, ...values]);
    const { stdout } = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: manifest });
    t.regex(stdout, /deployment\.apps\/certroute-dry-\d+ created \(server dry run\)/);
    t.regex(stdout, /clusterrole\.rbac\.authorization\.k8s\.io\/certroute-dry-\d+ created \(server dry run\)/);
    if (values.includes('wiring=middleware')) {
      t.regex(stdout, /configmap\/certroute-dry-\d+-challenge-plugin created/);
      t.regex(stdout, /middleware\.traefik\.io\/certroute-dry-\d+-challenge created/);
    }
    if (values.includes('clusterIssuers.letsencrypt.enabled=true')) {
      t.regex(stdout, /clusterissuer\.cert-manager\.io\/letsencrypt-production (created|configured|unchanged)/);
      t.regex(stdout, /clusterissuer\.cert-manager\.io\/letsencrypt-staging (created|configured|unchanged)/);
    }
  });
}

interface Doc {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: Record<string, unknown>;
}

async function renderDocs(values: string[], ns = 'certroute', flags: string[] = []): Promise<Doc[]> {
  return parseAllDocuments(await template('certroute', ns, values, flags)).map((d) => d.toJS() as Doc | null).filter((d): d is Doc => d !== null);
}

const containerArgs = (docs: Doc[]): string[] =>
  ((docs.find((d) => d.kind === 'Deployment')?.spec as { template: { spec: { containers: Array<{ args: string[] }> } } } | undefined)?.template.spec.containers[0]?.args ?? []);

test('middleware mode ships the plugin sources unchanged, in Traefik\'s namespace, pointed at the responder', async (t) => {
  const docs = await renderDocs(['wiring=middleware', 'traefik.namespace=edge']);
  const plugin = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'certroute-challenge-plugin');
  t.is(plugin?.metadata.namespace, 'edge', 'a Pod mounts ConfigMaps from its own namespace only');
  const dir = join(repo, 'plugins', 'certroute-challenge');
  const shipped = readdirSync(dir).filter((f) => f === '.traefik.yml' || f === 'go.mod' || (f.endsWith('.go') && !f.endsWith('_test.go'))).sort();
  t.deepEqual(Object.keys(plugin?.data ?? {}).sort(), shipped);
  for (const f of shipped) t.is(plugin?.data?.[f], readFileSync(join(dir, f), 'utf8'), f);
  const middleware = docs.find((d) => d.kind === 'Middleware');
  t.deepEqual(middleware?.spec, { plugin: { certroute: { responder: 'http://certroute.certroute.svc:8089' } } });
  const fallback = docs.find((d) => d.kind === 'IngressRoute');
  t.like(fallback?.spec, { entryPoints: ['web'], routes: [{ priority: 1, services: [{ kind: 'TraefikService', name: 'noop@internal' }] }] });
  const args = containerArgs(docs);
  t.true(args.includes('--wiring=middleware'));
  t.false(args.some((a) => a.startsWith('--entrypoints=')), 'no challenge route in middleware mode');
});

test('route mode passes the Traefik values to the controller and creates no Traefik object itself', async (t) => {
  const docs = await renderDocs(['traefik.entrypoints={web}', 'traefik.priority=9007199254740991', 'traefik.selfCheckAddress=http://traefik.edge.svc:8000', 'traefik.selfCheckWebsecureAddress=https://traefik.edge.svc:8443', 'shimOnly=false', 'logLevel=debug']);
  const args = containerArgs(docs);
  for (const a of ['--entrypoints=web', '--route-priority=9007199254740991', '--self-check-address=http://traefik.edge.svc:8000', '--self-check-websecure-address=https://traefik.edge.svc:8443', '--responder-service=certroute']) t.true(args.includes(a), a);
  t.false(args.some((a) => a.startsWith('--traefik-namespace=')), 'a fixed self-check address needs no Service lookup');
  t.deepEqual(docs.filter((d) => ['IngressRoute', 'Middleware', 'ConfigMap'].includes(d.kind)), [], 'the controller owns the challenge route');
});

test('shim-only passes --shim-only and no challenge route flags', async (t) => {
  const args = containerArgs(await renderDocs(['shimOnly=true']));
  t.true(args.includes('--shim-only'));
  t.false(args.some((a) => a.startsWith('--entrypoints=') || a.startsWith('--route-priority=')));
});

test('the Ingress classes always, and with gatewayAPI.enabled the Gateway flags, reach the controller; gateway wiring names the responder Service', async (t) => {
  const defaults = containerArgs(await renderDocs([]));
  t.true(defaults.includes('--ingress-classes=traefik'));
  t.false(defaults.some((a) => a.startsWith('--enable-gateway-api') || a.startsWith('--gateway-classes=')), 'off by default: the Gateway API CRDs may be missing');
  const args = containerArgs(await renderDocs(['gatewayAPI.enabled=true', 'gatewayAPI.classes={traefik,edge}', 'shim.ingressClasses={traefik,internal}', 'wiring=gateway']));
  for (const a of ['--ingress-classes=traefik,internal', '--enable-gateway-api', '--gateway-classes=traefik,edge', '--wiring=gateway', '--responder-service=certroute']) t.true(args.includes(a), a);
  t.false(args.some((a) => a.startsWith('--entrypoints=')), 'no challenge IngressRoute in gateway wiring');
  t.false(defaults.some((a) => a.startsWith('--default-issuer-')), 'no default issuer unless one is named');
  const withDefault = containerArgs(await renderDocs(['shim.defaultIssuer.name=letsencrypt-production', 'shim.defaultIssuer.kind=ClusterIssuer']));
  for (const a of ['--default-issuer-name=letsencrypt-production', '--default-issuer-kind=ClusterIssuer', '--default-issuer-group=cert-manager.io', '--auto-certificate-annotations=kubernetes.io/tls-acme']) t.true(withDefault.includes(a), a);
});

test('autoApprove=false passes --auto-approve=false; the default leaves certroute its own approver', async (t) => {
  t.true(containerArgs(await renderDocs(['autoApprove=false'])).includes('--auto-approve=false'));
  t.false(containerArgs(await renderDocs([])).some((a) => a.startsWith('--auto-approve')));
});

test('the requester-identity policy is rendered, named after the release, only where the API server serves MutatingAdmissionPolicy v1, and not in shim-only mode', async (t) => {
  const served = ['--api-versions', 'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy'];
  const policies = async (values: string[]) =>
    (await renderDocs(values, 'certroute', served)).filter((d) => d.kind.startsWith('MutatingAdmissionPolicy')).map((d) => `${d.kind}/${d.metadata.name}`);
  t.deepEqual(await policies([]), ['MutatingAdmissionPolicy/certroute-requester-identity', 'MutatingAdmissionPolicyBinding/certroute-requester-identity']);
  t.deepEqual(await policies(['shimOnly=true']), [], 'beside cert-manager its webhook fills the fields');
  t.deepEqual(await policies(['requesterIdentity.enabled=false']), []);
  // An older API server (no --api-versions): the chart still installs, without the policy.
  t.false((await renderDocs([])).some((d) => d.kind.startsWith('MutatingAdmissionPolicy')));
});

test('a single replica gets no PodDisruptionBudget; two or more get minAvailable 1', async (t) => {
  t.false((await renderDocs(['replicas=1'])).some((d) => d.kind === 'PodDisruptionBudget'));
  const pdb = (await renderDocs(['replicas=3'])).find((d) => d.kind === 'PodDisruptionBudget');
  t.is((pdb?.spec as { minAvailable: number } | undefined)?.minAvailable, 1);
});

test('the optional ServiceMonitor scrapes the metrics Service port', async (t) => {
  t.false((await renderDocs([])).some((d) => d.kind === 'ServiceMonitor'));
  const docs = await renderDocs(['metrics.serviceMonitor.enabled=true', 'metrics.serviceMonitor.labels.release=prometheus']);
  const monitor = docs.find((d) => d.kind === 'ServiceMonitor') as (Doc & { metadata: { labels: Record<string, string> } }) | undefined;
  t.is(monitor?.metadata.labels.release, 'prometheus');
  const endpoints = (monitor?.spec as { endpoints: Array<{ port: string; path: string }>; selector: { matchLabels: Record<string, string> } } | undefined);
  t.deepEqual(endpoints?.endpoints.map((e) => [e.port, e.path]), [['http-metrics', '/metrics']]);
  const metrics = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'certroute-metrics') as (Doc & { metadata: { labels: Record<string, string> } }) | undefined;
  for (const [k, v] of Object.entries(endpoints?.selector.matchLabels ?? {})) t.is(metrics?.metadata.labels[k], v, k);
  const responder = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'certroute') as (Doc & { metadata: { labels: Record<string, string> } }) | undefined;
  t.false(Object.entries(endpoints?.selector.matchLabels ?? {}).every(([k, v]) => responder?.metadata.labels[k] === v), 'the responder Service is not scraped');
});

test('the Let\'s Encrypt ClusterIssuers use the e-mail and solve HTTP-01 through the traefik class', async (t) => {
  const docs = await renderDocs(['clusterIssuers.letsencrypt.enabled=true', 'acme.email=ops@example.com']);
  const issuers = docs.filter((d) => d.kind === 'ClusterIssuer');
  t.deepEqual(issuers.map((i) => i.metadata.name), ['letsencrypt-staging', 'letsencrypt-production']);
  t.like(issuers[1]?.spec, { acme: { server: 'https://acme-v02.api.letsencrypt.org/directory', email: 'ops@example.com', privateKeySecretRef: { name: 'letsencrypt-production-account-key' }, solvers: [{ http01: { ingress: { ingressClassName: 'traefik' } } }] } });
  t.like(issuers[0]?.spec, { acme: { server: 'https://acme-staging-v02.api.letsencrypt.org/directory' } });
});

// ------------------------------------------------------------------ one real install

interface Container {
  args: string[];
  image: string;
  env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports: Array<{ name: string; containerPort: number }>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  securityContext: { runAsNonRoot: boolean; runAsUser: number; readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; capabilities: { drop: string[] }; seccompProfile: { type: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface Deployment {
  spec: {
    replicas: number;
    template: { spec: { serviceAccountName: string; containers: Container[]; securityContext: { runAsNonRoot: boolean; runAsUser: number; seccompProfile: { type: string } } } };
  };
}
interface Service { spec: { type: string; ports: Array<{ name: string; port: number; targetPort: string | number }>; selector: Record<string, string> } }

const release = `certroute-it-${id}`;
let installation: Promise<{ ns: string; edge: string }> | undefined;

/** One release for the tests below, installed once, uninstalled after them. */
function installed(): Promise<{ ns: string; edge: string }> {
  installation ??= (async () => {
    await applyCrds(env.kubeconfig);
    const edge = await namespace('helm-edge');
    // Traefik's Service as the controller will read it (ExternalName, as on the stack).
    await kubectl(['apply', '-f', '-'], {
      input: stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'traefik', namespace: edge }, spec: { type: 'ExternalName', externalName: 'traefik.example', ports: [{ name: 'web', port: 8000 }, { name: 'websecure', port: 8443 }] } }),
    });
    const ns = `helm-it-${id}`;
    await helm(['install', release, chart, '-n', ns, '--create-namespace', '--set', `traefik.namespace=${edge}`]);
    return { ns, edge };
  })();
  return installation;
}

test.after.always('uninstall the release', async () => {
  if (!installation) return;
  const { ns } = await installation.catch(() => ({ ns: `helm-it-${id}` }));
  await helm(['uninstall', release, '-n', ns]).catch(() => undefined);
});

test('helm install creates the controller Deployment as the chart promises', async (t) => {
  const { ns, edge } = await installed();
  const { stdout } = await helm(['status', release, '-n', ns]);
  t.regex(stdout, /STATUS: deployed/);
  t.regex(stdout, /cert-manager\.io\/cluster-issuer/, 'NOTES tell the user to annotate an IngressRoute');
  const d = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', release]);
  t.is(d.spec.replicas, 2);
  const pod = d.spec.template.spec;
  t.is(pod.serviceAccountName, release);
  t.deepEqual(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
  const [c, ...others] = pod.containers;
  t.is(others.length, 0);
  if (!c) return;
  t.is(c.image, 'ghcr.io/certroute/certroute:0.1.0');
  t.is(c.args[0], 'controller');
  for (const arg of ['--leader-elect=true', '--wiring=route', `--traefik-namespace=${edge}`, '--traefik-service=traefik', `--responder-service=${release}`, '--responder-port=8089', '--tls-alpn-port=8443', '--metrics-port=9402', '--health-port=9403', '--entrypoints=web,websecure', '--route-priority=1073741824', `--cluster-resource-namespace=${ns}`]) {
    t.true(c.args.includes(arg), arg);
  }
  t.deepEqual(c.env.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom, { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } });
  t.deepEqual(c.ports.map((p) => [p.name, p.containerPort]), [['responder', 8089], ['tls-alpn', 8443], ['http-metrics', 9402], ['health', 9403]]);
  t.deepEqual(c.livenessProbe.httpGet, { path: '/livez', port: 'health', scheme: 'HTTP' });
  t.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'health', scheme: 'HTTP' });
  t.like(c.securityContext, { runAsNonRoot: true, runAsUser: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
  t.truthy(c.resources.requests?.cpu);
  t.truthy(c.resources.limits?.memory);
});

test('helm install creates the responder and metrics Services, the budget and the ServiceAccount', async (t) => {
  const { ns } = await installed();
  const responder = await kubectlJson<Service>(['-n', ns, 'get', 'service', release]);
  t.deepEqual(responder.spec.ports.map((p) => [p.port, p.targetPort]), [[8089, 'responder'], [8443, 'tls-alpn']]);
  t.is(responder.spec.selector['app.kubernetes.io/instance'], release);
  const metrics = await kubectlJson<Service>(['-n', ns, 'get', 'service', `${release}-metrics`]);
  t.deepEqual(metrics.spec.ports.map((p) => [p.name, p.port]), [['http-metrics', 9402]]);
  const pdb = await kubectlJson<{ spec: { minAvailable: number } }>(['-n', ns, 'get', 'poddisruptionbudget', release]);
  t.is(pdb.spec.minAvailable, 1);
  await t.notThrowsAsync(kubectl(['-n', ns, 'get', 'serviceaccount', release]));
  for (const name of crdNames()) {
    const crd = await kubectlJson<{ status: { conditions: Array<{ type: string; status: string }> } }>(['get', 'crd', name]);
    t.is(crd.status.conditions.find((x) => x.type === 'Established')?.status, 'True', `${name} is established`);
  }
});

interface Access {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

/** SubjectAccessReviews for the release's ServiceAccount, all in one request. */
async function allowed(ns: string, checks: Access[]): Promise<boolean[]> {
  const user = `system:serviceaccount:${ns}:${release}`;
  const items = checks.map((c) => ({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: { user, groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'], resourceAttributes: c },
  }));
  const { stdout } = await kubectl(['create', '-o', 'jsonpath={.status.allowed}{"\\n"}', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
  const answers = stdout.trim().split('\n');
  if (answers.length !== checks.length) throw new Error(`expected ${checks.length} SubjectAccessReview answers, got: ${stdout}`);
  return answers.map((a) => a === 'true');
}

const show = (a: Access): string => `${a.verb} ${a.group || 'core'}/${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.name ? ` ${a.name}` : ''} in ${a.namespace ?? 'the cluster'}`;

test('the ServiceAccount may do what the controller does, and not more', async (t) => {
  const { ns, edge } = await installed();
  const CM = 'cert-manager.io';
  const ACME = 'acme.cert-manager.io';
  const may: Access[] = [
    { verb: 'watch', group: CM, resource: 'certificates' },
    { verb: 'list', group: '', resource: 'secrets' },
    { verb: 'create', group: CM, resource: 'certificates', namespace: 'default' },
    { verb: 'update', group: CM, resource: 'certificates', subresource: 'status', namespace: 'default' },
    { verb: 'update', group: CM, resource: 'certificaterequests', subresource: 'finalizers', namespace: 'default' },
    { verb: 'update', group: CM, resource: 'clusterissuers', subresource: 'status' },
    { verb: 'patch', group: ACME, resource: 'challenges', namespace: 'default' },
    { verb: 'create', group: ACME, resource: 'orders', namespace: 'default' },
    { verb: 'delete', group: '', resource: 'secrets', namespace: 'kube-system' },
    { verb: 'patch', group: '', resource: 'events', namespace: 'default' },
    { verb: 'patch', group: 'traefik.io', resource: 'ingressroutes', namespace: 'default' },
    { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: ns },
    { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: ns, name: 'certroute-controller' },
    { verb: 'create', group: 'traefik.io', resource: 'ingressroutes', namespace: ns },
    { verb: 'update', group: 'traefik.io', resource: 'ingressroutes', namespace: ns, name: 'certroute-acme-challenge' },
    { verb: 'get', group: '', resource: 'services', namespace: edge, name: 'traefik' },
    // The CA injector (caInjector.enabled, on by default).
    { verb: 'patch', group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations' },
    { verb: 'watch', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
    { verb: 'get', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
    { verb: 'patch', group: 'apiregistration.k8s.io', resource: 'apiservices' },
  ];
  const mayNot: Access[] = [
    { verb: 'get', group: CM, resource: 'certificates', namespace: 'default' }, // read from the informer cache only
    { verb: 'patch', group: CM, resource: 'certificates', namespace: 'default' },
    { verb: 'update', group: ACME, resource: 'challenges', subresource: 'finalizers', namespace: 'default' },
    { verb: 'deletecollection', group: '', resource: 'secrets', namespace: 'default' },
    { verb: 'get', group: '', resource: 'configmaps', namespace: 'default' },
    { verb: 'create', group: '', resource: 'pods', namespace: ns },
    { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: 'default' },
    { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: ns, name: 'someone-elses-lease' },
    { verb: 'update', group: 'traefik.io', resource: 'ingressroutes', namespace: ns, name: 'a-user-route' },
    { verb: 'create', group: 'traefik.io', resource: 'ingressroutes', namespace: 'default' },
    { verb: 'get', group: '', resource: 'services', namespace: edge, name: 'other' },
    { verb: 'list', group: '', resource: 'services', namespace: edge },
    { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
    { verb: 'update', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
    { verb: 'delete', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
    { verb: 'create', group: 'apiregistration.k8s.io', resource: 'apiservices' },
  ];
  const answers = await allowed(ns, [...may, ...mayNot]);
  t.deepEqual(may.filter((_, i) => !answers[i]).map(show), [], 'denied but needed');
  t.deepEqual(mayNot.filter((_, i) => answers[may.length + i]).map(show), [], 'allowed but not needed');
});

interface LogLine {
  msg?: string;
  level?: number;
  leader?: boolean;
  selfCheck?: string;
  err?: string;
  /** The object a reconcile line is about: `namespace/name`, `/name` when cluster-scoped. */
  key?: string;
}

test("the Deployment's own arguments start a controller under the chart's RBAC, as follower and then as leader, with no forbidden call", async (t) => {
  const { ns } = await installed();
  // A live Lease held by someone else: this controller starts as a follower and does not reconcile.
  const now = new Date().toISOString().replace(/Z$/, '000Z');
  await kubectl(['apply', '-f', '-'], {
    input: stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'certroute-controller', namespace: ns }, spec: { holderIdentity: 'helm-test-holder', leaseDurationSeconds: 3600, acquireTime: now, renewTime: now } }),
  });
  const { stdout: token } = await kubectl(['-n', ns, 'create', 'token', release, '--duration=10m']);
  const admin = parse(readFileSync(env.kubeconfig, 'utf8')) as { clusters: Array<{ name: string; cluster: Record<string, string> }> };
  const dir = mkdtempSync(join(tmpdir(), 'certroute-sa-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: admin.clusters,
    users: [{ name: 'sa', user: { token: token.trim() } }],
    contexts: [{ name: 'sa', context: { cluster: admin.clusters[0]?.name, user: 'sa' } }],
    'current-context': 'sa',
  }), { mode: 0o600 });

  const d = await kubectlJson<Deployment>(['-n', ns, 'get', 'deployment', release]);
  const ports = { '--responder-port': '0', '--metrics-port': '0', '--health-port': '0' };
  const args = (d.spec.template.spec.containers[0]?.args ?? []).map((a) => {
    const [flag = ''] = a.split('=');
    return flag in ports ? `${flag}=${ports[flag as keyof typeof ports]}` : a;
  });
  const child = spawn(process.execPath, [join(repo, sourceEntry), ...args], {
    cwd: repo,
    env: { ...process.env, KUBECONFIG: kubeconfig, POD_NAMESPACE: ns, LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const lines = (): LogLine[] => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

  const synced = await waitFor('caches synced', async () => {
    if (child.exitCode !== null) throw new Error(`the controller exited with ${child.exitCode}:\n${output.slice(-2000)}`);
    return lines().find((l) => l.msg === 'caches synced');
  }, 30_000).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${output.slice(-3000)}`);
  });
  t.is(synced.leader, false, 'a follower while the Lease is held');
  t.is(lines().find((l) => l.msg === 'certroute starting')?.selfCheck, 'http://traefik.example:8000', "Traefik's Service was read through the Role in its namespace");

  // The other holder goes: the controller takes the Lease and does a leader's work under the
  // chart's RBAC: the challenge route in its namespace, an issuer's status, a Certificate issued
  // (CertificateRequest, Secret, status, Events).
  await kubectl(['-n', ns, 'delete', 'lease', 'certroute-controller']);
  await waitFor('the controller to lead', async () => lines().some((l) => l.msg === 'became leader'), 30_000);
  const issuer = `helm-rbac-selfsigned-${id}`;
  const work = `helm-rbac-work-${id}-${Date.now().toString(36)}`;
  await kubectl(['create', 'namespace', work]);
  t.teardown(async () => {
    // The challenge route points at the chart's Service, which no Pod backs here: it must not
    // outlive the test and take other files' challenges.
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    await kubectl(['-n', ns, 'delete', 'ingressroute', 'certroute-acme-challenge', '--ignore-not-found', '--wait=false']).catch(() => undefined);
    await kubectl(['-n', work, 'delete', 'certificates,certificaterequests,secrets', '--all', '--wait=false']).catch(() => undefined);
    await kubectl(['delete', 'clusterissuer', issuer, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  });
  await kubectl(['apply', '-f', '-'], {
    input: [
      { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: issuer }, spec: { selfSigned: {} } },
      { apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: 'work', namespace: work }, spec: { secretName: 'work-tls', dnsNames: ['work.rbac.test'], issuerRef: { name: issuer, kind: 'ClusterIssuer' } } },
    ].map((o) => stringify(o)).join('---\n'),
  });
  await waitFor('the leader to issue the Certificate', async () => {
    const c = await kubectlJson<{ status?: { revision?: number; conditions?: Array<{ type: string; status: string }> } }>(['-n', work, 'get', 'certificate', 'work']);
    return c.status?.revision === 1 && c.status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
  }, 60_000);
  await waitFor('the leader to create the challenge route', async () => (await kubectl(['-n', ns, 'get', 'ingressroute', '-o', 'name'])).stdout.includes('certroute-acme-challenge'), 30_000);
  // As leader it reconciles every Certificate on the stack: lines about another file's (or another
  // run's) namespaced objects say nothing about this chart's RBAC, and are left out.
  const foreign = (l: LogLine): boolean => l.key !== undefined && !l.key.startsWith('/') && !l.key.startsWith(`${ns}/`) && !l.key.startsWith(`${work}/`);
  const own = output.split('\n').filter((l) => { try { return !foreign(JSON.parse(l) as LogLine); } catch { return true; } });
  t.deepEqual(own.filter((l) => /forbidden|\b403\b/i.test(l)), []);
  t.deepEqual(lines().filter((l) => (l.level ?? 0) >= 40 && !foreign(l)).map((l) => `${l.msg}: ${l.err ?? ''}`), [], 'no warnings or errors');
  child.kill('SIGTERM');
  t.is(await exited, 0);
});

// ------------------------------------------------------------------ bad values

const refused: Array<{ values: string[]; message: RegExp }> = [
  { values: ['wiring=foo'], message: /at '\/wiring': value must be one of 'route', 'middleware'/ },
  { values: ['replicas=0'], message: /at '\/replicas': minimum: got 0, want 1/ },
  { values: ['clusterIssuers.letsencrypt.enabled=true'], message: /clusterIssuers\.letsencrypt\.enabled=true needs acme\.email/ },
  { values: ['acme.email=not-an-address'], message: /at '\/acme\/email': 'not-an-address' does not match pattern/ },
  { values: ['traefik.priority=0'], message: /at '\/traefik\/priority': minimum: got 0, want 1/ },
  { values: ['traefik.priority=9007199254740992'], message: /at '\/traefik\/priority': maximum/ },
  { values: ['traefik.priority=1.5'], message: /at '\/traefik\/priority': got string, want integer/ },
  { values: ['traefik.entrypoints=null'], message: /at '\/traefik': missing property 'entrypoints'/ },
  { values: ['traefik.entrypoints={web,a b}'], message: /at '\/traefik\/entrypoints\/1': 'a b' does not match pattern/ },
  { values: ['traefik.selfCheckAddress=traefik:80'], message: /at '\/traefik\/selfCheckAddress': 'traefik:80' does not match pattern/ },
  { values: ['leaderElection.leaseDuration=15'], message: /at '\/leaderElection\/leaseDuration': got number, want string/ },
  { values: ['leaderElection.leaseDuration=soon'], message: /at '\/leaderElection\/leaseDuration': 'soon' does not match pattern/ },
  { values: ['logLevel=verbose'], message: /at '\/logLevel': value must be one of 'fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'/ },
  { values: ['image.digest=latest'], message: /at '\/image\/digest': 'latest' does not match pattern/ },
  { values: ['wireing=route'], message: /additional properties 'wireing' not allowed/ },
  { values: ['wiring=gateway'], message: /wiring: gateway attaches an HTTPRoute to Gateways; set gatewayAPI\.enabled=true/ },
  { values: ['gatewayAPI.classes=null'], message: /at '\/gatewayAPI': missing property 'classes'/ },
  { values: ['rbac.create=true', 'serviceAccount.create=false'], message: /serviceAccount\.create=false needs serviceAccount\.name/ },
];

test('helm install refuses bad values with a message that names the problem, and installs nothing', async (t) => {
  const ns = await namespace('helm-bad');
  for (const { values, message } of refused) {
    const error = await t.throwsAsync(helm(['install', `certroute-bad-${id}`, chart, '-n', ns, ...sets(values)]), undefined, values.join(' '));
    t.regex(error?.message ?? '', message, values.join(' '));
  }
  const { stdout } = await helm(['list', '-n', ns, '-a', '-q']);
  t.is(stdout.trim(), '');
});

test('helm uninstall removes what install created and keeps the CRDs', async (t) => {
  const ns = await namespace('helm-rm');
  const name = `certroute-rm-${id}`;
  await applyCrds(env.kubeconfig);
  await helm(['install', name, chart, '-n', ns, '--set', `traefik.namespace=${ns}`, '--set', 'replicas=1']);
  await t.notThrowsAsync(kubectl(['get', 'clusterrole', name]));
  await helm(['uninstall', name, '-n', ns, '--wait']);
  for (const what of [['-n', ns, 'deployment', name], ['-n', ns, 'service', name], ['clusterrole', name], ['clusterrolebinding', name], ['-n', ns, 'role', name]]) {
    await t.throwsAsync(kubectl(['get', ...what]), { message: /NotFound|not found/ }, what.join(' '));
  }
  await t.notThrowsAsync(kubectl(['get', 'crd', 'certificates.cert-manager.io']), 'Certificates outlive the release');
});
