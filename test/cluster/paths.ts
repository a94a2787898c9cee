/**
 * Where the single-node cluster keeps its state: everything under `.cluster/` at the repo root
 * (`CERTROUTE_CLUSTER_DIR` moves it), so that `npm run cluster -- down` knows every file, mount
 * and process it has to remove. Tests find the cluster through `.cluster/env.json`.
 */
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../env/paths.ts';

export const clusterDir = process.env.CERTROUTE_CLUSTER_DIR ? resolve(process.env.CERTROUTE_CLUSTER_DIR) : join(repoRoot, '.cluster');
export const clusterEnvFile = join(clusterDir, 'env.json');
export const clusterStateFile = join(clusterDir, 'state.json');
/** The host as it was before the first `up`: kept until `down` has put it back. */
export const hostBeforeFile = join(clusterDir, 'host-before.json');
export const clusterLogsDir = join(clusterDir, 'logs');
export const clusterPkiDir = join(clusterDir, 'pki');
export const clusterKubeconfig = join(clusterDir, 'kubeconfig');
export const containerdDir = join(clusterDir, 'containerd');
export const containerdSocket = join(containerdDir, 'containerd.sock');
export const kubeletDir = join(clusterDir, 'kubelet');
export const cniDir = join(clusterDir, 'cni');
/** Built images, as OCI archives keyed by a hash of their inputs, survive `down`. */
export const imageCacheDir = join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache'), 'certroute', 'images');

export function clusterLog(component: string): string {
  return join(clusterLogsDir, `${component}.log`);
}

/** Addresses: RFC 2544's benchmarking range, never a private range a real network may use. */
export const network = {
  bridge: 'certroute0',
  podCidr: '198.18.0.0/24',
  /** The bridge's address: the node's IP, where the control plane and Pebble listen for pods. */
  nodeIp: '198.18.0.1',
  serviceCidr: '198.19.0.0/24',
  /** The `kubernetes` Service's ClusterIP: the first address of the Service range. */
  apiserverServiceIp: '198.19.0.1',
  dnsServiceIp: '198.19.0.10',
} as const;

export const nodeName = 'certroute-node';

/**
 * Machine-wide, as the bridge and its addresses are: a test run holds it from the cluster's `up`
 * to its `down`, so that a second checkout's `npm test` waits its turn instead of failing on a
 * bridge that is already there.
 */
export const clusterLockFile = join(tmpdir(), 'certroute-cluster.lock');
