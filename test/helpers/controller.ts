/**
 * Runs the real `certroute controller` process against the local stack, the
 * same command the container runs, and gives tests what they need around
 * it: a Pebble ClusterIssuer, a namespace per test, polling for what a user
 * would see.
 *
 * Each test file (one process) runs its controllers apart from every other
 * controller on the machine or the stack: a free responder port behind its
 * own responder Service, and its own Lease. `cleanUpFile()` in the
 * file's `after.always` hook deletes what they leave behind.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeKubeconfig } from '../env/kube.ts';
import { logsDir, pkiDir, stateFile } from '../env/paths.ts';
import { clientCertificate, type StackPki } from '../env/pki.ts';
import { freePorts } from '../env/ports.ts';
import { exposeLocalPort, kubectl, loadKubeConfig, readEnv, type StackEnv } from '../env/stack.ts';
import { sourceEntry } from '../../scripts/entry.ts';

const root = new URL('../../', import.meta.url).pathname;

export interface ControllerProcess {
  child: ChildProcess;
  logFile: string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown hooks, no lease release. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

let counter = 0;

/** Where certroute runs on the stack: its Lease, its responder Services, its challenge route. */
export const CONTROLLER_NAMESPACE = 'certroute';
/** The challenge route a route-mode leader keeps in CONTROLLER_NAMESPACE. */
export const CHALLENGE_ROUTE_NAME = 'certroute-acme-challenge';

