/**
 * The versions this process's own writes replaced, per object, until its cache shows another.
 *
 * A pass woken by another object's event (a Secret's, say) can run before the write the last
 * pass made has come back through this object's watch. Reading the replaced version, it would
 * redo the step just taken (an Event twice) and lose its write to a 409, then wait a retry's
 * back-off. A reconciler asks `outdated` first and ends such a pass: the write's own watch event
 * brings the next one. An entry lives from the write to the next watch event of the object, so
 * the map holds only writes in flight.
 */
import type { KubeObject } from '../api/types.ts';
import { objectKey } from '../base/objects.ts';

export class ReplacedVersions {
  private readonly byKey = new Map<string, string>();

  /** `obj`, as it was read (its resourceVersion), was just replaced by a write of this process. */
  replaced(obj: KubeObject): void {
    const rv = obj.metadata.resourceVersion;
    if (rv) this.byKey.set(objectKey(obj), rv);
  }

  /** The cache now shows `obj` (or its deletion): any version but the replaced one ends the record. */
  seen(obj: KubeObject, deleted = false): void {
    if (this.byKey.size === 0) return;
    const key = objectKey(obj);
    if (deleted || this.byKey.get(key) !== obj.metadata.resourceVersion) this.byKey.delete(key);
  }

  /** Whether `obj` is the very version a write of this process replaced. */
  outdated(obj: KubeObject): boolean {
    const rv = this.byKey.get(objectKey(obj));
    return rv !== undefined && rv === obj.metadata.resourceVersion;
  }
}
