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

export async function writeStatus<T extends KubeObject & { status?: object }>(
  ctx: Context,
  def: ResourceDef,
  current: T,
  status: NonNullable<T['status']>,
): Promise<T | undefined> {
  if (sameContent(current.status ?? {}, status)) return undefined;
  const next = { ...structuredClone(current), status } as T;
  const written = await ctx.client.replaceStatus(def, next);
  const cache: Pick<Informer<KubeObject>, 'replacedByWrite'> | undefined = ctx.caches[def.plural as keyof Caches];
  cache?.replacedByWrite(current);
  return written;
}
