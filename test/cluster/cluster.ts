/**
 * The single-node cluster: a real control plane, a real node (containerd, kubelet, kube-proxy in
 * iptables mode) and CoreDNS and Traefik as pods, with Pebble outside it as a public CA would be.
 * `npm run cluster -- up|down|status` drives it; tests find it through `.cluster/env.json`.
 *
 * `up` notes the host first (host.ts) and `down` gives it back: no process, mount, iptables rule,
 * cgroup, link or kernel setting of the cluster outlives `down`.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { binaries, traefikCrdFile } from '../env/binaries.ts';
import { apply, kubectl, loadKubeConfig, writeKubeconfig } from '../env/kube.ts';
import { makeStackPki, type StackPki } from '../env/pki.ts';
import { freePorts } from '../env/ports.ts';
import { get } from '../env/probe.ts';
import { commandLine, isAlive, killGroup, launch, StackError, type LaunchSpec } from '../env/proc.ts';
import { readJson, writeJson } from '../env/stack.ts';
import { corednsManifests, traefikManifests } from './addons.ts';
import { createBridge, ensurePackages, hostDifferences, recordedHost, recordHost, restoreHost, run, type HostState } from './host.ts';
import { buildImages, pauseImageRef, type ImageRefs } from './images.ts';
import {
  clusterDir, clusterEnvFile, clusterKubeconfig, clusterLog, clusterLogsDir, clusterPkiDir, clusterStateFile, containerdSocket, network, nodeName,
} from './paths.ts';
import {
  apiserverSpec, challtestsrvSpec, clusterComponents, containerdSpec, controllerManagerSpec, etcdSpec, kubeletSpec, kubeProxySpec, pebbleSpec, schedulerSpec,
  type ClusterBinaries, type ClusterComponent, type ClusterPorts,
} from './specs.ts';

/** The contract with the tests: `.cluster/env.json`, exactly this shape. */
export interface ClusterEnv {
  kubeconfig: string;
  nodeName: string;
  /** Traefik's host ports on 127.0.0.1. */
  traefik: { web: number; websecure: number };
  pebble: { directory: string; management: string; tlsCa: string };
  images: { certroute: string; traefik: string; backend: string };
}

interface ClusterState {
  ports: ClusterPorts;
  pki: StackPki;
  bins: ClusterBinaries;
  images?: ImageRefs;
  specs: Partial<Record<ClusterComponent, LaunchSpec>>;
  pids: Partial<Record<ClusterComponent, number>>;
}

export function readClusterEnv(): ClusterEnv {
  const env = readJson<ClusterEnv>(clusterEnvFile);
  if (!env) throw new StackError(`no cluster: ${clusterEnvFile} is missing; run \`npm run cluster -- up\``);
  return env;
}

/** GET over https without verifying: the control plane's own health endpoints on loopback. */
function insecureStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { rejectUnauthorized: false, timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

function readiness(component: ClusterComponent, state: ClusterState): () => Promise<boolean> {
  const { ports, pki } = state;
  const ca = () => readFileSync(pki.caCert);
  switch (component) {
    case 'etcd':
      return async () => (await get(`http://127.0.0.1:${ports.etcdClient}/health`)).body.includes('"health":"true"');
    case 'kube-apiserver':
      return async () => {
        const tls = { ca: ca(), cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) };
        return (await get(`https://${network.nodeIp}:${ports.apiserver}/readyz`, tls)).status === 200;
      };
    case 'containerd':
      return async () => (await run('ctr', ['--address', containerdSocket, 'version']).then(() => true, () => false));
    case 'kube-controller-manager':
      return async () => (await insecureStatus(`https://127.0.0.1:${ports.controllerManager}/healthz`)) === 200;
    case 'kube-scheduler':
      return async () => (await insecureStatus(`https://127.0.0.1:${ports.scheduler}/healthz`)) === 200;
    case 'kubelet':
      return async () => (await get(`http://127.0.0.1:${ports.kubeletHealthz}/healthz`)).status === 200;
    case 'kube-proxy':
      return async () => (await get(`http://127.0.0.1:${ports.proxyHealthz}/healthz`)).status === 200;
    case 'challtestsrv':
      return async () => (await get(`http://127.0.0.1:${ports.challtestsrvManagement}/`)).status > 0;
    case 'pebble':
      return async () => (await get(`https://${network.nodeIp}:${ports.pebble}/dir`, { ca: ca() })).status === 200
        && (await get(`https://127.0.0.1:${ports.pebbleManagement}/roots/0`, { ca: ca() })).status === 200;
  }
}

