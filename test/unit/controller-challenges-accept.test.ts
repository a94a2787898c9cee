/**
 * The Challenge reconciler as a state machine on the in-memory cluster and
 * CA: presented → pending until its solver is ready → accepted (processing)
 * → valid or invalid. The solver is a stand-in whose readiness each spec
 * sets; what HTTP-01's readiness means is the HTTP-01 solver's own test
 * (docs/ARCHITECTURE.md, "Challenge").
 */
import test from 'ava';
import type { Challenge } from '../../src/api/types.ts';
import { challengeReconciler } from '../../src/controller/challenges.ts';
import { certificateRequest, challenge, order, ownedBy, Resources, withChallengeState, type Option } from '../helpers/builders.ts';
import { harness, type Harness } from '../helpers/fake-context.ts';

const KEY = 'apps/web-1-1234-42';

/** A Harness with an order at the CA for a.test and its Challenge, in the state `options` give it. */
async function withChallenge(...options: Array<Option<Challenge>>): Promise<Harness & { reconcile: ReturnType<typeof challengeReconciler>; authzUrl: string }> {
  const h = harness();
  const atCa = await h.ca.createOrder({ identifiers: [{ type: 'dns', value: 'a.test' }] });
  const authzUrl = atCa.authorizations[0]!;
  const offer = h.ca.authorizations.get(authzUrl)!.challenges[0]!;
  // certroute's own Order, for its CertificateRequest, holding the challenge the CA offered: only
  // such a Challenge is presented (src/responder/challenge-owner.ts).
  const [request] = h.cluster.seed(Resources.certificaterequests, certificateRequest('web-1'));
  const [owner] = h.cluster.seed(Resources.orders, order('web-1-1234', ownedBy(request!, Resources.certificaterequests), (o) => {
    o.status = { state: 'pending', authorizations: [{ url: authzUrl, identifier: 'a.test', challenges: [{ url: offer.url, token: 'token' in offer ? offer.token : '', type: 'http-01' }] }] };
  }));
  h.cluster.seed(Resources.challenges, challenge('web-1-1234-42', 'a.test', ownedBy(owner!, Resources.orders), (c) => {
    c.spec.url = offer.url;
    c.spec.authorizationURL = authzUrl;
    c.spec.token = 'token' in offer ? offer.token : '';
    c.metadata.finalizers = ['finalizer.acme.cert-manager.io'];
  }, ...options));
  h.ca.calls.length = 0;
  return { ...h, reconcile: challengeReconciler(h.ctx), authzUrl };
}

const current = (h: Harness) => h.cluster.read<Challenge>(Resources.challenges, 'apps', 'web-1-1234-42');
const pending = withChallengeState('pending', undefined, { presented: true, processing: true });

test('a Challenge not yet presented is presented by its solver and becomes pending, with a Normal event', async (t) => {
  const h = await withChallenge();
  await h.reconcile(KEY);
  t.like(current(h)?.status, { presented: true, processing: true, state: 'pending' });
  t.deepEqual(h.solver.calls, ['present']);
  t.true(h.events.includes('Normal Presented: Presented challenge using HTTP-01 challenge mechanism for a.test'));
  t.deepEqual(h.ca.calls, [], 'nothing asked of the CA before the answer is in place');
});

test('a pending Challenge whose solver is not ready says why, once, and is not accepted', async (t) => {
  const h = await withChallenge(pending);
  h.solver.readiness = { kind: 'notReady', message: 'self-check got 404 from Traefik' };
  const outcome = await h.reconcile(KEY);
  t.like(current(h)?.status, { state: 'pending', reason: 'self-check got 404 from Traefik' });
  t.true(outcome.kind === 'requeueAfter' && outcome.ms > 0, 'it looks again later');
  const writes = h.cluster.writes.length;
  await h.reconcile(KEY);
  t.is(h.cluster.writes.length, writes, 'the same reason is not written again');
  t.is(h.events.filter((e) => e.startsWith('Warning SelfCheckFailed')).length, 1);
  t.deepEqual(h.ca.calls, []);
});

