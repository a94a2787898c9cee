/**
 * The Secret cache selects on a label anyone who can write a Secret can set, so what it keeps of
 * each Secret is bounded: only the keys certroute reads, each at most 64 KiB.
 */
import test from 'ava';
import type { Secret } from '../../src/api/types.ts';
import { MAX_CACHED_VALUE, trimSecret } from '../../src/kube/secret-cache.ts';

const b64 = (n: number) => 'A'.repeat(n);

test('a labelled Secret stuffed with other keys is cached with only tls.crt and tls.key', (t) => {
  const secret: Secret & { stringData?: Record<string, string> } = {
    metadata: { name: 'big', namespace: 'team', labels: { 'controller.cert-manager.io/fao': 'true' } },
    type: 'Opaque',
    data: { 'tls.crt': b64(2_000), 'tls.key': b64(300), 'ca.crt': b64(1_000), 'backup.tar': b64(5_000_000), 'db-password': b64(20) },
    stringData: { more: 'x'.repeat(1_000_000) },
  };
  trimSecret(secret);
  t.deepEqual(Object.keys(secret.data ?? {}).sort(), ['tls.crt', 'tls.key']);
  t.is(secret.stringData, undefined);
  t.deepEqual(secret.metadata.labels, { 'controller.cert-manager.io/fao': 'true' }, 'metadata is kept');
});

test('a value larger than 64 KiB is not cached, and reads as absent', (t) => {
  const secret: Secret = { metadata: { name: 's', namespace: 'n' }, data: { 'tls.crt': b64(MAX_CACHED_VALUE + 1), 'tls.key': b64(MAX_CACHED_VALUE) } };
  trimSecret(secret);
  t.deepEqual(Object.keys(secret.data ?? {}), ['tls.key']);
});

test('a Secret without data is left as it is', (t) => {
  const secret: Secret = { metadata: { name: 's', namespace: 'n' } };
  trimSecret(secret);
  t.deepEqual(secret, { metadata: { name: 's', namespace: 'n' } });
});
