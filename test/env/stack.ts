/**
 * The real local stack: etcd, kube-apiserver, pebble-challtestsrv, BIND, a Cloudflare API stand-in,
 * Pebble and Traefik, each a real process on free 127.0.0.1 ports. `npm run stack` and `test/run.ts` both drive it through
 * this module; tests find it through `.stack/env.json` (see `readEnv`).
 *
 * Launch specs and ports persist in `.stack/state.json` and pids in `.stack/pids.json`, so any
 * process (an ava worker, the CLI) can restart a component or tear the stack down.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { binaries, gatewayApiCrdFiles, traefikCrdFile } from './binaries.ts';
import { bindSpec, LAGGING_PRIMARY_ADDRESS, laggingPrimarySpec, namedPath, newStackDns, type StackDns } from './bind.ts';
import {
  apiserverSpec, challtestsrvSpec, cloudflareSpec, components, dnsRelaySpec, etcdSpec, pebbleSpec, readiness, traefikSpec,
  type ApiserverOptions, type Binaries, type Component, type PebbleOptions, type Ports, type TraefikOptions,
} from './components.ts';
import type { KubernetesObject } from '@kubernetes/client-node';
import { apply, exposeLocalPort, kubectl, loadKubeConfig, LOOPBACK_NAME, writeKubeconfig } from './kube.ts';
import { dropLease, lockFile, otherUsers, takeLease, testsLockFile, withLock } from './lock.ts';
import { certrouteCrdDir, envFile, kubeconfigFile, logsDir, pidsFile, pkiDir, requesterIdentityPolicy, stackDir, stateFile } from './paths.ts';
import { makeStackPki, type StackPki } from './pki.ts';
import { freePorts } from './ports.ts';
import { get } from './probe.ts';
import { commandLine, groupMembers, isAlive, killGroup, launch, logSize, StackError, waitReady, type LaunchSpec } from './proc.ts';

export { binary, helmPath, kubectlPath } from './binaries.ts';
export type { ApiserverOptions, Component, PebbleOptions, TraefikOptions } from './components.ts';
export { PEBBLE_PROFILES, PEBBLE_VALIDITY_SECONDS } from './components.ts';
export { apply, exposeLocalPort, exposeLocalPortToGateways, kubectl, LOOPBACK_NAME, loadKubeConfig, localPortService, type KubectlResult, type LocalPort } from './kube.ts';
export { StackError } from './proc.ts';

/** The contract with every other tool: `.stack/env.json`, exactly this shape. */
export interface StackEnv {
  kubeconfig: string;
  apiserver: string;
  pebble: { directory: string; management: string; tlsCa: string };
  challtestsrv: string;
  traefik: { web: number; websecure: number; api: string };
  /**
   * BIND, authoritative for `zone` and taking updates signed with this TSIG key (secret in base64).
   * `laggingZone` has a second authoritative server, its primary at `laggingPrimary` (where updates
   * go); BIND's own copy of it catches up only on a NOTIFY (see `catchUp` in test/helpers/dns01.ts).
   */
  bind: { address: string; zone: string; tsigKeyName: string; tsigAlgorithm: string; tsigSecret: string; laggingZone: string; laggingPrimary: string };
  /** The Cloudflare v4 API stand-in (`api` ends in /client/v4), serving `zone` for this API token. */
  cloudflare: { api: string; token: string; zone: string };
  /**
   * The port behind the stack's Service `certroute/certroute` (the chart's responder Service): a
   * controller started on the host with `--responder-port=<this>` gets challenges through Traefik.
   */
  responderPort: number;
}

/** Who started the stack: a test run tears down only what a test run started. */
/** Who started the stack: a test run tears down only what it started; 'demo' (npm start) never adopts a running one. */
export type StartedBy = 'test' | 'cli' | 'demo';

