/**
 * The informer's secondary indexes answer "which cached objects name this one" without scanning a
 * namespace; they must follow every add, update and delete, or a reconciler would miss an object
 * (or act on one that is gone).
 */
import test from 'ava';
import type { KubeObject } from '../../src/api/types.ts';
import { byController, byOwnerUid, controllerIndexValue, Indexer } from '../../src/kube/indexer.ts';

const owned = (name: string, owners: Array<{ kind: string; name: string; uid: string; controller?: boolean }>, namespace = 'team'): KubeObject => ({
  metadata: { name, namespace, ownerReferences: owners.map((o) => ({ apiVersion: 'v1', ...o })) },
});
const names = (objects: KubeObject[]) => objects.map((o) => o.metadata.name).sort();

test('objects are found by the uid of each of their owners', (t) => {
  const index = new Indexer(byOwnerUid);
  index.apply(owned('a', [{ kind: 'Order', name: 'o1', uid: 'u1' }, { kind: 'Certificate', name: 'c', uid: 'u2' }]), 'add');
  index.apply(owned('b', [{ kind: 'Order', name: 'o1', uid: 'u1' }]), 'add');
  t.deepEqual(names(index.get('u1')), ['a', 'b']);
  t.deepEqual(names(index.get('u2')), ['a']);
  t.deepEqual(index.get('nobody'), []);
});

test("an update that changes an object's owner moves it from one value to the other", (t) => {
  const index = new Indexer(byOwnerUid);
  index.apply(owned('a', [{ kind: 'Order', name: 'o1', uid: 'u1' }]), 'add');
  index.apply(owned('a', [{ kind: 'Order', name: 'o2', uid: 'u2' }]), 'update');
  t.deepEqual(index.get('u1'), []);
  t.deepEqual(names(index.get('u2')), ['a']);
});

test('an update returns the newest object, not the one first indexed', (t) => {
  const index = new Indexer(byOwnerUid);
  index.apply(owned('a', [{ kind: 'Order', name: 'o1', uid: 'u1' }]), 'add');
  const newer = owned('a', [{ kind: 'Order', name: 'o1', uid: 'u1' }]);
  newer.metadata.resourceVersion = '2';
  index.apply(newer, 'update');
  t.is(index.get('u1')[0], newer);
});

test('a deleted object is no longer found, and an object that loses every owner neither', (t) => {
  const index = new Indexer(byOwnerUid);
  index.apply(owned('a', [{ kind: 'Order', name: 'o1', uid: 'u1' }]), 'add');
  index.apply(owned('b', [{ kind: 'Order', name: 'o1', uid: 'u1' }]), 'add');
  index.apply(owned('a', []), 'delete');
  index.apply(owned('b', []), 'update');
  t.deepEqual(index.get('u1'), []);
});

test('the controller index files only the controlling owner, per namespace', (t) => {
  const index = new Indexer(byController);
  index.apply(owned('ch', [{ kind: 'Order', name: 'o1', uid: 'u1', controller: true }, { kind: 'Certificate', name: 'c', uid: 'u2' }]), 'add');
  index.apply(owned('ch', [{ kind: 'Order', name: 'o1', uid: 'u3', controller: true }], 'other'), 'add');
  t.deepEqual(names(index.get(controllerIndexValue('team', 'Order', 'o1'))), ['ch']);
  t.is(index.get(controllerIndexValue('team', 'Order', 'o1'))[0]?.metadata.namespace, 'team');
  t.deepEqual(index.get(controllerIndexValue('team', 'Certificate', 'c')), []);
});
