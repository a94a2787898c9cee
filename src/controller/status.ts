/**
 * Status writes happen only when the status a user would see changed, and
 * always carry the resourceVersion that was read, so a stale cache loses the
 * race (409, retried) instead of overwriting newer state.
 */
import type { KubeObject, ResourceDef } from '../api/types.ts';
import { sameContent } from '../base/objects.ts';
import type { Context } from './context.ts';

export async function writeStatus<T extends KubeObject & { status?: object }>(
  ctx: Context,
  def: ResourceDef,
  current: T,
  status: NonNullable<T['status']>,
): Promise<T | undefined> {
  if (sameContent(current.status ?? {}, status)) return undefined;
  const next = { ...structuredClone(current), status } as T;
  return ctx.client.replaceStatus(def, next);
}