interface StackState {
  startedBy: StartedBy;
  ports: Ports;
  pki: StackPki;
  dns: StackDns;
  bins: Binaries;
  specs: Partial<Record<Component, LaunchSpec>>;
  /** See `StackEnv.responderPort`. */
  responderPort: number;
  /** `stackSource()` when it started: a stack built by other set-up code is not reused. */
  source?: string;
}

/**
 * A digest of the code that decides what the stack runs and how (this directory: Pebble's
 * profiles, Traefik's providers, BIND's zones, the API server's flags). A running stack started by
 * different set-up code is restarted rather than reused, so a test never meets yesterday's stack.
 */
function stackSource(): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(import.meta.dirname).filter((n) => n.endsWith('.ts')).sort()) {
    hash.update(name).update(readFileSync(join(import.meta.dirname, name)));
  }
  return hash.digest('hex').slice(0, 16);
}

type Pids = Partial<Record<Component, number>>;

/**
 * CERTROUTE_STACK_RESPONDER_PORT pins the port behind the stack's responder Service; unset, a new
 * stack takes a free one, like every other port, so that two stacks on one machine (two checkouts'
 * `npm test`, or a test run beside a controller on its default port 8089) never share one.
 */
const pinnedResponderPort = process.env.CERTROUTE_STACK_RESPONDER_PORT ? Number(process.env.CERTROUTE_STACK_RESPONDER_PORT) : undefined;

const readyTimeoutMs: Record<Component, number> = {
  etcd: 30_000, 'kube-apiserver': 90_000, challtestsrv: 15_000, 'bind-primary': 15_000, 'bind-primary-relay': 15_000, bind: 15_000, cloudflare: 15_000, pebble: 30_000, traefik: 30_000,
};

export function writeJson(file: string, value: unknown): void {
  // Write-then-rename: a reader in another process never sees half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, file);
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function readEnv(): StackEnv {
  const env = readJson<StackEnv>(envFile);
  if (!env) throw new StackError(`no local stack: ${envFile} is missing; run \`npm run stack -- up\``);
  return env;
}

function readState(): StackState {
  const state = readJson<StackState>(stateFile);
  if (!state) throw new StackError(`no local stack: ${stateFile} is missing; run \`npm run stack -- up\``);
  return state;
}

function recordPid(component: Component, pid: number | undefined): void {
  const pids = readJson<Pids>(pidsFile) ?? {};
  if (pid === undefined) delete pids[component];
  else pids[component] = pid;
  writeJson(pidsFile, pids);
}

async function start(component: Component, state: StackState, spec: LaunchSpec): Promise<void> {
  state.specs[component] = spec;
  writeJson(stateFile, state);
  const logOffset = logSize(component);
  const pid = launch(component, spec);
  recordPid(component, pid);
  await waitReady(component, pid, readiness(component, state.ports, state.pki, state.dns), readyTimeoutMs[component], logOffset);
}

function envOf(state: StackState): StackEnv {
  const { ports, pki, dns } = state;
  return {
    kubeconfig: kubeconfigFile,
    apiserver: `https://127.0.0.1:${ports.apiserver}`,
    pebble: {
      directory: `https://127.0.0.1:${ports.pebble}/dir`,
      management: `https://127.0.0.1:${ports.pebbleManagement}`,
      tlsCa: pki.caCert,
    },
    challtestsrv: `http://127.0.0.1:${ports.challtestsrvManagement}`,
    traefik: { web: ports.web, websecure: ports.websecure, api: `http://127.0.0.1:${ports.traefikApi}` },
    bind: { address: `127.0.0.1:${ports.bindDns}`, zone: dns.zone, tsigKeyName: dns.tsigKeyName, tsigAlgorithm: dns.tsigAlgorithm, tsigSecret: dns.tsigSecret,
      laggingZone: dns.laggingZone, laggingPrimary: `${LAGGING_PRIMARY_ADDRESS}:${ports.bindDns}` },
    cloudflare: { api: `http://127.0.0.1:${ports.cloudflareApi}/client/v4`, token: dns.cloudflareToken, zone: dns.cloudflareZone },
    responderPort: state.responderPort,
  };
}

/** Our process, not a recycled pid: alive and running the binary we started. */
function isOurs(pid: number | undefined, spec: LaunchSpec | undefined): boolean {
  return pid !== undefined && spec !== undefined && isAlive(pid) && commandLine(pid).startsWith(spec.command);
}

/** The running stack, if it is complete, answers, and runs the binaries we would start now. */
async function reusable(bins: Binaries): Promise<StackEnv | undefined> {
  const env = readJson<StackEnv>(envFile);
  const state = readJson<StackState>(stateFile);
  const pids = readJson<Pids>(pidsFile);
  if (!env || !state || !pids) return undefined;
  if (JSON.stringify(state.bins) !== JSON.stringify(bins)) return undefined; // rebuilt since: restart
  if (!components.every((c) => isOurs(pids[c], state.specs[c]))) return undefined;
  if (!state.dns) return undefined; // started before the stack had DNS
  if (state.source !== stackSource()) return undefined; // the set-up code changed since: restart
  const checks = await Promise.all(components.map((c) => readiness(c, state.ports, state.pki, state.dns)().catch(() => false)));
  if (!checks.every(Boolean)) return undefined;
  if (!state.responderPort) {
    // Started when the port was fixed: its Service keeps the port it was made with.
    const responderPort = pinnedResponderPort ?? 8089;
    writeJson(stateFile, { ...state, responderPort });
    writeJson(envFile, { ...env, responderPort });
    return { ...env, responderPort };
  }
  return env;
}

async function waitForDefaultNamespace(): Promise<void> {
  // The apiserver's bootstrap controller creates `default` shortly after /readyz turns green.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await kubectl(['get', 'namespace', 'default', '-o', 'name']);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new StackError('kube-apiserver never created namespace default; see .stack/logs/kube-apiserver.log', { cause: error });
      await sleep(200);
    }
  }
}

