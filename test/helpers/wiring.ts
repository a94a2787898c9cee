/**
 * What the Traefik e2e tests and the latency benchmark share: Traefik set up for middleware mode
 * (the plugin loaded, attached to `web`, with its fallback router) and back to the stack's
 * defaults, which controller holds the Lease, what Traefik shows in its API, and an annotated
 * IngressRoute whose served certificate a user would check.
 */
import http from 'node:http';
import https from 'node:https';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { repoRoot, traefikDir } from '../env/paths.ts';
import { exposeLocalPort, kubectl, loadKubeConfig, readEnv, restart, type StackEnv } from '../env/stack.ts';
import { annotatedIngressRoute, applyYaml, CHALLENGE_ROUTE_NAME, type AnnotatedRoute, CONTROLLER_NAMESPACE, own, readLog, waitFor, type ControllerProcess } from './controller.ts';
import { servedCertificate, type Served } from './tls.ts';

export const CHALLENGE_ROUTE = { namespace: CONTROLLER_NAMESPACE, name: CHALLENGE_ROUTE_NAME } as const;
export const CHALLENGE_PATH = '/.well-known/acme-challenge/';

export const challengePlugin = {
  alias: 'certroute-challenge',
  moduleName: 'github.com/certroute/certroute-challenge',
  dir: join(repoRoot, 'plugins', 'certroute-challenge'),
} as const;

/** The file-provider middleware Traefik attaches to `web` in middleware mode. */
export const CHALLENGE_MIDDLEWARE = 'certroute-challenge@file';
const FALLBACK_ROUTER = 'acme-challenge-fallback@file';
const dynamicFile = (): string => join(traefikDir, 'dynamic', 'certroute-challenge.yml');

/**
 * Restarts Traefik in middleware mode as plugins/certroute-challenge/README.md says: the local
 * plugin, its middleware (pointing at this file's responder port) on the `web` entrypoint, and
 * the priority-1 fallback router that lets the middleware see challenges for hosts with no
 * router on `web`. Resolves once Traefik's API shows both enabled.
 */
export async function traefikMiddlewareMode(opts: { redirectWebToWebsecure?: boolean } = {}): Promise<void> {
  writeFileSync(dynamicFile(), stringify({
    http: {
      middlewares: {
        'certroute-challenge': { plugin: { [challengePlugin.alias]: { responder: `http://localhost:${own.responderPort}` } } },
      },
      routers: {
        'acme-challenge-fallback': { rule: `PathPrefix(\`${CHALLENGE_PATH}\`)`, priority: 1, entryPoints: ['web'], service: 'noop@internal' },
      },
    },
  }));
  await restart('traefik', {
    redirectWebToWebsecure: opts.redirectWebToWebsecure ?? false,
    localPlugins: { [challengePlugin.alias]: { moduleName: challengePlugin.moduleName, dir: challengePlugin.dir } },
    entryPointMiddlewares: { web: [CHALLENGE_MIDDLEWARE] },
  });
  await waitFor('Traefik to enable the challenge middleware and its fallback router', async () => {
    const middlewares = await traefikApi<ApiObject[]>('/api/http/middlewares');
    const routers = await traefikApi<ApiObject[]>('/api/http/routers');
    return middlewares.some((m) => m.name === CHALLENGE_MIDDLEWARE && m.status === 'enabled')
      && routers.some((r) => r.name === FALLBACK_ROUTER && r.status === 'enabled');
  }, 30_000);
}

/** Traefik as `up` starts it: no plugin, no redirect, no middleware-mode file. */
export async function traefikDefaults(): Promise<void> {
  rmSync(dynamicFile(), { force: true });
  await restart('traefik');
}

export interface ApiObject {
  name: string;
  status?: string;
  rule?: string;
  priority?: number;
  entryPoints?: string[];
  provider?: string;
  using?: string[];
}

export async function traefikApi<T>(path: string, env: StackEnv = readEnv()): Promise<T> {
  const res = await fetch(`${env.traefik.api}${path}`);
  if (!res.ok) throw new Error(`Traefik API ${path} answered ${res.status}`);
  return (await res.json()) as T;
}

/** Traefik's routers built from certroute's challenge IngressRoute (one per entrypoint). */
export async function challengeRouters(): Promise<ApiObject[]> {
  const routers = await traefikApi<ApiObject[]>('/api/http/routers');
  return routers.filter((r) => r.provider === 'kubernetescrd' && r.name.includes(`${CHALLENGE_ROUTE.namespace}-${CHALLENGE_ROUTE.name}-`));
}