const tag = `${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;

/** This file's controllers: a responder port no other process holds, its Service, its Lease. */
export const own = {
  responderPort: (await freePorts(1))[0]!,
  responderService: `certroute-${tag}`,
  leaseName: `certroute-controller-${tag}`,
};

let serviceCreated: Promise<void> | undefined;

/** The responder Service of this file's controllers, created once. */
function ownResponderService(): Promise<void> {
  serviceCreated ??= exposeLocalPort(loadKubeConfig(readEnv().kubeconfig), { namespace: CONTROLLER_NAMESPACE, name: own.responderService, port: own.responderPort });
  return serviceCreated;
}

/** The Lease identity of a controller process, as `certroute controller` writes it. */
export const leaseIdentity = (p: ControllerProcess): string => `${hostname()}_${p.child.pid}`;

export interface LeaseView {
  metadata: { resourceVersion: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** This file's Lease (or another by name). */
export const readLease = (name = own.leaseName): Promise<LeaseView> => kubectlJson<LeaseView>(['-n', CONTROLLER_NAMESPACE, 'get', 'lease', name]);

/** Resolves once `controller` holds this file's Lease. */
export async function waitForLeader(controller: ControllerProcess, timeoutMs = 60_000): Promise<void> {
  await waitFor(`controller pid ${controller.child.pid} to hold the Lease ${own.leaseName}`, async () => {
    if (controller.child.exitCode !== null) throw new Error(`the controller exited with code ${controller.child.exitCode}; see ${controller.logFile}`);
    return (await readLease()).spec.holderIdentity === leaseIdentity(controller);
  }, timeoutMs);
}

/** What cert-manager and the tests create in a test namespace; a bare apiserver deletes no namespace's contents. */
const namespacedKinds = 'ingressroutes,ingressroutetcps,ingresses,middlewares,certificates,certificaterequests,orders,challenges,issuers,services,secrets,configmaps';

/**
 * Deletes what this test file leaves behind and stops its controllers: the contents of its
 * namespaces (a namespace itself would stay Terminating for ever), its Lease, its responder
 * Services, and the challenge route if it still points at one of them. Contents go first, while a
 * controller can still clear its Challenges' finalizers. For `after.always`.
 */
export async function cleanUpFile(extraServices: string[] = []): Promise<void> {
  const mine = namespaces.splice(0);
  for (const ns of mine) {
    await kubectl(['-n', ns, 'delete', namespacedKinds, '--all', '--ignore-not-found', '--wait=false']).catch(() => undefined);
  }
  const leftChallenges = async () => (await Promise.all(mine.map(async (ns) =>
    (await kubectlJson<{ items: Array<{ metadata: { name: string; namespace: string } }> }>(['-n', ns, 'get', 'challenges'])).items))).flat();
  if (stoppers.size > 0) await waitFor('the Challenges to go', async () => (await leftChallenges()).length === 0, 15_000).catch(() => undefined);
  await Promise.all([...stoppers].map((stop) => stop()));
  for (const c of await leftChallenges().catch(() => [])) {
    await kubectl(['-n', c.metadata.namespace, 'patch', 'challenge', c.metadata.name, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']).catch(() => undefined);
  }
  const services = [own.responderService, ...extraServices];
  const route = await kubectl(['-n', CONTROLLER_NAMESPACE, 'get', 'ingressroute', CHALLENGE_ROUTE_NAME, '-o', 'jsonpath={.spec.routes[0].services[0].name}']).catch(() => ({ stdout: '' }));
  if (services.includes(route.stdout)) await kubectl(['-n', CONTROLLER_NAMESPACE, 'delete', 'ingressroute', CHALLENGE_ROUTE_NAME, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  await kubectl(['-n', CONTROLLER_NAMESPACE, 'delete', 'lease', own.leaseName, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  await kubectl(['-n', CONTROLLER_NAMESPACE, 'delete', 'service', ...services, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  serviceCreated = undefined;
}

const stoppers = new Set<() => Promise<void>>();

/**
 * Controllers still running when this test process exits. A worker that dies
 * on an uncaught exception skips `after.always`; without this its controller
 * would outlive it and keep the stack's responder port for every later test.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * A kubeconfig for the stack as user `user` (group system:masters), so that the apiserver's audit
 * log names this process apart from the tests' `admin`.
 */
export async function kubeconfigAs(user: string): Promise<string> {
  const { pki } = JSON.parse(readFileSync(stateFile, 'utf8')) as { pki: StackPki };
  const issued = await clientCertificate(pki, user);
  const [cert, key, file] = [join(pkiDir, `${user}.crt`), join(pkiDir, `${user}.key`), join(pkiDir, `${user}.kubeconfig`)];
  writeFileSync(cert, issued.certPem);
  writeFileSync(key, issued.keyPem, { mode: 0o600 });
  writeKubeconfig(readEnv().apiserver, { ...pki, adminCert: cert, adminKey: key }, file);
  return file;
}

/**
 * Starts `certroute controller` with this file's responder port, responder Service and Lease;
 * `extraArgs` come last, so they win over these. With `user`, it talks to the apiserver as that
 * user (see `kubeconfigAs`). `entry` is the script Node runs, the source entry unless the
 * caller (the bench) asks for the compiled one.
 */
export async function startController(extraArgs: string[] = [], opts: { name?: string; env?: Record<string, string>; user?: string; entry?: string } = {}): Promise<ControllerProcess> {
  const env = readEnv();
  await ownResponderService();
  const kubeconfig = opts.user ? await kubeconfigAs(opts.user) : env.kubeconfig;
  const name = opts.name ?? `controller-${process.pid}-${++counter}`;
  const logFile = join(logsDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const isolation = [`--responder-port=${own.responderPort}`, `--responder-service=${own.responderService}`, `--lease-name=${own.leaseName}`, `--namespace=${CONTROLLER_NAMESPACE}`];
  const child = spawn(process.execPath, [opts.entry ?? join(root, sourceEntry), 'controller', ...isolation, '--metrics-port=0', '--health-port=0', ...extraArgs], {
    cwd: root,
    env: { ...process.env, KUBECONFIG: kubeconfig, LOG_LEVEL: 'debug', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  running.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running.delete(child);
    resolve(code);
  }));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    stoppers.delete(stop);
  };
  stoppers.add(stop);
  return {
    child,
    logFile,
    exited,
    stop,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `certroute …` exactly as a user runs it, with KUBECONFIG set and no TTY. */
export function certroute(args: string[], kubeconfig = readEnv().kubeconfig): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, sourceEntry), ...args], { cwd: root, env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

export async function kubectlJson<T>(args: string[]): Promise<T> {
  const { stdout } = await kubectl([...args, '-o', 'json']);
  return JSON.parse(stdout) as T;
}

export async function applyYaml(yaml: string): Promise<void> {
  await kubectl(['apply', '-f', '-'], { input: yaml });
}

let nsCounter = 0;
const namespaces: string[] = [];
/** A namespace no earlier run used; `cleanUpFile` deletes what is in it. */
export async function freshNamespace(prefix: string): Promise<string> {
  const ns = `${prefix}-${tag}-${++nsCounter}`.slice(0, 63);
  await kubectl(['create', 'namespace', ns]);
  namespaces.push(ns);
  return ns;
}

/** A Secret as the API server has it. */
export function readSecret(ns: string, name: string): Promise<SecretView> {
  return kubectlJson<SecretView>(['-n', ns, 'get', 'secret', name]);
}

/** The bytes of one key of a Secret's data (empty when absent). */
export function secretBytes(secret: SecretView, key: string): Buffer {
  return Buffer.from(secret.data[key] ?? '', 'base64');
}

/** A fresh namespace with a SelfSigned Issuer named `selfsigned`, and the objects of `moreYaml`. */
export async function selfSignedNamespace(prefix: string, moreYaml = ''): Promise<string> {
  const ns = await freshNamespace(prefix);
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned, namespace: ${ns}}
spec:
  selfSigned: {}
${moreYaml.replaceAll('$NS', ns)}`);
  return ns;
}