/**
 * certroute's CRDs and admission policies from this checkout. Applied when the stack starts, and
 * again when a running stack is reused, so a checkout whose CRDs changed never tests against old ones.
 */
async function applyRepositoryManifests(): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', certrouteCrdDir]);
  // crd --all, not -f: the directory also holds the admission policy, which has no such condition.
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  // And what the chart renders on a 1.36 API server: the requester identity on CertificateRequests.
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', requesterIdentityPolicy]);
}

async function startKubernetes(state: StackState): Promise<void> {
  await start('etcd', state, etcdSpec(state.bins, state.ports));
  await start('kube-apiserver', state, apiserverSpec(state.bins, state.ports, state.pki));
  await waitForDefaultNamespace();
  const crds = await traefikCrdFile();
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', crds]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
  // What a Gateway API install provides: its CRDs; and the GatewayClass and IngressClass Traefik's Helm chart creates.
  const gatewayCrds = (await gatewayApiCrdFiles()).flatMap((f) => ['-f', f]);
  await kubectl(['apply', '--server-side', '--force-conflicts', ...gatewayCrds]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...gatewayCrds]);
  await apply(loadKubeConfig(), [traefikGatewayClass, traefikIngressClass]);
  // What the Helm chart provides in a real cluster: certroute's CRDs, its namespace and the
  // responder's Service; and what a Traefik install provides: Traefik's Service in namespace
  // traefik, which the controller's self-check finds by default.
  await applyRepositoryManifests();
  await kubectl(['create', 'namespace', 'certroute']);
  await exposeLocalPort(loadKubeConfig(), { namespace: 'certroute', name: 'certroute', port: state.responderPort });
  await kubectl(['create', 'namespace', 'traefik']);
  await apply(loadKubeConfig(), [traefikService(state.ports)]);
}

/** The GatewayClass whose Gateways Traefik's kubernetesGateway provider serves, named as its Helm chart names it. */
const traefikGatewayClass = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'GatewayClass',
  metadata: { name: 'traefik' },
  spec: { controllerName: 'traefik.io/gateway-controller' },
} as KubernetesObject;

