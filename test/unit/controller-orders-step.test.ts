/**
 * The Order reconciler's `step` as a state machine on the in-memory cluster
 * and CA: each pass branches on what the Order's status still lacks, takes
 * one step, and writes each ACME URL the moment it has it, so that a pass
 * after a crash resumes the same order (docs/ARCHITECTURE.md, "Order").
 */
import test from 'ava';
import type { Challenge, Order } from '../../src/api/types.ts';
import { AcmeProblemError } from '../../src/acme/client.ts';
import { decodeB64 } from '../../src/base/objects.ts';
import { challengeName, orderReconciler } from '../../src/controller/orders.ts';
import { certificateRequest, http01Solver, issuer, order, ownedBy, Resources, withSolvers } from '../helpers/builders.ts';
import { harness, type Harness } from '../helpers/fake-context.ts';

const KEY = 'apps/web-1-1234';

/** A Harness with an ACME ClusterIssuer and an Order for a.test and b.test; `reconcile` is one reconciler across passes. */
function withOrder(): Harness & { reconcile: (key: string) => ReturnType<ReturnType<typeof orderReconciler>> } {
  const h = harness();
  h.cluster.seed(Resources.clusterissuers, issuer('letsencrypt', withSolvers(http01Solver('default'))));
  h.cluster.seed(Resources.orders, order('web-1-1234', (o) => void (o.spec.dnsNames = ['a.test', 'b.test'])));
  return { ...h, reconcile: orderReconciler(h.ctx) };
}

const current = (h: Harness) => h.cluster.read<Order>(Resources.orders, 'apps', 'web-1-1234')!;
const challenges = (h: Harness) => h.cluster.all<Challenge>(Resources.challenges, 'apps');

/** Every Challenge of the Order valid in the cluster, and (unless `atCa` is false) its authorization valid at the CA. */
async function challengesValid(h: Harness, { atCa = true } = {}): Promise<void> {
  for (const ch of challenges(h)) {
    if (atCa) h.ca.validate(ch.spec.authorizationURL);
    await h.cluster.client.replaceStatus(Resources.challenges, { ...ch, status: { state: 'valid', presented: true, processing: false } });
  }
}

/** Passes until the Order has its Challenges. */
async function presented(h: ReturnType<typeof withOrder>): Promise<void> {
  for (let i = 0; i < 3; i++) await h.reconcile(KEY);
}

test('an Order without a URL creates the order at the CA and records its URL, finalize URL, state and authorizations in one write', async (t) => {
  const h = withOrder();
  await h.reconcile(KEY);
  t.like(current(h).status, { url: 'https://ca.test/acme/order/1', finalizeURL: 'https://ca.test/acme/order/1/finalize', state: 'pending' });
  t.deepEqual(current(h).status?.authorizations?.map((a) => a.identifier), ['a.test', 'b.test']);
  t.deepEqual(h.ca.calls, ['createOrder', 'getAuthorizations']);
  t.deepEqual(h.cluster.writes.filter((w) => w.resource === 'orders'), [{ verb: 'status', resource: 'orders', key: 'apps/web-1-1234' }]);
  t.deepEqual(challenges(h), [], 'no Challenge yet: they are the next pass');
});

test('when reading the new order’s authorizations fails, its URL is written all the same before the error is retried', async (t) => {
  const h = withOrder();
  h.ca.getAuthorizations = async () => {
    throw new Error('connection reset');
  };
  await t.throwsAsync(h.reconcile(KEY), { message: /connection reset/ });
  t.is(current(h).status?.url, 'https://ca.test/acme/order/1');
  t.is(current(h).status?.authorizations, undefined);
});

test('a pass that does not see the URL it wrote (a lost status write) resumes that order instead of opening a second', async (t) => {
  const h = withOrder();
  await h.reconcile(KEY);
  h.cluster.seed(Resources.orders, { ...current(h), status: {} });
  await h.reconcile(KEY);
  t.is(current(h).status?.url, 'https://ca.test/acme/order/1');
  t.is(h.ca.orders.size, 1, 'the CA holds one order');
});

