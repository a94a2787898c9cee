/**
 * Object metadata helpers, one home for each: the `namespace/name` key that
 * queues, caches and logs share (client-go's MetaNamespaceKeyFunc), owner
 * references (metav1.NewControllerRef and IsControlledBy), and the base64
 * that Secret data and CertificateRequest fields carry, and the equality that
 * decides whether a write is needed at all.
 */
import { isDeepStrictEqual } from 'node:util';
import type { KubeObject, OwnerReference, ResourceDef } from '../api/types.ts';

/** `namespace/name`, or `/name` for a cluster-scoped object. */
export const objectKey = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** The inverse of objectKey; a key without a slash is a cluster-scoped name. */
export const splitKey = (key: string): { namespace: string | undefined; name: string } => {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i) || undefined, name: key.slice(i + 1) };
};

/**
 * The reference that makes `owner` the controller of a dependent. Owner and
 * dependent share a namespace; on a cluster with a garbage collector the
 * dependent goes when its owner does.
 */
export function controllerReference(def: ResourceDef, owner: KubeObject): OwnerReference {
  return {
    apiVersion: `${def.group}/${def.version}`,
    kind: def.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * Whether `owner` is among the object's owners, by uid: a namesake that
 * replaced a deleted owner does not inherit its dependents.
 */
export function isOwnedBy(o: KubeObject, owner: KubeObject): boolean {
  const uid = owner.metadata.uid;
  return uid !== undefined && (o.metadata.ownerReferences ?? []).some((r) => r.uid === uid);
}

/** The name of the object's controller of the given kind, if it has one. */
export function controllerOf(o: KubeObject, kind: string): string | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller && r.kind === kind)?.name;
}

/** Text from a base64 field (Secret data, spec.request); '' when absent. */
export const decodeB64 = (s: string | undefined): string => (s ? Buffer.from(s, 'base64').toString('utf8') : '');

/** Base64 of text, the form Secret data and CertificateRequest fields take. */
export const encodeB64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/**
 * Whether two objects, or parts of one (a status, a spec, a Secret), have the
 * same content as the API server would store it: key order and undefined
 * fields do not count. A write whose content is the same is skipped.
 */
export function sameContent(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(normalize(a), normalize(b));
}

function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const val = (v as Record<string, unknown>)[k];
      if (val !== undefined) out[k] = normalize(val);
    }
    return out;
  }
  return v;
}