async function start(component: ClusterComponent, state: ClusterState, spec: LaunchSpec): Promise<void> {
  state.specs[component] = spec;
  const pid = launch(component, spec, clusterLog(component));
  state.pids[component] = pid;
  writeJson(clusterStateFile, state);
  const ready = readiness(component, state);
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (!isAlive(pid)) throw new StackError(`${component} exited during start; see ${clusterLog(component)}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) throw new StackError(`${component} did not become ready within 120 s; see ${clusterLog(component)}`);
    await sleep(200);
  }
}

async function resolveBinaries(log: (line: string) => void): Promise<ClusterBinaries & { coredns: string; backend: string; pause: string; traefik: string }> {
  const b = await binaries([
    'etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy', 'kubectl',
    'pebble', 'pebble-challtestsrv', 'traefik', 'coredns', 'backend', 'pause',
  ], log);
  return {
    etcd: b.etcd!, kubeApiserver: b['kube-apiserver']!, kubeControllerManager: b['kube-controller-manager']!, kubeScheduler: b['kube-scheduler']!,
    kubelet: b.kubelet!, kubeProxy: b['kube-proxy']!, kubectl: b.kubectl!, pebble: b.pebble!, challtestsrv: b['pebble-challtestsrv']!,
    traefik: b.traefik!, coredns: b.coredns!, backend: b.backend!, pause: b.pause!,
  };
}

const k = (args: string[]) => kubectl(args, { kubeconfig: clusterKubeconfig });

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, hint: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new StackError(`${what} within ${timeoutMs / 1000} s; ${hint}`);
    await sleep(500);
  }
}

async function deployAddons(state: ClusterState, images: ImageRefs): Promise<void> {
  const kc = loadKubeConfig(clusterKubeconfig);
  const crds = await traefikCrdFile();
  await k(['apply', '--server-side', '--force-conflicts', '-f', crds]);
  await k(['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
  await apply(kc, corednsManifests(images.coredns));
  await apply(kc, traefikManifests({ image: images.traefik, web: state.ports.web, websecure: state.ports.websecure }));
  for (const [namespace, name] of [['kube-system', 'coredns'], ['traefik', 'traefik']] as const) {
    await waitFor(`deployment ${namespace}/${name} did not become available`, async () => {
      await k(['-n', namespace, 'rollout', 'status', `deployment/${name}`, '--timeout=5s']);
      return true;
    }, 180_000, `see \`kubectl -n ${namespace} describe pods\` and ${clusterLog('kubelet')}`);
  }
}

function envOf(state: ClusterState, images: ImageRefs): ClusterEnv {
  return {
    kubeconfig: clusterKubeconfig,
    nodeName,
    traefik: { web: state.ports.web, websecure: state.ports.websecure },
    pebble: {
      directory: `https://${network.nodeIp}:${state.ports.pebble}/dir`,
      management: `https://127.0.0.1:${state.ports.pebbleManagement}`,
      tlsCa: state.pki.caCert,
    },
    images: { certroute: images.certroute, traefik: images.traefik, backend: images.backend },
  };
}

export interface ClusterUpOptions {
  log?: (line: string) => void;
}

/** Brings the cluster up from nothing; a cluster left from before is taken down first. */
export async function clusterUp(opts: ClusterUpOptions = {}): Promise<ClusterEnv> {
  const log = opts.log ?? ((line: string) => console.error(line));
  if (process.getuid?.() !== 0) throw new StackError('the cluster runs kubelet and containerd, which need root');
  if (existsSync(clusterStateFile) || recordedHost()) await clusterDown({ log });
  await ensurePackages(log);
  const bins = await resolveBinaries(log);
  mkdirSync(clusterLogsDir, { recursive: true });
  const before = await recordHost();
  try {
    return await upRecorded(bins, before, log);
  } catch (error) {
    log(`cluster up failed: ${error instanceof Error ? error.message : String(error)}; taking it down`);
    await clusterDown({ log, keepLogs: true }).catch((downError: unknown) => log(`down: ${downError instanceof Error ? downError.message : String(downError)}`));
    throw error;
  }
}