test('with a URL and no authorizations, a pass records the authorizations and their challenges', async (t) => {
  const h = withOrder();
  await h.reconcile(KEY);
  const { url, finalizeURL, state } = current(h).status ?? {};
  h.cluster.seed(Resources.orders, { ...current(h), status: { url, finalizeURL, state } });
  await h.reconcile(KEY);
  const authorizations = current(h).status?.authorizations ?? [];
  t.deepEqual(authorizations.map((a) => a.identifier), ['a.test', 'b.test']);
  t.deepEqual(authorizations[0]?.challenges, [{ url: 'https://ca.test/acme/authz/1-0/http-01', token: 'token-1-0', type: 'http-01' }]);
  t.deepEqual(challenges(h), [], 'no Challenge yet: one step per pass');
});

test('a pending Order creates one Challenge per authorization, owned by it, with the key authorization and a finalizer', async (t) => {
  const h = withOrder();
  await presented(h);
  const made = challenges(h).sort((a, b) => a.spec.dnsName.localeCompare(b.spec.dnsName));
  t.deepEqual(made.map((c) => c.spec.dnsName), ['a.test', 'b.test']);
  t.like(made[0]?.spec, { type: 'HTTP-01', token: 'token-1-0', key: 'token-1-0.thumbprint', authorizationURL: 'https://ca.test/acme/authz/1-0' });
  t.is(made[0]?.metadata.ownerReferences?.[0]?.uid, current(h).metadata.uid);
  t.deepEqual(made[0]?.metadata.finalizers, ['finalizer.acme.cert-manager.io']);
});

test('a Challenge whose solver has nothing to clean up is made without the finalizer, so its deletion needs no patch', async (t) => {
  const h = withOrder();
  Object.defineProperty(h.solver, 'cleanUp', { value: undefined });
  await presented(h);
  t.is(challenges(h).length, 2);
  t.deepEqual(challenges(h).map((c) => c.metadata.finalizers ?? []), [[], []]);
});

test('a Challenge this process made that the cache does not show yet is not made twice, and the Order looks again after the wait', async (t) => {
  const h = withOrder();
  await h.reconcile(KEY);
  // The Challenges' add events will not arrive (a watch away, say).
  for (const c of ['a.test', 'b.test']) {
    const authz = current(h).status?.authorizations?.find((a) => a.identifier === c);
    h.cluster.showInCache(Resources.challenges, 'apps', challengeName(current(h), authz!.url), undefined);
  }
  await h.reconcile(KEY);
  const creates = () => h.cluster.writes.filter((w) => w.verb === 'create' && w.resource === 'challenges').length;
  t.is(creates(), 2);
  const outcome = await h.reconcile(KEY);
  t.is(creates(), 2, 'not made again while its event may still come');
  t.like(outcome, { kind: 'requeueAfter' }, 'the Order is not left waiting for an event that may never come');
  h.clock.now = new Date(h.clock.now.getTime() + 31_000);
  await t.notThrowsAsync(h.reconcile(KEY), 'after the wait it is made again; the API server says it exists');
});

test('a pending Order waits while a Challenge is not valid, without asking the CA', async (t) => {
  const h = withOrder();
  await presented(h);
  const asked = h.ca.calls.length;
  await h.reconcile(KEY);
  t.is(h.ca.calls.length, asked);
  t.is(current(h).status?.state, 'pending');
});

test('once every Challenge is valid the Order finalizes without reading the order first, and stores the chain in the same pass', async (t) => {
  const h = withOrder();
  await presented(h);
  await challengesValid(h);
  const before = h.ca.calls.length;
  await h.reconcile(KEY);
  t.deepEqual(h.ca.calls.slice(before), ['finalizeOrder', 'getCertificate']);
  t.is(current(h).status?.state, 'valid');
  await h.reconcile(KEY);
  t.is(current(h).status?.state, 'valid');
  t.regex(decodeB64(current(h).status?.certificate), /fake chain of https:\/\/ca\.test\/acme\/order\/1/);
  t.deepEqual(h.ca.calls.filter((c) => c === 'finalizeOrder'), ['finalizeOrder'], 'finalized once');
});