/** Removes the challenge route a route-mode controller left behind, as an operator switching modes would. */
export async function deleteChallengeRoute(): Promise<void> {
  await kubectl(['-n', CHALLENGE_ROUTE.namespace, 'delete', 'ingressroute', CHALLENGE_ROUTE.name, '--ignore-not-found', '--wait=false']);
  await waitFor('Traefik to drop the challenge routers', async () => (await challengeRouters()).length === 0, 30_000);
}

let nudges = 0;

/**
 * Positive evidence that `controller`'s IngressRoute shim has finished every pass over one route
 * that began before now: it nudges the route (an annotation the shim ignores; annotations bump no
 * generation) and waits for the log to show a pass over the route that ended after the nudge. The
 * shim works on one route one pass at a time, in order, so every earlier pass has ended too.
 */
export async function shimCaughtUp(controller: ControllerProcess, namespace: string, route: string): Promise<void> {
  await caughtUp(controller, { resource: 'ingressroute.traefik.io', shim: 'ingressroute-shim' }, namespace, route);
}

/** `shimCaughtUp` for any shim's kind: `resource` as kubectl names it, `shim` the controller's name in the log. */
export async function caughtUp(controller: ControllerProcess, kind: { resource: string; shim: string }, namespace: string, name: string): Promise<void> {
  const from = readLog(controller).length;
  const key = `example.com/nudge-${process.pid}-${++nudges}`;
  await kubectl(['-n', namespace, 'annotate', kind.resource, name, `${key}=1`]);
  await waitFor(`the ${kind.shim} to finish a pass over ${namespace}/${name}`, async () =>
    readLog(controller).slice(from).split('\n').some((l) => l.includes(`"controller":"${kind.shim}"`) && l.includes(`"key":"${namespace}/${name}"`)), 30_000, 100);
  await kubectl(['-n', namespace, 'annotate', kind.resource, name, `${key}-`]);
}

/** A host name no earlier run on the same stack used, so Traefik cannot serve an old certificate for it. */
export function uniqueHost(label: string): string {
  return `${label}.${process.pid.toString(36)}${Date.now().toString(36)}.test`;
}

/**
 * A user's IngressRoute that outranks certroute's challenge route (priority 2^30) for one host's
 * challenge path and sends it to a backend: the self-check fails, and the host's challenge stays
 * pending until the route goes.
 */
export function routeTakingChallenges(namespace: string, host: string, backendPort: number, name = 'takes-challenges'): string {
  return `apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  entryPoints: [web]
  routes:
    - match: Host(\`${host}\`) && PathPrefix(\`${CHALLENGE_PATH}\`)
      kind: Rule
      priority: ${2 ** 30 + 1}
      services: [{ name: backend, port: ${backendPort} }]
`;
}

export async function applyAnnotatedRoute(r: AnnotatedRoute): Promise<void> {
  await exposeLocalPort(loadKubeConfig(readEnv().kubeconfig), { namespace: r.namespace, name: 'backend', port: r.backendPort });
  await applyYaml(annotatedIngressRoute(r));
}

/** The certificate Traefik's websecure entrypoint serves for `host`, once it is one issued for it. */
export async function waitForServed(host: string, timeoutMs = 60_000, intervalMs = 100): Promise<Served> {
  const env = readEnv();
  return waitFor(`Traefik to serve an issued certificate for ${host}`, async () => {
    const served = await servedCertificate(env.traefik.websecure, host);
    return served.subjectAltName.split(', ').includes(`DNS:${host}`) ? served : undefined;
  }, timeoutMs, intervalMs);
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to Traefik's web entrypoint as a client that resolved `host` sends it; redirects are not followed. */
export function viaWeb(host: string, path: string, env: StackEnv = readEnv()): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: env.traefik.web, path, headers: { host }, timeout: 3_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} (Host: ${host}) timed out`)));
    req.on('error', reject);
  });
}

/** A request to Traefik's websecure entrypoint with SNI and Host `host`; the certificate is not verified. */
export function viaWebsecure(host: string, path: string, env: StackEnv = readEnv()): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: env.traefik.websecure, servername: host, path, headers: { host }, rejectUnauthorized: false, timeout: 3_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET https ${path} (Host: ${host}) timed out`)));
    req.on('error', reject);
  });
}

/**
 * The responder's own 404 carries no-store caching headers; Traefik's has none. So a 404 with
 * them shows that the request reached certroute's responder.
 */
export function answeredByResponder(reply: Reply): boolean {
  return String(reply.headers['cache-control'] ?? '').includes('no-store');
}