/** The IngressClass Traefik's Helm chart creates: Traefik serves an Ingress whose ingressClassName names it. */
const traefikIngressClass = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'IngressClass',
  metadata: { name: 'traefik' },
  spec: { controller: 'traefik.io/ingress-controller' },
} as KubernetesObject;

/** Traefik's Service as its Helm chart names it, pointing at the local entrypoints. */
function traefikService(ports: Ports): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'traefik', name: 'traefik' },
    spec: {
      type: 'ExternalName',
      externalName: 'localhost',
      ports: [
        { name: 'web', port: ports.web, protocol: 'TCP' },
        { name: 'websecure', port: ports.websecure, protocol: 'TCP' },
      ],
    },
  } as KubernetesObject;
}

async function startAcme(state: StackState): Promise<void> {
  await start('challtestsrv', state, challtestsrvSpec(state.bins, state.ports));
  await start('bind-primary', state, laggingPrimarySpec(state.bins.named, state.ports.laggingPrimaryDns, state.dns));
  await start('bind-primary-relay', state, dnsRelaySpec(state.ports));
  await start('bind', state, bindSpec(state.bins.named, state.ports.bindDns, state.ports.challtestsrvDns, state.ports.laggingPrimaryDns, state.dns));
  await start('cloudflare', state, cloudflareSpec(state.ports, state.dns));
  await start('pebble', state, pebbleSpec(state.bins, state.ports, state.pki));
}

export interface UpOptions {
  /** Progress lines (builds, timings); defaults to stderr. */
  log?: (line: string) => void;
  /** Recorded when the stack starts fresh; see `release`. Defaults to 'cli'. */
  startedBy?: StartedBy;
}

/**
 * Starts the stack, or returns the running one if every component is alive and ready. Anything
 * left from an earlier run is torn down first; a stack that fails half-way is torn down too.
 */
export async function up(opts: UpOptions = {}): Promise<StackEnv> {
  const log = opts.log ?? ((line: string) => console.error(line));
  return withLock('stack up', () => upLocked(log, opts.startedBy ?? 'cli'), log);
}

function clearStackDir(): void {
  mkdirSync(stackDir, { recursive: true });
  for (const entry of readdirSync(stackDir)) {
    const path = join(stackDir, entry);
    // The locks stay: a live process may hold one.
    if (path !== lockFile && path !== testsLockFile) rmSync(path, { recursive: true, force: true });
  }
}

async function resolveBinaries(log: (line: string) => void): Promise<Binaries> {
  const named = await namedPath(log);
  const go = await binaries(['etcd', 'kube-apiserver', 'kubectl', 'traefik', 'pebble', 'pebble-challtestsrv'], log);
  return {
    etcd: go.etcd!, kubeApiserver: go['kube-apiserver']!, kubectl: go.kubectl!, traefik: go.traefik!,
    pebble: go.pebble!, challtestsrv: go['pebble-challtestsrv']!, named,
  };
}

/**
 * Maps LOOPBACK_NAME to 127.0.0.1 in /etc/hosts, once, so that Traefik reaches local processes
 * behind Gateways (see WIRING.md). Without root the Gateway tests cannot route; everything else works.
 */
function ensureLoopbackName(log: (line: string) => void): void {
  const hosts = '/etc/hosts';
  try {
    if (readFileSync(hosts, 'utf8').split('\n').some((l) => l.split(/\s+/).slice(1).includes(LOOPBACK_NAME))) return;
    appendFileSync(hosts, `127.0.0.1 ${LOOPBACK_NAME}\n`);
    log(`added "127.0.0.1 ${LOOPBACK_NAME}" to ${hosts}, for Gateway backends on this machine`);
  } catch (error) {
    log(`could not map ${LOOPBACK_NAME} to 127.0.0.1 in ${hosts} (${(error as Error).message}); Traefik cannot reach local processes behind Gateways`);
  }
}