test('a solver that asks to wait is asked again after that wait, and nothing is written', async (t) => {
  const h = await withChallenge(pending);
  h.solver.readiness = { kind: 'wait', ms: 30_000 };
  const writes = h.cluster.writes.length;
  t.deepEqual(await h.reconcile(KEY), { kind: 'requeueAfter', ms: 30_000 });
  t.is(h.cluster.writes.length, writes);
});

test('once its solver is ready the challenge is accepted at the CA, with no status write: the next passes poll until the CA has decided', async (t) => {
  const h = await withChallenge(pending);
  const writes = h.cluster.writes.length;
  const outcome = await h.reconcile(KEY);
  t.true(outcome.kind === 'requeueAfter', 'it polls');
  t.deepEqual(h.ca.calls, ['completeChallenge']);
  t.false(h.events.some((e) => e.includes('Accepted')), 'cert-manager records no Event when a challenge is accepted');
  await h.reconcile(KEY);
  t.deepEqual(h.ca.calls, ['completeChallenge', 'getAuthorizations'], 'the next pass polls the authorization, it does not accept again');
  t.is(h.cluster.writes.length, writes, 'as cert-manager, processing is not written');
  h.ca.validate(h.authzUrl);
  await h.reconcile(KEY);
  t.like(current(h)?.status, { state: 'valid', processing: false, reason: 'Successfully authorized domain' });
  t.is(h.cluster.writes.length, writes + 1, 'pending to valid in one write');
});

test('an accepted Challenge whose status still shows a self-check failure is written as processing, so the failure does not stand', async (t) => {
  const h = await withChallenge(withChallengeState('pending', 'self-check got 404 from Traefik', { presented: true, processing: true }));
  await h.reconcile(KEY);
  t.like(current(h)?.status, { state: 'processing', reason: 'Challenge accepted; waiting for the ACME server to validate' });
});

test('an accept the CA refuses because an earlier pass already accepted carries on from the CA’s state', async (t) => {
  const h = await withChallenge(pending);
  await h.ca.completeChallenge({ url: current(h)!.spec.url });
  await h.reconcile(KEY);
  t.deepEqual(h.ca.calls, ['completeChallenge', 'completeChallenge', 'getAuthorizations'], 'refused, then the CA is asked where it went');
  h.ca.validate(h.authzUrl);
  await h.reconcile(KEY);
  t.is(current(h)?.status?.state, 'valid');
});

test('a processing Challenge becomes valid when the CA has validated it', async (t) => {
  const h = await withChallenge(withChallengeState('processing', undefined, { presented: true, processing: true }));
  h.ca.validate(h.authzUrl);
  await h.reconcile(KEY);
  t.like(current(h)?.status, { state: 'valid', processing: false, reason: 'Successfully authorized domain' });
  t.true(h.events.includes('Normal DomainVerified: Domain "a.test" verified with "HTTP-01" validation'));
});

test('a processing Challenge becomes invalid with the CA’s error when validation failed', async (t) => {
  const h = await withChallenge(withChallengeState('processing', undefined, { presented: true, processing: true }));
  h.ca.invalidate(h.authzUrl, 'Invalid response from http://a.test/.well-known/acme-challenge/token: 404');
  await h.reconcile(KEY);
  t.is(current(h)?.status?.state, 'invalid');
  t.regex(current(h)?.status?.reason ?? '', /unauthorized: Invalid response from .*: 404$/);
});

test('a deleted Challenge is cleaned up by its solver before its finalizer goes', async (t) => {
  const h = await withChallenge(pending);
  await h.cluster.client.delete(Resources.challenges, 'apps', 'web-1-1234-42');
  t.truthy(current(h)?.metadata.deletionTimestamp, 'held by the finalizer');
  await h.reconcile(KEY);
  t.deepEqual(h.solver.calls, ['cleanUp']);
  t.is(current(h), undefined);
});

test('a Challenge of a type no solver handles is errored, naming the solvers there are', async (t) => {
  const h = await withChallenge((c) => void (c.spec.type = 'DNS-01'));
  await h.reconcile(KEY);
  t.like(current(h)?.status, { state: 'errored', processing: false });
  t.regex(current(h)?.status?.reason ?? '', /no solver for DNS-01 challenges; use one of: http01/);
});
