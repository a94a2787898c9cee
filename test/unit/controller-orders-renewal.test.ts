/**
 * The Order reconciler's part in renewals: `replaces` (RFC 9773 §5) names the certificate in
 * the Certificate's Secret, a CA that refuses it is asked again without it, and no more orders
 * are open at the CA than --max-concurrent-orders allows.
 */
import test from 'ava';
import type { Order, Secret } from '../../src/api/types.ts';
import { AcmeProblemError } from '../../src/acme/client.ts';
import { encodeB64 } from '../../src/base/objects.ts';
import { orderReconciler } from '../../src/controller/orders.ts';
import { parseCertificateChain } from '../../src/pki/cert.ts';
import {
  certificate, certificateRequest, http01Solver, issuer, order, ownedBy, Resources, selfSigned, withAnnotations, withSecretName, withSolvers,
} from '../helpers/builders.ts';
import { harness, type Harness } from '../helpers/fake-context.ts';

const current = (h: Harness, name: string) => h.cluster.read<Order>(Resources.orders, 'apps', name)!;

/** An Order made for revision 2 of Certificate web, whose Secret holds the certificate it replaces. */
async function renewal(h: Harness): Promise<string> {
  h.cluster.seed(Resources.clusterissuers, issuer('letsencrypt', withSolvers(http01Solver('default'))));
  const cert = certificate('web', withSecretName('web-tls'));
  h.cluster.seed(Resources.certificates, cert);
  const issued = await selfSigned({ dnsNames: ['a.test'] });
  const secret: Secret = { metadata: { name: 'web-tls', namespace: 'apps' }, type: 'kubernetes.io/tls', data: { 'tls.crt': encodeB64(issued.certificatePem), 'tls.key': encodeB64(issued.keyPem) } };
  h.cluster.seed(Resources.secrets, secret);
  const cr = certificateRequest('web-2', withAnnotations({ 'cert-manager.io/certificate-name': 'web' }), ownedBy(cert, Resources.certificates));
  h.cluster.seed(Resources.certificaterequests, cr);
  h.cluster.seed(Resources.orders, order('web-2-1', ownedBy(cr, Resources.certificaterequests)));
  // The directory of a CA with ARI, as acme-client keeps it.
  Object.assign(h.ca, { http: { getDirectory: async () => ({ renewalInfo: 'https://ca.test/acme/renewal-info' }) } });
  return parseCertificateChain(issued.certificatePem).leaf.renewalInfoId!;
}

function recordReplaces(h: Harness, refuse: boolean): Array<string | undefined> {
  const sent: Array<string | undefined> = [];
  const create = h.ca.createOrder.bind(h.ca);
  h.ca.createOrder = async (data: { identifiers: Array<{ type: string; value: string }>; replaces?: string }) => {
    sent.push(data.replaces);
    if (refuse && data.replaces) throw new AcmeProblemError('certificate already has a replacement order', 409, 'urn:ietf:params:acme:error:alreadyReplaced');
    return create(data);
  };
  return sent;
}

test('a renewal names the certificate in the Secret in replaces, and the Order records it', async (t) => {
  const h = harness();
  const id = await renewal(h);
  const sent = recordReplaces(h, false);
  await orderReconciler(h.ctx)('apps/web-2-1');
  t.deepEqual(sent, [id]);
  t.is(current(h, 'web-2-1').status?.replaces, id);
});

test('a CA that refuses replaces gets the same order again without it, and the renewal goes on', async (t) => {
  const h = harness();
  const id = await renewal(h);
  const sent = recordReplaces(h, true);
  await orderReconciler(h.ctx)('apps/web-2-1');
  t.deepEqual(sent, [id, undefined]);
  t.like(current(h, 'web-2-1').status, { url: 'https://ca.test/acme/order/1', state: 'pending' });
  t.is(current(h, 'web-2-1').status?.replaces, undefined);
  t.true(h.events.some((e) => /ReplacesRefused/.test(e)));
});

test('with --ari=false no replaces is sent', async (t) => {
  const h = harness({ config: { ari: false } });
  await renewal(h);
  const sent = recordReplaces(h, false);
  await orderReconciler(h.ctx)('apps/web-2-1');
  t.deepEqual(sent, [undefined]);
});

test('an Order waits for a place while --max-concurrent-orders orders are open at the CA, and takes one when an order ends', async (t) => {
  const h = harness({ config: { maxConcurrentOrders: 1 } });
  h.cluster.seed(Resources.clusterissuers, issuer('letsencrypt', withSolvers(http01Solver('default'))));
  h.cluster.seed(Resources.orders, order('one'));
  h.cluster.seed(Resources.orders, order('two'));
  const reconcile = orderReconciler(h.ctx);
  await reconcile('apps/one');
  const waiting = await reconcile('apps/two');
  const created = () => h.ca.calls.filter((c) => c === 'createOrder');
  t.deepEqual(created(), ['createOrder'], 'one order at the CA');
  t.like(waiting, { kind: 'requeueAfter' }, 'the second waits');
  t.is(current(h, 'two').status?.url, undefined);
  h.cluster.seed(Resources.orders, { ...current(h, 'one'), status: { ...current(h, 'one').status, state: 'valid' } });
  await reconcile('apps/two');
  t.deepEqual(created(), ['createOrder', 'createOrder']);
  t.truthy(current(h, 'two').status?.url);
});
