/**
 * A small least-recently-used memo for the pure, slow parsers of this
 * directory. @peculiar/x509 decodes ASN.1 in JavaScript (milliseconds per
 * certificate), and the reconcilers parse the same PEM several times in one
 * pass and again on the next event: one Certificate sync parsed its Secret's
 * leaf twice, every CertificateRequest pass re-parsed its CSR. Results are
 * frozen so a caller cannot change what the next caller gets; failures are
 * not remembered.
 */
export function memoize<T extends object>(parse: (input: string) => T, capacity: number): (input: string) => T {
  const cache = new Map<string, T>();
  return (input) => {
    const hit = cache.get(input);
    if (hit !== undefined) {
      // Re-insert: Map keeps insertion order, so the first key is the least recently used.
      cache.delete(input);
      cache.set(input, hit);
      return hit;
    }
    const value = freezeShallow(parse(input));
    cache.set(input, value);
    if (cache.size > capacity) cache.delete(cache.keys().next().value as string);
    return value;
  };
}

/** Freezes the object and its array fields; nested library objects stay as they are. */
function freezeShallow<T extends object>(value: T): T {
  for (const field of Object.values(value)) if (Array.isArray(field)) Object.freeze(field);
  return Object.freeze(value);
}
