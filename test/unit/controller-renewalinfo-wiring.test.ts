/**
 * What brings a Certificate back to the ARI check. The certificate to ask about is read from the
 * Secret cache, and the Secret's watch can deliver the new Secret after the Certificate's own
 * status event: the pass on that event finds no certificate and ends, so the Secret's event must
 * bring the Certificate back, or the CA is never asked about it (a revoked certificate would then
 * wait for its ordinary renewal time).
 */
import test from 'ava';
import { Resources, type Secret } from '../../src/api/types.ts';
import { renewalInfoController } from '../../src/controller/renewalinfo.ts';
import type { ControllerSetup } from '../../src/kube/controller.ts';
import { certificate, issuer } from '../helpers/builders.ts';
import { harness } from '../helpers/fake-context.ts';

function registered(): { h: ReturnType<typeof harness>; keys: string[] } {
  const h = harness();
  const keys: string[] = [];
  // The ARI controller subscribes to caches it takes from its context, not to the informer set.
  renewalInfoController.register(h.ctx, { informers: undefined as unknown as ControllerSetup['informers'], queue: { add: (key) => void keys.push(key) } });
  return { h, keys };
}

const secret = (name: string, namespace = 'apps'): Secret => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'kubernetes.io/tls', data: {} });

test('a Secret arriving in the cache brings back the Certificates that name it, and only those', (t) => {
  const { h, keys } = registered();
  h.cluster.seed(Resources.certificates, certificate('web'), certificate('api'));
  h.cluster.emit(Resources.secrets, secret('web-tls'), 'add');
  t.deepEqual(keys, ['apps/web']);
  h.cluster.emit(Resources.secrets, secret('web-tls', 'other'), 'update');
  t.deepEqual(keys, ['apps/web'], 'a Secret of the same name in another namespace is not theirs');
});

test('a pass with no certificate in the Secret cache yet ends, and the Secret event that follows starts the next', async (t) => {
  const { h, keys } = registered();
  h.cluster.seed(Resources.clusterissuers, issuer('letsencrypt'));
  h.cluster.seed(Resources.certificates, certificate('web'));
  const reconcile = renewalInfoController.register(h.ctx, { informers: undefined as unknown as ControllerSetup['informers'], queue: { add: () => undefined } }).reconcile;
  t.deepEqual(await reconcile('apps/web'), { kind: 'done' }, 'an ACME Certificate whose Secret the cache does not show yet: nothing to ask about');
  t.deepEqual(h.ca.calls, [], 'and the CA was not asked');
  h.cluster.emit(Resources.secrets, secret('web-tls'), 'add');
  t.deepEqual(keys, ['apps/web']);
});
