/**
 * The shim controller, one per route kind: an annotated object gets one Certificate per Secret
 * it names, named after the Secret and owned by the object. The decision is the pure
 * `desiredCertificates`; this file only applies it, the same way for every kind.
 *
 * As cert-manager's certificate-shim does, a Certificate the object no longer names is deleted,
 * and one of that name that the object does not own is left alone (with a Warning here, so the
 * user learns why nothing happens). Removing the annotation (or setting certroute.io/ignore, or
 * moving the object to a class Traefik does not serve) deletes the Certificates the shim made,
 * never their Secrets: Traefik may still serve them.
 */
import type { Certificate, KubeObject } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { isOwnedBy, objectKey, splitKey } from '../base/objects.ts';
import { keysOf, type ControllerDeps, type ControllerRegistration } from '../kube/controller.ts';
import type { Informer } from '../kube/informer.ts';
import { done, type Outcome } from '../kube/queue.ts';
import { desiredCertificates, foldWarnings, specToWrite, type RouteKind } from './route-kind.ts';

export interface ShimOptions {
  /**
   * Write the default Secret name into an object that names none (IngressRoutes:
   * `<name>-tls` into `spec.tls.secretName`). This needs `patch` on the kind in every
   * namespace; off, the object is told to set it.
   */
  defaultSecretName: boolean;
}

/** The object names no Secret and certroute may not write the default one. */
export const SecretNameNotSet = 'SecretNameNotSet';
/** A Certificate of the Secret's name exists and this object does not own it. */
export const CertificateNotOwned = 'CertificateNotOwned';

/** Watches the kind's objects, and the Certificates made for them: one changed or vanished, so its object is looked at again. */
export function routeShim<T extends KubeObject>(kind: RouteKind<T>, opts: ShimOptions): ControllerRegistration {
  return {
    name: kind.name,
    workers: 4,
    register(deps, { informers, queue }) {
      const objects = informers.for<T>(kind.resource);
      const certificates = informers.for<Certificate>(Resources.certificates);
      objects.on((o) => queue.add(objectKey(o)));
      certificates.on((c) => {
        const owner = c.metadata.labels?.[kind.label];
        if (owner) queue.add(`${c.metadata.namespace}/${owner}`);
      });
      return { reconcile: shimReconciler(deps, kind, objects, certificates, opts), resync: () => keysOf(objects) };
    },
  };
}

function shimReconciler<T extends KubeObject>(deps: ControllerDeps, kind: RouteKind<T>, objects: Informer<T>, certificates: Informer<Certificate>, opts: ShimOptions): (key: string) => Promise<Outcome> {
  const { client, events } = deps;
  const def = kind.resource;
  return async (key) => {
    const { namespace, name } = splitKey(key);
    const obj = objects.get(namespace, name);
    if (!obj) return done;
    const result = desiredCertificates(kind, obj);
    for (const [reason, message] of foldWarnings(result.warnings)) events.event(obj, def, 'Warning', reason, message);
    // By the owner index: a namespace with thousands of Certificates is not scanned per route.
    const owned = certificates.ownedBy(obj).filter((c) => c.metadata.namespace === namespace && c.metadata.labels?.[kind.label] === name);
    if (result.skip) {
      for (const c of owned) {
        await client.delete(Resources.certificates, namespace, c.metadata.name, c.metadata.uid);
        events.event(obj, def, 'Normal', 'DeletedCertificate', `No longer managed (${result.skip}); deleted Certificate ${c.metadata.name} and kept Secret ${c.spec.secretName}`);
      }
      return done;
    }
    if (result.secretNameToWrite !== undefined) {
      if (opts.defaultSecretName && kind.writeSecretName) {
        // The write brings the object back through the informer, and that pass makes the Certificate.
        await kind.writeSecretName(client, obj, result.secretNameToWrite);
        return done;
      }
      events.event(obj, def, 'Warning', SecretNameNotSet, `spec.tls.secretName is empty, so Traefik will not serve the certificate certroute issues into Secret ${result.secretNameToWrite}; set spec.tls.secretName: ${result.secretNameToWrite}`);
    }
    if (result.blocked) return done;
    // cert-manager's rule: a Certificate the object owns but no longer names goes (its Secret stays).
    const named = new Set(kind.secretNames(obj));
    for (const c of owned) {
      if (named.has(c.metadata.name)) continue;
      await client.delete(Resources.certificates, namespace, c.metadata.name, c.metadata.uid);
      events.event(obj, def, 'Normal', 'DeleteCertificate', `Successfully deleted unrequired Certificate "${c.metadata.name}"`);
    }
    for (const want of result.certificates) {
      const existing = certificates.get(want.namespace, want.name);
      if (!existing) {
        await client.create<Certificate>(Resources.certificates, {
          metadata: { name: want.name, namespace: want.namespace, labels: { [kind.label]: name }, ownerReferences: [want.ownerReference] },
          spec: want.spec,
        });
        events.event(obj, def, 'Normal', 'CreateCertificate', `Successfully created Certificate "${want.name}"`);
      } else if (!isOwnedBy(existing, obj)) {
        events.event(obj, def, 'Warning', CertificateNotOwned, `Certificate ${want.namespace}/${want.name} already exists and is not owned by this ${def.kind}; name another Secret or delete that Certificate`);
      } else {
        const spec = specToWrite(existing.spec, want.spec);
        if (spec === undefined) continue;
        // From the cached copy, which has no kubectl last-applied annotation: on a Certificate
        // this object owns, one exists only if someone kubectl-applied over it, and their next
        // apply writes it back (with kubectl's warning). The shim owns that spec either way, and
        // a GET first would need a grant the controller otherwise does without.
        await client.replace<Certificate>(Resources.certificates, { ...structuredClone(existing), spec });
        events.event(obj, def, 'Normal', 'UpdateCertificate', `Successfully updated Certificate "${want.name}"`);
      }
    }
    return done;
  };
}
