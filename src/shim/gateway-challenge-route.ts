/**
 * Gateway wiring, the Gateway API twin of route mode: one controller-owned HTTPRoute sends
 * `/.well-known/acme-challenge/` to the responder Service. Its parents are the HTTP listeners of
 * the annotated Gateways Traefik serves, so Traefik sees one object for all challenges, ever,
 * and no HTTPRoute per challenge. It is created at start-up and put back within 30 s when someone
 * edits or deletes it; a Gateway change re-draws its parents at once.
 *
 * The route lives in certroute's namespace. A listener admits it only when its
 * `allowedRoutes.namespaces` lets that namespace in; one that admits routes from its own
 * namespace only (`from: Same`, the default) gets a Warning on its Gateway that names the fix.
 */
import type { Gateway, GatewayListener, HTTPRoute, HTTPRouteParentRef, KubeObject } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { objectKey, sameContent } from '../base/objects.ts';
import type { ControllerDeps, ControllerRegistration } from '../kube/controller.ts';
import type { Informer } from '../kube/informer.ts';
import { done, requeueAfter, type Outcome } from '../kube/queue.ts';
import { desiredCertificates, type RouteKind } from './route-kind.ts';

export const CHALLENGE_HTTPROUTE_NAME = 'certroute-acme-challenge';
/** The most parents one HTTPRoute may have (the Gateway API CRD's limit). */
export const MAX_PARENT_REFS = 32;
/** Path prefixes match whole path elements in the Gateway API, so no trailing slash is needed. */
export const CHALLENGE_PATH_PREFIX = '/.well-known/acme-challenge';
const REPAIR_INTERVAL_MS = 30_000;
const LABELS = { 'app.kubernetes.io/managed-by': 'certroute', 'app.kubernetes.io/name': 'certroute' };

/** A listener of the annotated Gateway that does not admit the challenge route. */
export const ChallengeRouteNotAdmitted = 'ChallengeRouteNotAdmitted';
/** More HTTP listeners than one HTTPRoute can name. */
export const TooManyChallengeParents = 'TooManyChallengeParents';

export interface GatewayChallengeRouteOptions {
  namespace: string;
  serviceName: string;
  servicePort: number;
  /** Gateway wiring; off, a route left by an earlier run in that wiring is removed. */
  enabled: boolean;
}

export interface ChallengeParents {
  parentRefs: HTTPRouteParentRef[];
  /** Per Gateway, what keeps a listener of it from carrying challenges. */
  problems: Array<{ gateway: Gateway; reason: string; message: string }>;
}

/** Whether a listener lets a route from `namespace` attach (a selector is the user's to check). */
function admits(l: GatewayListener, gatewayNamespace: string, namespace: string): boolean {
  const from = l.allowedRoutes?.namespaces?.from ?? 'Same';
  return from !== 'Same' || gatewayNamespace === namespace;
}

/** The HTTP listeners of the Gateways the shim issues for, as parents of the challenge route. Pure. */
export function challengeParents(gateways: readonly Gateway[], kind: RouteKind<Gateway>, namespace: string): ChallengeParents {
  const parentRefs: HTTPRouteParentRef[] = [];
  const problems: ChallengeParents['problems'] = [];
  const sorted = [...gateways].sort((a, b) => objectKey(a).localeCompare(objectKey(b)));
  for (const gateway of sorted) {
    const result = desiredCertificates(kind, gateway);
    if (result.skip !== undefined) continue;
    const ns = gateway.metadata.namespace ?? '';
    for (const l of gateway.spec.listeners) {
      if (l.protocol !== 'HTTP') continue;
      if (!admits(l, ns, namespace)) {
        problems.push({ gateway, reason: ChallengeRouteNotAdmitted, message: `listener ${JSON.stringify(l.name)} admits routes from its own namespace only, so certroute's challenge HTTPRoute ${namespace}/${CHALLENGE_HTTPROUTE_NAME} cannot attach and HTTP-01 challenges for this Gateway's hosts fail; set spec.listeners[].allowedRoutes.namespaces.from: All, or Selector with a selector that matches namespace ${namespace}` });
        continue;
      }
      if (parentRefs.length === MAX_PARENT_REFS) {
        problems.push({ gateway, reason: TooManyChallengeParents, message: `listener ${JSON.stringify(l.name)} is past the ${MAX_PARENT_REFS} parents one HTTPRoute can have, so certroute's challenge HTTPRoute does not attach to it; serve HTTP-01 for these hosts through route mode's IngressRoute, or use DNS-01` });
        continue;
      }
      parentRefs.push({ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: ns, name: gateway.metadata.name, sectionName: l.name });
    }
  }
  return { parentRefs, problems };
}