async function upRecorded(bins: Awaited<ReturnType<typeof resolveBinaries>>, before: HostState, log: (line: string) => void): Promise<ClusterEnv> {
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await fn();
    log(`${what} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  };
  await createBridge(before);
  const [pki, portList] = await Promise.all([
    makeStackPki(clusterPkiDir, { apiserverIps: [network.nodeIp], pebbleIps: [network.nodeIp] }),
    freePorts(15),
  ]);
  const [etcdClient, etcdPeer, apiserver, controllerManager, scheduler, kubelet, kubeletHealthz, proxyHealthz, proxyMetrics,
    pebble, pebbleManagement, challtestsrvDns, challtestsrvManagement, web, websecure] = portList as number[] as [
    number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];
  const ports: ClusterPorts = {
    etcdClient: etcdClient, etcdPeer: etcdPeer, apiserver: apiserver, controllerManager: controllerManager, scheduler: scheduler, kubelet: kubelet,
    kubeletHealthz: kubeletHealthz, proxyHealthz: proxyHealthz, proxyMetrics: proxyMetrics, pebble: pebble, pebbleManagement: pebbleManagement,
    challtestsrvDns: challtestsrvDns, challtestsrvManagement: challtestsrvManagement, web: web, websecure: websecure,
  };
  const state: ClusterState = { ports, pki, bins, specs: {}, pids: {} };
  writeJson(clusterStateFile, state);
  writeKubeconfig(`https://${network.nodeIp}:${ports.apiserver}`, pki, clusterKubeconfig);

  await step('control plane up', async () => {
    await start('etcd', state, etcdSpec(bins, ports));
    await start('kube-apiserver', state, apiserverSpec(bins, ports, pki));
  });
  await step('containerd up', () => start('containerd', state, containerdSpec(pauseImageRef(bins.pause))));
  const images = await step('images built and imported', () => buildImages(bins, log));
  state.images = images;
  writeJson(clusterStateFile, state);
  if (images.pause !== pauseImageRef(bins.pause)) throw new StackError(`pause image ${images.pause} is not the one containerd was configured with`);
  await step('node up', async () => {
    await start('kube-controller-manager', state, controllerManagerSpec(bins, ports, pki));
    await start('kube-scheduler', state, schedulerSpec(bins, ports));
    await start('kubelet', state, kubeletSpec(bins, ports, pki));
    await start('kube-proxy', state, kubeProxySpec(bins, ports));
    await waitFor(`node ${nodeName} did not become Ready`, async () => {
      const out = await k(['get', 'node', nodeName, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return out.stdout.trim() === 'True';
    }, 120_000, `see ${clusterLog('kubelet')}`);
    await waitFor('ServiceAccount default/default was not created', async () => {
      await k(['-n', 'default', 'get', 'serviceaccount', 'default']);
      return true;
    }, 60_000, `see ${clusterLog('kube-controller-manager')}`);
  });
  await step('CoreDNS and Traefik ready', () => deployAddons(state, images));
  await step('Pebble up', async () => {
    await start('challtestsrv', state, challtestsrvSpec(bins, ports, clusterDir));
    await start('pebble', state, pebbleSpec(bins, ports, pki));
  });
  const env = envOf(state, images);
  writeJson(clusterEnvFile, env);
  return env;
}

export interface ClusterDownOptions {
  log?: (line: string) => void;
  /** Keep `.cluster/logs` (after a failed `up`, to read why). */
  keepLogs?: boolean;
}

/** Pods first, so that kubelet and containerd tear their networking down the normal way. */
async function drainPods(state: ClusterState, log: (line: string) => void): Promise<void> {
  if (!state.pids['kube-apiserver'] || !isAlive(state.pids['kube-apiserver']) || !state.pids.kubelet || !isAlive(state.pids.kubelet)) return;
  try {
    await k(['delete', 'deployments,statefulsets,daemonsets,replicasets,jobs', '--all', '--all-namespaces', '--wait=false']);
    await k(['delete', 'pods', '--all', '--all-namespaces', '--grace-period=0', '--force', '--wait=false']);
    await waitFor('pods still ran', async () => (await run('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'tasks', 'ls', '-q'])).trim() === '', 60_000, 'stopping them directly');
  } catch (error) {
    log(`draining pods: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Whatever containerd still holds: tasks killed, containers removed. */
async function clearContainerd(): Promise<void> {
  const ctr = (args: string[]) => run('ctr', ['--address', containerdSocket, '-n', 'k8s.io', ...args]);
  const tasks = (await ctr(['tasks', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean);
  for (const id of tasks) await ctr(['tasks', 'kill', '-s', 'SIGKILL', id]).catch(() => {});
  for (const id of tasks) await ctr(['tasks', 'delete', '-f', id]).catch(() => {});
  const containers = (await ctr(['containers', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean);
  for (const id of containers) await ctr(['containers', 'delete', id]).catch(() => {});
}

/** containerd's shims outlive it; ours name our socket on their command line. */
function shimPids(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number)) {
    const cmd = commandLine(entry);
    if (cmd.includes('containerd-shim') && cmd.includes(containerdSocket) && isAlive(entry)) found.push(entry);
  }
  return found;
}

/** Processes still running inside the cluster's pods: children of our shims' cgroups. */
function podProcesses(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number)) {
    try {
      if (readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes('/kubepods') && isAlive(entry)) found.push(entry);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Stops everything the cluster started and gives the host back (see host.ts). Safe to run when
 * nothing is up, and after a failed `up`.
 */
export async function clusterDown(opts: ClusterDownOptions = {}): Promise<string[]> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const state = readJson<ClusterState>(clusterStateFile);
  if (state) {
    await drainPods(state, log);
    const order: ClusterComponent[] = ['pebble', 'challtestsrv', 'kube-proxy', 'kubelet', 'kube-scheduler', 'kube-controller-manager'];
    for (const component of order) if (state.pids[component]) await killGroup(state.pids[component]);
    if (state.pids.containerd && isAlive(state.pids.containerd)) await clearContainerd();
    for (const component of ['containerd', 'kube-apiserver', 'etcd'] as const) if (state.pids[component]) await killGroup(state.pids[component]);
  }
  // Only if this cluster ran containers: pods on this machine are then ours.
  if (state?.pids.containerd !== undefined) {
    killPids(shimPids());
    killPids(podProcesses());
    await waitFor('container processes survived SIGKILL', async () => shimPids().length + podProcesses().length === 0, 10_000, 'kill them by pid');
  }
  const before = recordedHost();
  let restored: string[] = [];
  if (before) {
    restored = await restoreHost(before);
    const left = await hostDifferences(before);
    if (left.length > 0) throw new StackError(`the host differs from before the cluster: ${left.join('; ')}`);
  }
  removeClusterFiles(opts.keepLogs ?? false);
  return restored;
}

function removeClusterFiles(keepLogs: boolean): void {
  if (!existsSync(clusterDir)) return;
  for (const entry of readdirSync(clusterDir)) {
    const path = join(clusterDir, entry);
    if (keepLogs && path === clusterLogsDir) continue;
    rmSync(path, { recursive: true, force: true });
  }
}

export interface ClusterStatus {
  components: { component: ClusterComponent; pid: number | undefined; alive: boolean }[];
  env: ClusterEnv | undefined;
}

export function clusterStatus(): ClusterStatus {
  const state = readJson<ClusterState>(clusterStateFile);
  return {
    env: readJson<ClusterEnv>(clusterEnvFile),
    components: clusterComponents.map((component) => {
      const pid = state?.pids[component];
      const spec = state?.specs[component];
      const alive = pid !== undefined && spec !== undefined && isAlive(pid) && commandLine(pid).startsWith(spec.command);
      return { component, pid, alive };
    }),
  };
}

