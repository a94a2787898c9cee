/**
 * What the Secret cache keeps of a Secret. Anyone who can write a Secret can give it the label
 * the cache selects on, so it keeps only the keys certroute reads, each at most 64 KiB (a chain or
 * a key is a few kB). A write never starts from this copy: storing a certificate merges into the
 * Secret as the API server has it.
 */
import type { Secret } from '../api/types.ts';

/** The Secret keys any reconciler reads (ca.crt is only ever read from the live Secret). */
export const CACHED_SECRET_KEYS: readonly string[] = ['tls.crt', 'tls.key'];
/** A larger value is not kept, and reads as absent. */
export const MAX_CACHED_VALUE = 64 * 1024;

/** Trims a Secret in place, before it is cached. */
export function trimSecret(o: object): void {
  const secret = o as Secret & { stringData?: unknown };
  delete secret.stringData;
  if (!secret.data) return;
  const kept: Record<string, string> = {};
  for (const key of CACHED_SECRET_KEYS) {
    const value = secret.data[key];
    if (value !== undefined && value.length <= MAX_CACHED_VALUE) kept[key] = value;
  }
  secret.data = kept;
}