export interface PebbleIssuerOptions {
  /** Fields added to `spec.acme`, e.g. `{ preferredChain: '…' }` or `{ skipTLSVerify: true }`. */
  acme?: Record<string, unknown>;
  /** Fields added to the solver's `http01`, e.g. `{ certroute: { waitInsteadOfSelfCheck: '3s' } }`. */
  http01?: Record<string, unknown>;
  /** false: no caBundle, so Pebble's certificate is not trusted. */
  caBundle?: boolean;
}

/** The one ClusterIssuer builder: the stack's Pebble, written as a user would. */
export function pebbleClusterIssuer(name: string, env: StackEnv = readEnv(), opts: PebbleIssuerOptions = {}): string {
  return stringify({
    apiVersion: 'cert-manager.io/v1',
    kind: 'ClusterIssuer',
    metadata: { name },
    spec: {
      acme: {
        server: env.pebble.directory,
        email: 'ops@example.com',
        ...(opts.caBundle === false ? {} : { caBundle: readFileSync(env.pebble.tlsCa).toString('base64') }),
        privateKeySecretRef: { name: `${name}-account` },
        // Pebble picks a random profile for an order that names none (see PEBBLE_PROFILES).
        profile: 'default',
        solvers: [{ http01: { ingress: { ingressClassName: 'traefik' }, ...opts.http01 } }],
        ...opts.acme,
      },
    },
  });
}

export interface CertificateView {
  metadata: { name: string; namespace: string; generation: number; uid: string; resourceVersion?: string };
  spec: Record<string, unknown>;
  status?: {
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string; observedGeneration?: number }>;
    revision?: number;
    notAfter?: string;
    notBefore?: string;
    renewalTime?: string;
    failedIssuanceAttempts?: number;
    lastFailureTime?: string;
  };
}

export const readyCondition = (c: CertificateView) => c.status?.conditions?.find((x) => x.type === 'Ready');

export async function waitForCertificateRevision(ns: string, name: string, revision: number, timeoutMs = 60_000): Promise<CertificateView> {
  return waitFor(`Certificate ${ns}/${name} revision ${revision} Ready`, async () => {
    const c = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', name]);
    return (c.status?.revision ?? 0) >= revision && readyCondition(c)?.status === 'True' ? c : undefined;
  }, timeoutMs, 100);
}

export interface SecretView {
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string>; resourceVersion: string };
  type: string;
  data: Record<string, string>;
}

export const secretPem = (s: SecretView, key: string): string => Buffer.from(s.data[key] ?? '', 'base64').toString('utf8');

export function readLog(p: ControllerProcess): string {
  try {
    return readFileSync(p.logFile, 'utf8');
  } catch {
    return '';
  }
}

export interface AnnotatedRoute {
  namespace: string;
  name: string;
  /** One route matching Host(`host`); or give `matches`. */
  host?: string;
  /** One route per match, as written (v3 syntax unless `syntax` says otherwise). */
  matches?: string[];
  syntax?: 'v2';
  /** A ClusterIssuer; unset: the route is not (yet) annotated. */
  issuer?: string;
  /** Port of a local backend, exposed as Service `service` (default `backend`). */
  backendPort: number;
  service?: string;
  annotations?: Record<string, string>;
  /** `spec.tls`: `{}` unless given; false leaves it out. */
  tls?: { secretName?: string } | false;
}

/** The one IngressRoute builder: on websecure, annotated for a ClusterIssuer, as a user writes it. */
export function annotatedIngressRoute(r: AnnotatedRoute): string {
  const matches = r.matches ?? [`Host(\`${r.host}\`)`];
  return stringify({
    apiVersion: 'traefik.io/v1alpha1',
    kind: 'IngressRoute',
    metadata: { name: r.name, namespace: r.namespace, annotations: { ...(r.issuer ? { 'cert-manager.io/cluster-issuer': r.issuer } : {}), ...r.annotations } },
    spec: {
      entryPoints: ['websecure'],
      routes: matches.map((match) => ({ match, kind: 'Rule', ...(r.syntax ? { syntax: r.syntax } : {}), services: [{ name: r.service ?? 'backend', port: r.backendPort }] })),
      ...(r.tls === false ? {} : { tls: r.tls ?? {} }),
    },
  });
}
