/**
 * Where the local stack keeps its state. Everything lives under `.stack/` at the repo root so
 * that `rm -rf .stack` is always a full reset, and so that test processes started by ava find
 * the stack that `test/run.ts` brought up without being told.
 */
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
/**
 * `CERTROUTE_STACK_DIR` lets two stacks run side by side on one machine
 * (say, a developer's and a clean-clone CI rehearsal); each is then wholly
 * separate, down to its own responder port (a free one, unless
 * `CERTROUTE_STACK_RESPONDER_PORT` pins it).
 */
export const stackDir = process.env.CERTROUTE_STACK_DIR ? resolve(process.env.CERTROUTE_STACK_DIR) : join(repoRoot, '.stack');
export const logsDir = join(stackDir, 'logs');
/** The kube-apiserver's audit log (JSON lines): every write to certroute's kinds, Leases, Secrets and Events. */
export const auditLogFile = join(logsDir, 'audit.log');
export const pkiDir = join(stackDir, 'pki');
export const envFile = join(stackDir, 'env.json');
export const pidsFile = join(stackDir, 'pids.json');
export const stateFile = join(stackDir, 'state.json');
export const kubeconfigFile = join(stackDir, 'kubeconfig');
export const traefikDir = join(stackDir, 'traefik');
export const buildScript = join(repoRoot, 'tools', 'build.sh');

export function logFile(component: string): string {
  return join(logsDir, `${component}.log`);
}
/** certroute's own CRDs: the single source the chart and the stack share. */
export const certrouteCrdDir = join(repoRoot, 'crds');
/** The requester-identity MutatingAdmissionPolicy, which the chart renders where the API server serves it. */
export const requesterIdentityPolicy = join(repoRoot, 'charts', 'certroute', 'files', 'requester-identity.yaml');
