import test from 'ava';
import type { KubeObject } from '../../src/api/types.ts';
import { OwnWrites } from '../../src/kube/own-writes.ts';

const at = (resourceVersion: string, name = 'web'): KubeObject => ({ metadata: { namespace: 'apps', name, resourceVersion } });

test('the version a write replaced is outdated until the cache shows another, and only that object and version', (t) => {
  const v = new OwnWrites();
  v.replacedVersion(at('10'));
  t.true(v.outdated(at('10')));
  t.false(v.outdated(at('9')), 'an older version is not one this process replaced');
  t.false(v.outdated(at('10', 'other')));
  v.seen(at('10'));
  t.true(v.outdated(at('10')), 'an event of the replaced version itself does not end the record');
  v.seen(at('12'));
  t.false(v.outdated(at('10')), 'the write came back');
});

test('a deletion ends the record, and an object without a resourceVersion is never recorded', (t) => {
  const v = new OwnWrites();
  v.replacedVersion(at('10'));
  v.seen(at('10'), true);
  t.false(v.outdated(at('10')));
  v.replacedVersion({ metadata: { namespace: 'apps', name: 'web' } });
  t.false(v.outdated({ metadata: { namespace: 'apps', name: 'web' } }));
});

test('an object this process created is waited for until the cache shows it, or its deletion, for at most 30 s', (t) => {
  const v = new OwnWrites();
  v.createdObject(at('3'), 1_000);
  t.is(v.createdWaitMs('apps', 'web', 1_000), 30_000);
  t.is(v.createdWaitMs('apps', 'web', 21_000), 10_000);
  t.is(v.createdWaitMs('apps', 'web', 31_000), undefined, 'the wait is over: it is made again');
  t.is(v.createdWaitMs('apps', 'other', 1_000), undefined);
  v.seen(at('3'));
  t.is(v.createdWaitMs('apps', 'web', 1_000), undefined);
  v.createdObject(at('3'), 2_000);
  v.seen(at('3'), true);
  t.is(v.createdWaitMs('apps', 'web', 2_000), undefined);
});

test('with a view of the cache, nothing is noted that it shows already, and a shown object is never waited for', (t) => {
  let shown: KubeObject | undefined = { metadata: { namespace: 'apps', name: 'web', uid: 'u1', resourceVersion: '12' } };
  const v = new OwnWrites(() => shown);
  v.replacedVersion(at('10'), '12');
  t.false(v.outdated(at('10')), 'the cache shows the written version');
  v.createdObject({ metadata: { namespace: 'apps', name: 'web', uid: 'u1' } }, 0);
  t.is(v.createdWaitMs('apps', 'web', 0), undefined);
  shown = undefined;
  t.is(v.createdWaitMs('apps', 'web', 0), undefined, 'it was shown when made: not noted');
  v.deletedObject({ metadata: { namespace: 'apps', name: 'web', uid: 'u1' } });
  t.false(v.deleting({ metadata: { namespace: 'apps', name: 'web', uid: 'u1' } }), 'the cache no longer shows it');
});

test('an object this process deleted is deleting until the cache shows the deletion, and only that uid', (t) => {
  const v = new OwnWrites();
  const ch: KubeObject = { metadata: { namespace: 'apps', name: 'web', uid: 'u1', resourceVersion: '5' } };
  v.deletedObject(ch);
  t.true(v.deleting(ch));
  t.false(v.deleting({ metadata: { ...ch.metadata, uid: 'u2' } }), 'a new object of the same name is not the one deleted');
  v.seen({ metadata: { ...ch.metadata, deletionTimestamp: '2030-01-01T00:00:00Z' } });
  t.false(v.deleting(ch), 'a deletion held by a finalizer shows as an update');
  v.deletedObject(ch);
  v.seen(ch, true);
  t.false(v.deleting(ch));
});
