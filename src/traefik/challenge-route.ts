/**
 * Route mode: one controller-owned IngressRoute sends
 * PathPrefix(`/.well-known/acme-challenge/`) on the web and websecure
 * entrypoints to the responder Service. It is created at start-up and put
 * back whenever someone edits or deletes it, so Traefik sees exactly one
 * object for all challenges, ever.
 */
import type { IngressRoute, KubeObject } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { sameContent } from '../base/objects.ts';
import type { KubeClient } from '../kube/client.ts';
import type { ControllerRegistration } from '../kube/controller.ts';
import { done, requeueAfter, type Outcome } from '../kube/queue.ts';
import type { Logger } from '../log.ts';

export const CHALLENGE_ROUTE_NAME = 'certroute-acme-challenge';
/** High enough to beat user routes, below Traefik's maximum and 2^53. */
export const DEFAULT_PRIORITY = 2 ** 30;
const REPAIR_INTERVAL_MS = 30_000;

export interface ChallengeRouteOptions {
  namespace: string;
  serviceName: string;
  servicePort: number;
  entryPoints: string[];
  priority?: number;
  enabled: boolean;
}

export function desiredChallengeRoute(o: ChallengeRouteOptions): IngressRoute {
  return {
    metadata: {
      name: CHALLENGE_ROUTE_NAME,
      namespace: o.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'certroute', 'app.kubernetes.io/name': 'certroute' },
    },
    spec: {
      entryPoints: [...o.entryPoints],
      routes: [
        {
          kind: 'Rule',
          match: 'PathPrefix(`/.well-known/acme-challenge/`)',
          priority: o.priority ?? DEFAULT_PRIORITY,
          services: [{ name: o.serviceName, namespace: o.namespace, port: o.servicePort }],
        },
      ],
    },
  };
}

/** One key, its route's: put back whenever someone edits or deletes it, and checked every 30 s. */
export function challengeRouteController(opts: ChallengeRouteOptions): ControllerRegistration {
  return {
    name: 'challenge-route',
    workers: 1,
    register(deps, { informers, queue }) {
      const key = `${opts.namespace}/${CHALLENGE_ROUTE_NAME}`;
      informers.for<IngressRoute>(Resources.ingressroutes).on((r) => {
        if (r.metadata.name === CHALLENGE_ROUTE_NAME && r.metadata.namespace === opts.namespace) queue.add(key);
      });
      const route = new ChallengeRoute(deps.client, deps.logger, opts);
      return { reconcile: () => route.reconcile(), resync: () => [key] };
    },
  };
}

export class ChallengeRoute {
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly opts: ChallengeRouteOptions;

  constructor(client: KubeClient, logger: Logger, opts: ChallengeRouteOptions) {
    this.client = client;
    this.logger = logger;
    this.opts = opts;
  }

  async reconcile(): Promise<Outcome> {
    const want = desiredChallengeRoute(this.opts);
    const have = await this.client.find<IngressRoute>(Resources.ingressroutes, this.opts.namespace, CHALLENGE_ROUTE_NAME);
    if (!this.opts.enabled) {
      // Middleware or shim-only mode: a route left by an earlier route-mode run would
      // shadow the plugin (or cert-manager's solver), so the one certroute made goes.
      if (have?.metadata.labels?.['app.kubernetes.io/managed-by'] === 'certroute') {
        await this.client.delete(Resources.ingressroutes, this.opts.namespace, CHALLENGE_ROUTE_NAME, have.metadata.uid);
        this.logger.info({ key: `${this.opts.namespace}/${CHALLENGE_ROUTE_NAME}` }, 'deleted the challenge route: not in route mode');
      }
      return done;
    }
    if (!have) {
      await this.client.create<KubeObject>(Resources.ingressroutes, want);
      this.logger.info({ key: `${this.opts.namespace}/${CHALLENGE_ROUTE_NAME}` }, 'created challenge route');
      return requeueAfter(REPAIR_INTERVAL_MS);
    }
    const labelsOk = Object.entries(want.metadata.labels ?? {}).every(([k, v]) => have.metadata.labels?.[k] === v);
    if (!sameContent(have.spec, want.spec) || !labelsOk) {
      await this.client.replace<KubeObject>(Resources.ingressroutes, {
        ...have,
        metadata: { ...have.metadata, labels: { ...have.metadata.labels, ...want.metadata.labels } },
        spec: want.spec,
      } as IngressRoute);
      this.logger.warn({ key: `${this.opts.namespace}/${CHALLENGE_ROUTE_NAME}` }, 'challenge route was edited; restored it');
    }
    return requeueAfter(REPAIR_INTERVAL_MS);
  }
}

interface ServiceObject extends KubeObject {
  spec: { type?: string; externalName?: string; clusterIP?: string; ports?: Array<{ name?: string; port: number }> };
}

/**
 * Where the self-check reaches Traefik: its Service in its namespace. An
 * ExternalName Service (the local stack's) resolves to its target; any other
 * to the cluster DNS name. The `web`/`websecure` ports are picked by name,
 * else 80/443.
 */
export async function resolveTraefikWeb(client: KubeClient, namespace: string, name: string): Promise<{ web: string; websecure?: string }> {
  const def = { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true };
  const svc = await client.find<ServiceObject>(def, namespace, name);
  if (!svc) return { web: `http://${name}.${namespace}.svc`, websecure: `https://${name}.${namespace}.svc` };
  const port = (n: string, fallback: number): number => svc.spec.ports?.find((p) => p.name === n)?.port ?? fallback;
  const host = svc.spec.type === 'ExternalName' && svc.spec.externalName ? svc.spec.externalName : `${name}.${namespace}.svc`;
  return { web: `http://${host}:${port('web', 80)}`, websecure: `https://${host}:${port('websecure', 443)}` };
}