export function desiredChallengeHTTPRoute(o: GatewayChallengeRouteOptions, parentRefs: HTTPRouteParentRef[]): HTTPRoute {
  return {
    apiVersion: `${Resources.httproutes.group}/${Resources.httproutes.version}`,
    kind: 'HTTPRoute',
    metadata: { name: CHALLENGE_HTTPROUTE_NAME, namespace: o.namespace, labels: { ...LABELS } },
    spec: {
      parentRefs,
      rules: [{
        matches: [{ path: { type: 'PathPrefix', value: CHALLENGE_PATH_PREFIX } }],
        backendRefs: [{ group: '', kind: 'Service', name: o.serviceName, port: o.servicePort, weight: 1 }],
      }],
    },
  };
}

/** One key, the route's: re-drawn on every Gateway change, and checked every 30 s. */
export function gatewayChallengeRouteController(opts: GatewayChallengeRouteOptions, kind: RouteKind<Gateway>): ControllerRegistration {
  return {
    name: 'gateway-challenge-route',
    workers: 1,
    register(deps, { informers, queue }) {
      const key = `${opts.namespace}/${CHALLENGE_HTTPROUTE_NAME}`;
      const gateways = informers.for<Gateway>(kind.resource);
      gateways.on(() => queue.add(key));
      return { reconcile: () => reconcile(deps, opts, kind, gateways), resync: () => [key] };
    },
  };
}

async function reconcile(deps: ControllerDeps, opts: GatewayChallengeRouteOptions, kind: RouteKind<Gateway>, gateways: Informer<Gateway>): Promise<Outcome> {
  const { client, logger, events } = deps;
  const key = `${opts.namespace}/${CHALLENGE_HTTPROUTE_NAME}`;
  const have = await client.find<HTTPRoute>(Resources.httproutes, opts.namespace, CHALLENGE_HTTPROUTE_NAME);
  if (!opts.enabled) {
    // Another wiring: a route left by a gateway-wiring run would keep answering, so the one certroute made goes.
    if (have?.metadata.labels?.['app.kubernetes.io/managed-by'] === 'certroute') {
      await client.delete(Resources.httproutes, opts.namespace, CHALLENGE_HTTPROUTE_NAME, have.metadata.uid);
      logger.info({ key }, 'deleted the challenge HTTPRoute: not in gateway wiring');
    }
    return done;
  }
  const { parentRefs, problems } = challengeParents(gateways.list(), kind, opts.namespace);
  for (const p of problems) events.event(p.gateway, kind.resource, 'Warning', p.reason, p.message);
  const want = desiredChallengeHTTPRoute(opts, parentRefs);
  if (!have) {
    await client.create<KubeObject>(Resources.httproutes, want);
    logger.info({ key, parents: parentRefs.length }, 'created the challenge HTTPRoute');
    return requeueAfter(REPAIR_INTERVAL_MS);
  }
  const labelsOk = Object.entries(LABELS).every(([k, v]) => have.metadata.labels?.[k] === v);
  if (!sameContent(have.spec, want.spec) || !labelsOk) {
    await client.replace<KubeObject>(Resources.httproutes, {
      ...have,
      metadata: { ...have.metadata, labels: { ...have.metadata.labels, ...LABELS } },
      spec: want.spec,
    } as HTTPRoute);
    logger.info({ key, parents: parentRefs.length }, 'updated the challenge HTTPRoute');
  }
  return requeueAfter(REPAIR_INTERVAL_MS);
}
