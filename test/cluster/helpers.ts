/**
 * What the cluster tests share: the cluster's env, kubectl and helm against it, the chart
 * installed as a user would, the backend and annotated IngressRoutes, and certificates as Traefik's
 * pod serves them on its websecure host port.
 */
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { helmPath } from '../env/binaries.ts';
import { kubectl } from '../env/kube.ts';
import { repoRoot } from '../env/paths.ts';
import { annotatedIngressRoute, waitFor } from '../helpers/controller.ts';
import { pebbleRoot } from '../helpers/pebble.ts';
import { servedCertificate, type Served } from '../helpers/tls.ts';
import { backendManifests } from './addons.ts';
import { readClusterEnv, type ClusterEnv } from './cluster.ts';

export const env: ClusterEnv = readClusterEnv();
export const NS = 'certroute';
export const ISSUER = 'pebble';
export const APP_NS = 'shop';

export const k = (args: string[], input?: string) => kubectl(args, { kubeconfig: env.kubeconfig, ...(input === undefined ? {} : { input }) });

export async function kjson<T>(args: string[]): Promise<T> {
  return JSON.parse((await k([...args, '-o', 'json'])).stdout) as T;
}

export async function applyManifests(objects: unknown[]): Promise<void> {
  await k(['apply', '--server-side', '--force-conflicts', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
}

export async function helm(args: string[]): Promise<string> {
  const bin = await helmPath();
  return new Promise((resolve, reject) => {
    execFile(bin, ['--kubeconfig', env.kubeconfig, ...args], { cwd: repoRoot, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`helm ${args.join(' ')} failed: ${stderr.trim() || error.message}`, { cause: error }));
      else resolve(stdout);
    });
  });
}

/**
 * The only values a user sets to run the chart here: the locally built image, and one
 * ClusterIssuer for Pebble with the CA bundle of Pebble's TLS certificate.
 */
export function chartValues(): string[] {
  const image = env.images.certroute;
  const at = image.lastIndexOf(':');
  return [
    '--set', `image.repository=${image.slice(0, at)}`,
    '--set', `image.tag=${image.slice(at + 1)}`,
    '--set', 'image.pullPolicy=Never',
    '--set', `clusterIssuers.acme[0].name=${ISSUER}`,
    '--set', `clusterIssuers.acme[0].server=${env.pebble.directory}`,
    '--set', `clusterIssuers.acme[0].caBundle=${readFileSync(env.pebble.tlsCa).toString('base64')}`,
    // Pebble picks a random profile for an order that names none (see PEBBLE_PROFILES).
    '--set', 'clusterIssuers.acme[0].profile=default',
  ];
}

export const chartDir = join(repoRoot, 'charts', 'certroute');

export interface PodView {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { containers: { readinessProbe?: unknown; livenessProbe?: unknown }[] };
  status: { phase?: string; conditions?: { type: string; status: string }[] };
}

export const isReady = (pod: PodView) => !pod.metadata.deletionTimestamp && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

export async function controllerPods(): Promise<PodView[]> {
  return (await kjson<{ items: PodView[] }>(['-n', NS, 'get', 'pods', '-l', 'app.kubernetes.io/name=certroute,app.kubernetes.io/component=controller'])).items;
}

export async function waitForReadyControllers(count = 2, timeoutMs = 240_000): Promise<PodView[]> {
  return waitFor(`${count} Ready controller pods`, async () => {
    const pods = (await controllerPods()).filter(isReady);
    return pods.length === count ? pods : undefined;
  }, timeoutMs, 1000);
}

/** The pod holding the Lease; its identity is `<hostname>_<pid>` and a pod's hostname is its name. */
export async function leaderPod(): Promise<string> {
  const lease = await kjson<{ spec: { holderIdentity?: string } }>(['-n', NS, 'get', 'lease', 'certroute-controller']);
  const holder = lease.spec.holderIdentity ?? '';
  return holder.slice(0, holder.lastIndexOf('_'));
}

export async function deployBackend(): Promise<void> {
  await k(['create', 'namespace', APP_NS]).catch(() => {});
  await k(['label', '--overwrite', 'namespace', APP_NS, 'pod-security.kubernetes.io/enforce=restricted']);
  await applyManifests(backendManifests(APP_NS, 'backend', env.images.backend));
  await k(['-n', APP_NS, 'rollout', 'status', 'deployment/backend', '--timeout=180s']);
}

export async function applyRoute(name: string, host: string): Promise<void> {
  await k(['apply', '-f', '-'], annotatedIngressRoute({ namespace: APP_NS, name, host, issuer: ISSUER, backendPort: 80 }));
}

/** The certificate Traefik's pod serves for `host`, once it names `host`. */
export async function waitForServed(host: string, timeoutMs = 180_000): Promise<Served> {
  return waitFor(`Traefik's pod serving a certificate for ${host}`, async () => {
    const served = await servedCertificate(env.traefik.websecure, host).catch(() => undefined);
    return served?.subjectAltName.split(', ').includes(`DNS:${host}`) ? served : undefined;
  }, timeoutMs, 250);
}

/** Pebble's current root and intermediate, from its management API. */
export async function pebbleChain(): Promise<{ root: X509Certificate; intermediate: X509Certificate }> {
  const root = new X509Certificate(await pebbleRoot(env));
  const ca = readFileSync(env.pebble.tlsCa);
  const pem = await new Promise<string>((resolve, reject) => {
    https.get(`${env.pebble.management}/intermediates/0`, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  return { root, intermediate: new X509Certificate(pem) };
}

/** GET over verified HTTPS through Traefik's websecure host port, trusting only `ca`. */
export function getVerified(host: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: env.traefik.websecure, servername: host, headers: { host }, path: '/', ca, timeout: 10_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

export interface CertificateView {
  metadata: { name: string; namespace: string; uid: string };
  status?: { conditions?: { type: string; status: string }[]; revision?: number };
}

export async function waitForCertificateReady(namespace: string, name: string, timeoutMs = 180_000): Promise<CertificateView> {
  return waitFor(`Certificate ${namespace}/${name} Ready`, async () => {
    const cert = await kjson<CertificateView>(['-n', namespace, 'get', 'certificate', name]).catch(() => undefined);
    return cert?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? cert : undefined;
  }, timeoutMs, 500);
}
