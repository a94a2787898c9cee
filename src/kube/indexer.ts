/**
 * Secondary indexes over an informer's cache, as client-go's Indexers keep
 * them: "the Certificates that name this Secret", "the Challenges this Order
 * owns". Without them every event and every pass filtered a whole namespace:
 * with 10,000 Certificates in one namespace the start-up pass compared 10^8
 * pairs and copied the namespace's list 30,000 times.
 *
 * An index is kept by the events the informer emits (every add, update and
 * delete of its cache), so it answers for the objects the cache answers for.
 */
import type { KubeObject } from '../api/types.ts';
import { objectKey } from '../base/objects.ts';

/** The index values of one object; an object may have none or several. */
export type IndexFunc<T> = (obj: T) => readonly string[];

export class Indexer<T extends KubeObject> {
  private readonly fn: IndexFunc<T>;
  /** index value → object key → object */
  private readonly byValue = new Map<string, Map<string, T>>();
  /** object key → the values it is filed under, to unfile it on update and delete */
  private readonly valuesOf = new Map<string, readonly string[]>();

  constructor(fn: IndexFunc<T>) {
    this.fn = fn;
  }

  /** Files an event's object; call for every event the cache emits, before its handlers run. */
  apply(obj: T, event: 'add' | 'update' | 'delete'): void {
    const key = objectKey(obj);
    for (const value of this.valuesOf.get(key) ?? []) {
      const objects = this.byValue.get(value);
      objects?.delete(key);
      if (objects?.size === 0) this.byValue.delete(value);
    }
    if (event === 'delete') {
      this.valuesOf.delete(key);
      return;
    }
    const values = this.fn(obj);
    if (values.length === 0) {
      this.valuesOf.delete(key);
      return;
    }
    this.valuesOf.set(key, values);
    for (const value of values) {
      let objects = this.byValue.get(value);
      if (!objects) this.byValue.set(value, (objects = new Map()));
      objects.set(key, obj);
    }
  }

  get(value: string): T[] {
    const objects = this.byValue.get(value);
    return objects ? [...objects.values()] : [];
  }
}

/** Index value of objects by the uid of each of their owners (what `isOwnedBy` checks). */
export const byOwnerUid: IndexFunc<KubeObject> = (o) => (o.metadata.ownerReferences ?? []).map((r) => r.uid);

/** Index value of objects by their controller: `<namespace>/<kind>/<name>` (what `controllerOf` reads). */
export const controllerIndexValue = (namespace: string | undefined, kind: string, name: string): string => `${namespace ?? ''}/${kind}/${name}`;

export const byController: IndexFunc<KubeObject> = (o) =>
  (o.metadata.ownerReferences ?? []).filter((r) => r.controller).map((r) => controllerIndexValue(o.metadata.namespace, r.kind, r.name));
