import test from 'ava';
import type { KubeObject } from '../../src/api/types.ts';
import { ReplacedVersions } from '../../src/kube/own-writes.ts';

const at = (resourceVersion: string, name = 'web'): KubeObject => ({ metadata: { namespace: 'apps', name, resourceVersion } });

test('the version a write replaced is outdated until the cache shows another, and only that object and version', (t) => {
  const v = new ReplacedVersions();
  v.replaced(at('10'));
  t.true(v.outdated(at('10')));
  t.false(v.outdated(at('9')), 'an older version is not one this process replaced');
  t.false(v.outdated(at('10', 'other')));
  v.seen(at('10'));
  t.true(v.outdated(at('10')), 'an event of the replaced version itself does not end the record');
  v.seen(at('12'));
  t.false(v.outdated(at('10')), 'the write came back');
});

test('a deletion ends the record, and an object without a resourceVersion is never recorded', (t) => {
  const v = new ReplacedVersions();
  v.replaced(at('10'));
  v.seen(at('10'), true);
  t.false(v.outdated(at('10')));
  v.replaced({ metadata: { namespace: 'apps', name: 'web' } });
  t.false(v.outdated({ metadata: { namespace: 'apps', name: 'web' } }));
});
