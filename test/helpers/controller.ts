/**
 * Runs the real `certroute controller` process against the local stack, the
 * same command the container runs, and gives tests what they need around
 * it: a Pebble ClusterIssuer, a namespace per test, polling for what a user
 * would see.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { logsDir } from '../env/paths.ts';
import { kubectl, readEnv, responderPort, type StackEnv } from '../env/stack.ts';

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

/**
 * Controllers still running when this test process exits. A worker that dies
 * on an uncaught exception skips `after.always`; without this its controller
 * would outlive it and keep the stack's responder port for every later test.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function startController(extraArgs: string[] = [], opts: { name?: string; env?: Record<string, string> } = {}): ControllerProcess {
  const env = readEnv();
  const name = opts.name ?? `controller-${process.pid}-${++counter}`;
  const logFile = join(logsDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [join(root, 'bin/certroute.js'), 'controller', `--responder-port=${responderPort}`, '--metrics-port=0', '--health-port=0', ...extraArgs], {
    cwd: root,
    env: { ...process.env, KUBECONFIG: env.kubeconfig, LOG_LEVEL: 'debug', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  running.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running.delete(child);
    resolve(code);
  }));
  return {
    child,
    logFile,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
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
export async function freshNamespace(prefix: string): Promise<string> {
  const ns = `${prefix}-${process.pid % 10000}-${++nsCounter}`.slice(0, 63);
  await kubectl(['create', 'namespace', ns]);
  return ns;
}

/** A ClusterIssuer for the stack's Pebble, written as a user would. */
export function pebbleClusterIssuer(name: string, env: StackEnv = readEnv(), extra = ''): string {
  const ca = readFileSync(env.pebble.tlsCa).toString('base64');
  return `apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: ${name}
spec:
  acme:
    server: ${env.pebble.directory}
    email: ops@example.com
    caBundle: ${ca}
    privateKeySecretRef:
      name: ${name}-account
    solvers:
      - http01:
          ingress:
            ingressClassName: traefik${extra}
`;
}

export interface CertificateView {
  metadata: { name: string; namespace: string; generation: number; uid: string };
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

/** An IngressRoute on websecure for one host, annotated for a ClusterIssuer, with `tls: {}`. */
export function annotatedIngressRoute(o: { namespace: string; name: string; host: string; issuer: string; backendPort: number }): string {
  return `apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: ${o.name}
  namespace: ${o.namespace}
  annotations:
    cert-manager.io/cluster-issuer: ${o.issuer}
spec:
  entryPoints: [websecure]
  routes:
    - match: Host(\`${o.host}\`)
      kind: Rule
      services: [{ name: backend, port: ${o.backendPort} }]
  tls: {}
`;
}
