/**
 * Talking to the stack's kube-apiserver: the kubeconfig it writes, a runner for the real kubectl,
 * and `exposeLocalPort`, which makes a process on 127.0.0.1 reachable as a Service through
 * Traefik although a bare kube-apiserver has no kubelet, no kube-proxy and no endpoint controller.
 * See WIRING.md for why it builds the Service the way it does.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { kubectlPath } from './binaries.ts';
import { kubeconfigFile } from './paths.ts';
import type { StackPki } from './pki.ts';

const fieldManager = 'certroute-test-stack';

export function writeKubeconfig(server: string, pki: StackPki, file = kubeconfigFile): void {
  const b64 = (path: string) => readFileSync(path).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'certroute-stack', cluster: { server, 'certificate-authority-data': b64(pki.caCert) } }],
    users: [{ name: 'admin', user: { 'client-certificate-data': b64(pki.adminCert), 'client-key-data': b64(pki.adminKey) } }],
    contexts: [{ name: 'certroute-stack', context: { cluster: 'certroute-stack', user: 'admin' } }],
    'current-context': 'certroute-stack',
  };
  writeFileSync(file, stringify(config), { mode: 0o600 });
}

/** A client-node KubeConfig for the stack's admin user. */
export function loadKubeConfig(file = kubeconfigFile): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
}

/** Runs the real kubectl against the stack. Rejects with kubectl's stderr in the message. */
export async function kubectl(args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<KubectlResult> {
  const bin = await kubectlPath();
  const fullArgs = ['--kubeconfig', opts.kubeconfig ?? kubeconfigFile, ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(bin, fullArgs, { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`kubectl ${args.join(' ')} failed: ${stderr.trim() || error.message}`, { cause: error }));
      } else {
        resolve({ stdout, stderr });
      }
    });
    // A command that reads no input may exit before its stdin is written: its exit status and
    // stderr say how it went, so the EPIPE that follows is not an error of its own.
    child.stdin?.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') reject(error);
    });
    child.stdin?.end(opts.input ?? '');
  });
}

/** Creates or updates objects with server-side apply, so calling twice is harmless. */
export async function apply(kc: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const object of objects) {
    await client.patch(object, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply);
  }
}

export interface LocalPort {
  namespace: string;
  /** Service name. */
  name: string;
  /** Port on 127.0.0.1 that the local process listens on; the Service exposes the same number. */
  port: number;
}

/**
 * The Service that makes 127.0.0.1:port reachable through Traefik. The API server rejects
 * loopback addresses in EndpointSlices and Endpoints, so it is an ExternalName Service to
 * `localhost`, which Traefik (allowExternalNameServices) dials as `localhost:<port>`.
 */
export function localPortService({ namespace, name, port }: LocalPort): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace, name, labels: { 'app.kubernetes.io/managed-by': fieldManager } },
    spec: { type: 'ExternalName', externalName: 'localhost', ports: [{ name: 'http', port, protocol: 'TCP' }] },
  } as KubernetesObject;
}

/**
 * Makes a process listening on 127.0.0.1:`port` reachable as Service `namespace/name`, port
 * `port`, so an IngressRoute can route to it. Idempotent. See WIRING.md.
 */
export async function exposeLocalPort(kc: KubeConfig, target: LocalPort): Promise<void> {
  try {
    await apply(kc, [localPortService(target)]);
  } catch (error) {
    throw new Error(`exposing 127.0.0.1:${target.port} as Service ${target.namespace}/${target.name} failed`, { cause: error });
  }
}

/**
 * A name for 127.0.0.1 that an FQDN EndpointSlice accepts (`localhost` alone is refused: it wants
 * two labels). The stack's set-up maps it in /etc/hosts, as RFC 6761 says `.localhost` names are
 * loopback, because Traefik's resolver does not know that by itself.
 */
export const LOOPBACK_NAME = 'certroute-stack.localhost';

/**
 * The same for a Gateway's HTTPRoute: Traefik's kubernetesGateway provider refuses ExternalName
 * Services and reads the EndpointSlices of a Service instead. The API server refuses loopback
 * addresses there too, but takes an FQDN EndpointSlice naming LOOPBACK_NAME, which Traefik dials
 * as `certroute-stack.localhost:<port>`. So: a Service without a selector, and that
 * EndpointSlice. Idempotent.
 */
export async function exposeLocalPortToGateways(kc: KubeConfig, { namespace, name, port }: LocalPort): Promise<void> {
  const labels = { 'app.kubernetes.io/managed-by': fieldManager };
  try {
    await apply(kc, [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { namespace, name, labels },
        spec: { ports: [{ name: 'http', port, protocol: 'TCP' }] },
      } as KubernetesObject,
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { namespace, name: `${name}-localhost`, labels: { ...labels, 'kubernetes.io/service-name': name } },
        addressType: 'FQDN',
        endpoints: [{ addresses: [LOOPBACK_NAME], conditions: { ready: true } }],
        ports: [{ name: 'http', port, protocol: 'TCP' }],
      } as KubernetesObject,
    ]);
  } catch (error) {
    throw new Error(`exposing 127.0.0.1:${port} to Gateways as Service ${namespace}/${name} failed`, { cause: error });
  }
}