test('an Order the CA is still signing after finalize is polled without a status write; its next write is valid with the chain', async (t) => {
  const h = withOrder();
  h.ca.slowSigning = true;
  await presented(h);
  await challengesValid(h);
  const writes = () => h.cluster.writes.filter((w) => w.resource === 'orders').length;
  const before = writes();
  await h.reconcile(KEY);
  await h.reconcile(KEY);
  t.is(h.ca.orders.get(current(h).status?.url ?? '')?.status, 'processing', 'finalized, and the CA is signing');
  t.is(writes(), before, 'processing is not written');
  h.ca.finishSigning(current(h).status?.url ?? '');
  await h.reconcile(KEY);
  t.is(writes(), before + 1);
  t.is(current(h).status?.state, 'valid');
  t.truthy(current(h).status?.certificate);
  t.deepEqual(h.ca.calls.filter((c) => c === 'finalizeOrder'), ['finalizeOrder'], 'finalized once');
});

test('Challenges valid before the CA has the order ready: finalize is refused (orderNotReady), the order is read and polled, and finalized once it is ready', async (t) => {
  const h = withOrder();
  await presented(h);
  await challengesValid(h, { atCa: false });
  const outcome = await h.reconcile(KEY);
  t.like(outcome, { kind: 'requeueAfter' });
  t.is(current(h).status?.state, 'pending', 'nothing failed');
  for (const ch of challenges(h)) h.ca.validate(ch.spec.authorizationURL);
  const before = h.ca.calls.length;
  await h.reconcile(KEY);
  t.deepEqual(h.ca.calls.slice(before), ['getOrder', 'finalizeOrder', 'getCertificate'], 'this time the order is read before it is finalized');
  t.is(current(h).status?.state, 'valid');
});

test('after a restart (nothing remembered), an Order the CA has already finalized is refused in any words, read, and its chain stored', async (t) => {
  const h = withOrder();
  await presented(h);
  await challengesValid(h);
  const url = current(h).status?.url ?? '';
  await h.ca.finalizeOrder({ ...h.ca.orders.get(url)!, url });
  // A CA that words the refusal otherwise than RFC 8555's orderNotReady.
  h.ca.finalizeOrder = async () => {
    throw new AcmeProblemError('Order is already finalized', 403, 'urn:ietf:params:acme:error:unauthorized');
  };
  await h.reconcile(KEY);
  t.is(current(h).status?.state, 'valid', 'not errored');
  t.truthy(current(h).status?.certificate);
});

test('a finalize the CA answers with an invalid order records the CA\'s reason, the failure time and a Warning Event', async (t) => {
  const h = withOrder();
  await presented(h);
  await challengesValid(h);
  h.ca.finalizeOrder = async (order) => {
    const held = h.ca.orders.get(order.url)!;
    Object.assign(held, { status: 'invalid', error: { type: 'urn:ietf:params:acme:error:badCSR', detail: 'the key is too weak' } });
    return structuredClone(held);
  };
  await h.reconcile(KEY);
  t.like(current(h).status, { state: 'invalid', reason: 'urn:ietf:params:acme:error:badCSR: the key is too weak' });
  t.truthy(current(h).status?.failureTime);
  t.true(h.events.some((e) => e.startsWith('Warning Failed:') && e.includes('badCSR')), h.events.join('\n'));
});

test('a ready Order the CA has finalized already (orderNotReady) reads where it went instead of failing', async (t) => {
  const h = withOrder();
  await presented(h);
  for (const ch of challenges(h)) h.ca.validate(ch.spec.authorizationURL);
  const url = current(h).status?.url ?? '';
  await h.ca.finalizeOrder({ ...h.ca.orders.get(url)!, url });
  h.cluster.seed(Resources.orders, { ...current(h), status: { ...current(h).status, state: 'ready' } });
  await h.reconcile(KEY);
  t.is(current(h).status?.state, 'valid');
  t.truthy(current(h).status?.certificate);
});

test('an ACME 4xx makes the Order errored with the CA’s reason and a Warning event', async (t) => {
  const h = withOrder();
  h.ca.createOrder = async () => {
    throw new AcmeProblemError('Error creating new order: rejectedIdentifier: a.test is blocked', 400, 'urn:ietf:params:acme:error:rejectedIdentifier');
  };
  await h.reconcile(KEY);
  t.like(current(h).status, { state: 'errored', reason: 'Error creating new order: rejectedIdentifier: a.test is blocked', failureTime: '2030-01-01T00:00:00Z' });
  t.true(h.events.some((e) => e.startsWith('Warning Errored: ')));
});

