/**
 * Events as client-go's recorder writes them: a repeat of the same Event on the same object
 * raises the count of the first instead of creating another, and each object gets at most 25
 * Events in a burst, then one every 5 minutes (EventSourceObjectSpamFilter), whatever their
 * reasons, so a reconcile loop cannot flood the API server.
 */
import test from 'ava';
import { setImmediate as tick } from 'node:timers/promises';
import type { KubeObject } from '../../src/api/types.ts';
import { Resources } from '../../src/api/types.ts';
import { EventRecorder, EventSpamFilter } from '../../src/kube/events.ts';
import { createLogger } from '../../src/log.ts';
import { FakeCluster } from '../helpers/fake-cluster.ts';

const MINUTE = 60_000;

test('an object gets 25 Events at once, then one more for every 5 minutes', (t) => {
  const filter = new EventSpamFilter();
  const allowed = Array.from({ length: 30 }, () => filter.allow('certificates/ns/web/uid-1', 0)).filter(Boolean).length;
  t.is(allowed, 25);
  t.false(filter.allow('certificates/ns/web/uid-1', 4 * MINUTE), 'less than 5 minutes later the bucket is still empty');
  t.true(filter.allow('certificates/ns/web/uid-1', 5 * MINUTE));
  t.false(filter.allow('certificates/ns/web/uid-1', 5 * MINUTE), 'one token came back, not more');
});

test('a quiet object gets its whole burst back, and no more than the burst', (t) => {
  const filter = new EventSpamFilter();
  for (let i = 0; i < 25; i++) filter.allow('orders/ns/o/uid-2', 0);
  const later = 1000 * MINUTE;
  t.is(Array.from({ length: 30 }, () => filter.allow('orders/ns/o/uid-2', later)).filter(Boolean).length, 25);
});

test('each object has its own bucket', (t) => {
  const filter = new EventSpamFilter({ burst: 1 });
  t.true(filter.allow('challenges/ns/a/uid-a', 0));
  t.false(filter.allow('challenges/ns/a/uid-a', 0));
  t.true(filter.allow('challenges/ns/b/uid-b', 0), 'another object is not held back by the first');
});

test('beyond its capacity the filter forgets the least recently seen object, which starts with a full bucket again', (t) => {
  const filter = new EventSpamFilter({ burst: 1, capacity: 2 });
  t.true(filter.allow('a', 0));
  t.true(filter.allow('b', 0));
  t.false(filter.allow('a', 0), 'a was seen most recently, b is the oldest');
  t.true(filter.allow('c', 0), 'c pushes out b');
  t.true(filter.allow('b', 0), 'b is new again');
});

test('a loop recording the same Event writes it once, raises its count 24 times, then writes nothing more', async (t) => {
  const cluster = new FakeCluster();
  const now = new Date('2030-01-01T00:00:00Z');
  const recorder = new EventRecorder(cluster.client, createLogger('silent'), 'certroute', () => now);
  const cert: KubeObject = { metadata: { name: 'web', namespace: 'ns', uid: 'uid-web' } };
  for (let i = 0; i < 100; i++) {
    recorder.event(cert, Resources.certificates, 'Warning', 'Failed', 'the CA refused the order');
    await tick();
  }
  const events = cluster.writes.filter((w) => w.resource === 'events');
  t.is(events.filter((w) => w.verb === 'create').length, 1);
  t.is(events.filter((w) => w.verb === 'patch').length, 24);
  const [stored] = cluster.all<KubeObject & { count?: number; reason?: string }>({ group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true }, 'ns');
  t.is(stored?.reason, 'Failed');
  t.is(stored?.count, 25);
});