async function upLocked(log: (line: string) => void, startedBy: StartedBy): Promise<StackEnv> {
  const bins = await resolveBinaries(log);
  ensureLoopbackName(log);
  const running = await reusable(bins);
  if (running) {
    const state = readState();
    if (startedBy === 'cli' && state.startedBy !== 'cli') writeJson(stateFile, { ...state, startedBy }); // adopted by hand: keep it up
    await applyRepositoryManifests();
    return running;
  }
  await stopAll();
  clearStackDir();
  mkdirSync(logsDir, { recursive: true });

  const [pki, portList] = await Promise.all([makeStackPki(pkiDir), freePorts(14)]);
  const [etcdClient, etcdPeer, apiserver, pebble, pebbleManagement, challtestsrvDns, challtestsrvManagement, bindDns, laggingPrimaryDns, cloudflareApi, web, websecure, traefikApi, responder] =
    portList as [number, number, number, number, number, number, number, number, number, number, number, number, number, number];
  const ports: Ports = { etcdClient, etcdPeer, apiserver, pebble, pebbleManagement, challtestsrvDns, challtestsrvManagement, bindDns, laggingPrimaryDns, cloudflareApi, web, websecure, traefikApi };
  const state: StackState = { startedBy, ports, pki, dns: newStackDns(), bins, specs: {}, responderPort: pinnedResponderPort ?? responder, source: stackSource() };
  writeJson(stateFile, state);
  writeKubeconfig(`https://127.0.0.1:${ports.apiserver}`, pki);

  try {
    await Promise.all([startKubernetes(state), startAcme(state)]);
    await start('traefik', state, traefikSpec(bins, ports, kubeconfigFile));
  } catch (error) {
    await stopAll().catch(() => {});
    throw error;
  }
  const env = envOf(state);
  writeJson(envFile, env);
  return env;
}

/** Live processes whose working directory is in `.stack` and that run one of our programs. */
function strays(): number[] {
  // Cached binaries are `<name>-<version>`, or `<name>` inside a group's `<group>-<version>/` directory.
  const ours = /^(etcd|kube-apiserver|traefik|kubectl)(-v|$)|^pebble(-challtestsrv)?$|^named$/;
  const found: number[] = [];
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number)) {
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      const exe = basename(readlinkSync(`/proc/${entry}/exe`));
      if (cwd.startsWith(stackDir) && ours.test(exe) && isAlive(entry)) found.push(entry);
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return found;
}

/**
 * Stops every component and verifies that none of their processes is left. Refuses while another
 * live test run holds a lease on the stack, unless `force`.
 */
export async function down(opts: { force?: boolean } = {}): Promise<void> {
  await withLock('stack down', async () => {
    const users = otherUsers();
    if (users.length > 0 && !opts.force) {
      throw new StackError(`the stack is in use by test run(s) ${users.join(', ')}; let them finish, or run \`npm run stack -- down --force\``);
    }
    await stopAll();
  });
}

/** Registers this process as a user of the stack; `npm test` does this after `up`. */
export function use(): void {
  takeLease();
}

/**
 * Ends this process's use of the stack and stops the stack if a test run started it and no other
 * live test run still uses it. A stack started by hand (`npm run stack -- up`) stays up.
 * Resolves to whether the stack was stopped.
 */
export async function release(): Promise<boolean> {
  dropLease();
  return withLock('stack release', async () => {
    const state = readJson<StackState>(stateFile);
    if (otherUsers().length > 0 || (state && state.startedBy !== 'test')) return false;
    await stopAll();
    return true;
  });
}

async function stopAll(): Promise<void> {
  const pids = readJson<Pids>(pidsFile) ?? {};
  // Reverse start order: a kube-apiserver whose etcd is gone hangs in shutdown until SIGKILL.
  const ordered = [...components].reverse().flatMap((c) => (pids[c] === undefined ? [] : [pids[c]]));
  for (const pid of ordered) await killGroup(pid);
  const leftovers = strays();
  await Promise.all(leftovers.map((pid) => killGroup(pid)));
  const left = [...ordered, ...leftovers].flatMap((pid) => groupMembers(pid)).concat(strays());
  if (left.length > 0) throw new StackError(`stack processes survived down: ${left.join(', ')}; kill them by pid`);
  rmSync(pidsFile, { force: true });
  rmSync(envFile, { force: true });
}

