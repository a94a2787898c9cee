/**
 * Status writes happen only when the status a user would see changed, and
 * always carry the resourceVersion that was read, so a stale cache loses the
 * race (409, retried) instead of overwriting newer state. The version a write replaced is
 * noted on the object's cache, so a pass that would read it before the write comes back ends
 * instead (`isReplaced`, kube/own-writes.ts).
 */
import type { KubeObject, ResourceDef } from '../api/types.ts';
import { sameContent } from '../base/objects.ts';
import type { Informer } from '../kube/informer.ts';
import type { Caches, Context } from './context.ts';

/** The cache of the objects `def` names, if the controllers keep one (the cert-manager kinds and Secrets do). */
function cacheOf(ctx: Context, def: ResourceDef): Pick<Informer<KubeObject>, 'replacedByWrite' | 'createdByWrite' | 'deletedByWrite'> | undefined {
  return ctx.caches[def.plural as keyof Caches];
}

export async function writeStatus<T extends KubeObject & { status?: object }>(
  ctx: Context,
  def: ResourceDef,
  current: T,
  status: NonNullable<T['status']>,
): Promise<T | undefined> {
  if (sameContent(current.status ?? {}, status)) return undefined;
  const next = { ...structuredClone(current), status } as T;
  const written = await ctx.client.replaceStatus(def, next);
  // An update the API server found to change nothing (a field the schema prunes, say) keeps the
  // resourceVersion and sends no watch event: nothing would end the record, so none is made.
  if (written.metadata.resourceVersion !== current.metadata.resourceVersion) cacheOf(ctx, def)?.replacedByWrite(current, written.metadata.resourceVersion);
  return written;
}

/**
 * Creates `obj` and notes it on its cache (`createdWaitMs`), so a pass that runs again before the
 * object's watch event knows it was made instead of sending a create the API server refuses.
 */
export async function createObject<T extends KubeObject>(ctx: Context, def: ResourceDef, obj: T): Promise<T> {
  const created = await ctx.client.create<T>(def, obj);
  cacheOf(ctx, def)?.createdByWrite(created, ctx.clock().getTime());
  return created;
}

/**
 * Deletes `obj` (only the one of its uid) and notes it on its cache (`isDeleting`), so a pass that
 * runs again before the deletion's watch event does not send a second delete.
 */
export async function deleteObject(ctx: Context, def: ResourceDef, obj: KubeObject): Promise<void> {
  await ctx.client.delete(def, obj.metadata.namespace, obj.metadata.name, obj.metadata.uid);
  cacheOf(ctx, def)?.deletedByWrite(obj);
}
