/**
 * The IngressRoute shim: an annotated IngressRoute gets a Certificate named
 * after its Secret, owned by the route. The decision is the pure
 * `desiredCertificate`; this file only applies it.
 *
 * Removing the annotation (or setting certroute.io/ignore) deletes the
 * Certificate the shim created, never the Secret: Traefik may still serve it.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Certificate, IngressRoute } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { isOwnedBy, objectKey, splitKey } from '../base/objects.ts';
import { keysOf, type ControllerDeps, type ControllerRegistration } from '../kube/controller.ts';
import type { Informer } from '../kube/informer.ts';
import { done, type Outcome } from '../kube/queue.ts';
import { desiredCertificate, type ShimWarning } from './shim-policy.ts';

/** Marks Certificates the shim owns, so it only ever deletes its own. */
export const SHIM_LABEL = 'certroute.io/ingressroute';

export interface ShimOptions {
  /**
   * Write `<name>-tls` into an empty `spec.tls.secretName`. This is the only write to
   * IngressRoutes and needs `patch` on them in every namespace; off, the route is told to set it.
   */
  defaultSecretName: boolean;
}

/** The route's spec.tls.secretName is empty and certroute may not write it. */
export const SecretNameNotSet = 'SecretNameNotSet';

/** Watches IngressRoutes, and the Certificates it made: one changed or vanished, so its route is looked at again. */
export function ingressRouteShim(opts: ShimOptions): ControllerRegistration {
  return {
    name: 'ingressroute-shim',
    workers: 4,
    register(deps, { informers, queue }) {
      const routes = informers.for<IngressRoute>(Resources.ingressroutes);
      const certificates = informers.for<Certificate>(Resources.certificates);
      routes.on((r) => queue.add(objectKey(r)));
      certificates.on((c) => {
        const route = c.metadata.labels?.[SHIM_LABEL];
        if (route) queue.add(`${c.metadata.namespace}/${route}`);
      });
      return { reconcile: shimReconciler(deps, routes, certificates, opts), resync: () => keysOf(routes) };
    },
  };
}

function shimReconciler(deps: ControllerDeps, routes: Informer<IngressRoute>, certificates: Informer<Certificate>, opts: ShimOptions): (key: string) => Promise<Outcome> {
  const { client, events } = deps;
  return async (key) => {
    const { namespace, name } = splitKey(key);
    const route = routes.get(namespace, name);
    if (!route) return done;
    const result = desiredCertificate(route);
    for (const [reason, message] of foldWarnings(result.warnings)) events.event(route, Resources.ingressroutes, 'Warning', reason, message);
    const owned = certificates.list(namespace).filter((c) => isOwnedBy(c, route) && c.metadata.labels?.[SHIM_LABEL] === name);
    if (result.skip) {
      for (const c of owned) {
        await client.delete(Resources.certificates, namespace, c.metadata.name, c.metadata.uid);
        events.event(route, Resources.ingressroutes, 'Normal', 'DeletedCertificate', `No longer managed (${result.skip}); deleted Certificate ${c.metadata.name} and kept Secret ${c.spec.secretName}`);
      }
      return done;
    }
    if (result.secretNameToWrite && !route.spec.tls?.secretName && !opts.defaultSecretName) {
      events.event(route, Resources.ingressroutes, 'Warning', SecretNameNotSet, `spec.tls.secretName is empty, so Traefik will not serve the certificate certroute issues into Secret ${result.secretNameToWrite}; set spec.tls.secretName: ${result.secretNameToWrite}`);
    } else if (result.secretNameToWrite && !route.spec.tls?.secretName) {
      await client.mergePatch(Resources.ingressroutes, namespace, name, { metadata: { resourceVersion: route.metadata.resourceVersion }, spec: { tls: { secretName: result.secretNameToWrite } } });
      return done;
    }
    const want = result.certificate;
    if (!want) return done;
    const existing = certificates.get(want.namespace, want.name);
    if (!existing) {
      await client.create<Certificate>(Resources.certificates, {
        metadata: { name: want.name, namespace: want.namespace, labels: { [SHIM_LABEL]: name }, ownerReferences: [want.ownerReference] },
        spec: want.spec,
      });
      events.event(route, Resources.ingressroutes, 'Normal', 'CreateCertificate', `Successfully created Certificate "${want.name}"`);
      return done;
    }
    if (!isOwnedBy(existing, route)) {
      events.event(route, Resources.ingressroutes, 'Warning', 'CertificateNotOwned', `Certificate ${want.namespace}/${want.name} already exists and is not owned by this IngressRoute; rename spec.tls.secretName or delete that Certificate`);
      return done;
    }
    // Stale entries are dropped (cleaned-up annotations must not linger).
    for (const c of owned) {
      if (c.metadata.name !== want.name) await client.delete(Resources.certificates, namespace, c.metadata.name, c.metadata.uid);
    }
    if (!isDeepStrictEqual(stripUndefined(existing.spec), stripUndefined(want.spec))) {
      await client.replace<Certificate>(Resources.certificates, { ...structuredClone(existing), spec: want.spec });
      events.event(route, Resources.ingressroutes, 'Normal', 'UpdateCertificate', `Successfully updated Certificate "${want.name}"`);
    }
    return done;
  };
}

/** How many findings of one reason an Event quotes before it only counts the rest. */
const QUOTED_PER_EVENT = 5;

/**
 * One Warning per reason, whatever the number of findings: a rule with thousands of bad hosts
 * must not write thousands of Events to etcd. Each message quotes the first few findings and
 * counts the rest.
 */
export function foldWarnings(warnings: readonly ShimWarning[]): Map<string, string> {
  const byReason = new Map<string, string[]>();
  for (const w of warnings) {
    const messages = byReason.get(w.reason) ?? [];
    messages.push(w.message);
    byReason.set(w.reason, messages);
  }
  const folded = new Map<string, string>();
  for (const [reason, messages] of byReason) {
    const quoted = messages.slice(0, QUOTED_PER_EVENT).join('; ');
    const rest = messages.length - QUOTED_PER_EVENT;
    folded.set(reason, rest > 0 ? `${quoted}; and ${rest} more like these` : quoted);
  }
  return folded;
}

function stripUndefined(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}
