/**
 * What this process's own writes changed that its cache has not shown yet, per object: the
 * version a write replaced, the objects it created, and those it deleted.
 *
 * A pass woken by another object's event (a Secret's, say) can run before the write the last
 * pass made has come back through this object's watch. Reading the replaced version, it would
 * redo the step just taken (an Event twice) and lose its write to a 409, then wait a retry's
 * back-off. A reconciler asks `outdated` first and ends such a pass: the write's own watch event
 * brings the next one. Likewise a pass that made an object and runs again before the object's
 * watch event would create it a second time (a 409): `createdWaitMs` says how much longer to
 * wait for that event before creating it again; and one that deleted an object would delete it
 * again (a 404): `deleting` says so.
 * An entry lives from the write to the object's next watch event, so the maps hold only writes
 * in flight; nothing is noted that the cache (`shown`) shows already, because the event came
 * before the write's answer.
 */
import type { KubeObject } from '../api/types.ts';
import { objectKey } from '../base/objects.ts';

/** How long a created object may stay out of the cache before it counts as not made (and is created again: a 409 if it is there after all). */
export const CREATED_SEEN_MS = 30_000;
/** Entries older than this go when the map is large: their watch event was missed, and a relist shows the object anyway. */
const FORGET_AFTER_MS = 2 * CREATED_SEEN_MS;
const PRUNE_ABOVE = 1_000;

/** What the cache shows for an object now. */
export type Shown = (namespace: string | undefined, name: string) => KubeObject | undefined;

export class OwnWrites {
  private readonly replaced = new Map<string, string>();
  private readonly created = new Map<string, number>();
  /** Deleted objects, by key, with the uid deleted. */
  private readonly deleted = new Map<string, string>();
  /** The cache's view; without one, every write is noted. */
  private readonly shown: Shown | undefined;

  constructor(shown?: Shown) {
    this.shown = shown;
  }

  private shownOf(obj: KubeObject): KubeObject | undefined {
    return this.shown?.(obj.metadata.namespace, obj.metadata.name);
  }

  /**
   * `obj`, as it was read (its resourceVersion), was just replaced by a write of this process
   * that made the version `written`; not noted when the cache shows that version already.
   */
  replacedVersion(obj: KubeObject, written?: string): void {
    const rv = obj.metadata.resourceVersion;
    if (!rv || (written !== undefined && this.shownOf(obj)?.metadata.resourceVersion === written)) return;
    this.replaced.set(objectKey(obj), rv);
  }

  /** This process created `obj` at `now` (ms); not noted when the cache shows it already. */
  createdObject(obj: KubeObject, now: number): void {
    if (this.shown && this.shownOf(obj)?.metadata.uid === obj.metadata.uid) return;
    if (this.created.size >= PRUNE_ABOVE) for (const [k, at] of this.created) if (now - at >= FORGET_AFTER_MS) this.created.delete(k);
    this.created.set(objectKey(obj), now);
  }

  /** This process deleted `obj` (the one of its uid); not noted when the cache no longer shows it. */
  deletedObject(obj: KubeObject): void {
    if (this.shown && this.shownOf(obj)?.metadata.uid !== obj.metadata.uid) return;
    if (this.deleted.size >= PRUNE_ABOVE) this.deleted.clear();
    this.deleted.set(objectKey(obj), obj.metadata.uid ?? '');
  }

  /** The cache now shows `obj` (or its deletion): any version but the replaced one ends the records. */
  seen(obj: KubeObject, deleted = false): void {
    if (this.replaced.size === 0 && this.created.size === 0 && this.deleted.size === 0) return;
    const key = objectKey(obj);
    this.created.delete(key);
    // A deletion that waits on a finalizer shows as an update with deletionTimestamp; either ends it.
    if (deleted || obj.metadata.deletionTimestamp || this.deleted.get(key) !== (obj.metadata.uid ?? '')) this.deleted.delete(key);
    if (deleted || this.replaced.get(key) !== obj.metadata.resourceVersion) this.replaced.delete(key);
  }

  /** Whether `obj` is the very version a write of this process replaced. */
  outdated(obj: KubeObject): boolean {
    const rv = this.replaced.get(objectKey(obj));
    return rv !== undefined && rv === obj.metadata.resourceVersion;
  }

  /** Whether this process deleted `obj` (its uid) and the cache has not shown the deletion yet. */
  deleting(obj: KubeObject): boolean {
    const uid = this.deleted.get(objectKey(obj));
    return uid !== undefined && uid === (obj.metadata.uid ?? '');
  }

  /**
   * How much longer to wait, at `now`, for the watch event of the object `namespace/name` this
   * process created, which the cache does not show; undefined when there is nothing to wait for
   * (not made here, shown already, or made CREATED_SEEN_MS ago or more).
   */
  createdWaitMs(namespace: string | undefined, name: string, now: number): number | undefined {
    if (this.shown?.(namespace, name)) return undefined;
    const at = this.created.get(objectKey({ metadata: { namespace, name } }));
    const left = at === undefined ? 0 : CREATED_SEEN_MS - (now - at);
    return left > 0 ? left : undefined;
  }
}