/**
 * Restarts one component on the same ports, for fault tests. Pebble, Traefik and kube-apiserver
 * take options that replace the ones they run with now; without options they restart with the
 * defaults. Pebble
 * forgets accounts and orders and makes a new root CA: fetch it again from `<management>/roots/0`.
 * Resolves once the component answers again.
 */
export async function restart(component: 'traefik', opts?: TraefikOptions): Promise<void>;
export async function restart(component: 'pebble', opts?: PebbleOptions): Promise<void>;
export async function restart(component: 'kube-apiserver', opts?: ApiserverOptions): Promise<void>;
export async function restart(component: Component): Promise<void>;
export async function restart(component: Component, opts?: TraefikOptions | PebbleOptions | ApiserverOptions): Promise<void> {
  await withLock(`restart ${component}`, () => restartLocked(component, opts));
}

async function restartLocked(component: Component, opts?: TraefikOptions | PebbleOptions | ApiserverOptions): Promise<void> {
  const state = readState();
  const pid = (readJson<Pids>(pidsFile) ?? {})[component];
  if (pid !== undefined) await killGroup(pid);
  recordPid(component, undefined);
  let spec = state.specs[component];
  if (component === 'pebble') spec = pebbleSpec(state.bins, state.ports, state.pki, opts as PebbleOptions | undefined);
  if (component === 'traefik') spec = traefikSpec(state.bins, state.ports, kubeconfigFile, opts as TraefikOptions | undefined);
  if (component === 'kube-apiserver') spec = apiserverSpec(state.bins, state.ports, state.pki, opts as ApiserverOptions | undefined);
  if (!spec) throw new StackError(`no launch spec for ${component} in ${stateFile}; run \`npm run stack -- up\``);
  await start(component, state, spec);
}

export interface ComponentStatus {
  component: Component;
  pid: number | undefined;
  alive: boolean;
}

export function status(): { env: StackEnv | undefined; components: ComponentStatus[] } {
  const pids = readJson<Pids>(pidsFile) ?? {};
  const state = readJson<StackState>(stateFile);
  return {
    env: readJson<StackEnv>(envFile),
    components: components.map((component) => ({
      component,
      pid: pids[component],
      alive: isOurs(pids[component], state?.specs[component]),
    })),
  };
}

/** True when Traefik's API answers; a cheap liveness check for callers that only need routing. */
export async function traefikAnswers(env: StackEnv = readEnv()): Promise<boolean> {
  return (await get(`${env.traefik.api}/ping`).catch(() => ({ status: 0 }))).status === 200;
}

/**
 * A second Pebble beside the stack's, with its own ports, accounts and root, sharing the stack's
 * DNS and TLS certificate: for a test that needs Pebble to validate elsewhere (another `tlsPort`,
 * a closed `httpPort`) without changing the Pebble every other file uses. The caller stops it.
 */
export async function startExtraPebble(name: string, options: PebbleOptions = {}): Promise<{ pebble: StackEnv['pebble']; stop: () => Promise<void> }> {
  const state = readState();
  const [pebble = 0, pebbleManagement = 0] = await freePorts(2);
  const ports = { ...state.ports, pebble, pebbleManagement };
  const pid = launch(name, pebbleSpec(state.bins, ports, state.pki, { ...options, dir: join(stackDir, name) }));
  const stop = () => killGroup(pid);
  try {
    await waitReady(name, pid, readiness('pebble', ports, state.pki, state.dns), readyTimeoutMs.pebble);
  } catch (err) {
    await stop();
    throw err;
  }
  return { pebble: { ...envOf(state).pebble, directory: `https://127.0.0.1:${pebble}/dir`, management: `https://127.0.0.1:${pebbleManagement}` }, stop };
}