test('an invalid authorization at the CA makes the Order invalid, with a reason that points at its Challenges', async (t) => {
  const h = withOrder();
  await presented(h);
  const [first] = challenges(h);
  h.ca.invalidate(first!.spec.authorizationURL);
  await h.cluster.client.replaceStatus(Resources.challenges, { ...first!, status: { state: 'invalid', presented: true, processing: false } });
  await h.reconcile(KEY);
  t.is(current(h).status?.state, 'invalid');
  t.regex(current(h).status?.reason ?? '', /see its Challenges/);
});

test('an Order in a final state deletes its Challenges', async (t) => {
  const h = withOrder();
  await presented(h);
  h.cluster.seed(Resources.orders, { ...current(h), status: { ...current(h).status, state: 'invalid' } });
  await h.reconcile(KEY);
  t.true(challenges(h).every((c) => c.metadata.deletionTimestamp !== undefined), 'each Challenge is being deleted (its finalizer lets the solver clean up)');
});

test('a second final pass before the deletions reach the cache sends no second delete', async (t) => {
  const h = withOrder();
  Object.defineProperty(h.solver, 'cleanUp', { value: undefined });
  await presented(h);
  const made = challenges(h);
  // The Challenges' delete events will not have arrived: the cache goes on showing them.
  for (const c of made) h.cluster.showInCache(Resources.challenges, 'apps', c.metadata.name, c);
  h.cluster.seed(Resources.orders, { ...current(h), status: { ...current(h).status, state: 'valid' } });
  await h.reconcile(KEY);
  t.deepEqual(h.cluster.all(Resources.challenges, 'apps'), [], 'without a finalizer they are gone at once');
  t.is(h.cluster.writes.filter((w) => w.verb === 'delete' && w.resource === 'challenges').length, 2);
  const sent: string[] = [];
  const del = h.cluster.client.delete;
  h.cluster.client.delete = async (def, ns, name, uid) => {
    sent.push(`${def.plural} ${name}`);
    return del(def, ns, name, uid);
  };
  await h.reconcile(KEY);
  t.deepEqual(sent, [], 'no delete request for a Challenge this process deleted already');
});

test('an Order whose CertificateRequest is gone is deleted: the garbage collector’s job, done by hand', async (t) => {
  const h = harness();
  const gone = certificateRequest('web-1');
  h.cluster.seed(Resources.orders, order('web-1-1234', ownedBy(gone, Resources.certificaterequests)));
  await orderReconciler(h.ctx)(KEY);
  t.is(h.cluster.read(Resources.orders, 'apps', 'web-1-1234'), undefined);
});

// cert-manager's ACME issuer field enableDurationFeature: "Enables requesting a Not After date on
// certificates that matches the duration of the certificate."
for (const enabled of [true, false]) {
  test(`with enableDurationFeature ${enabled ? 'on, newOrder asks for notAfter = now + the duration' : 'off, newOrder names no notAfter'}`, async (t) => {
    const h = harness();
    h.cluster.seed(Resources.clusterissuers, issuer('letsencrypt', withSolvers(http01Solver('default')), (i) => void (i.spec.acme!.enableDurationFeature = enabled)));
    h.cluster.seed(Resources.orders, order('web-1-1234', (o) => void Object.assign(o.spec, { dnsNames: ['a.test'], duration: '24h' })));
    const sent: unknown[] = [];
    const create = h.ca.createOrder.bind(h.ca);
    h.ca.createOrder = async (data) => {
      sent.push(data);
      return create(data);
    };
    await orderReconciler(h.ctx)(KEY);
    const expected = new Date(h.ctx.clock().getTime() + 24 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    t.like(sent[0], { identifiers: [{ type: 'dns', value: 'a.test' }] });
    t.is((sent[0] as { notAfter?: string }).notAfter, enabled ? expected : undefined);
  });
}
