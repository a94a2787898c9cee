/**
 * A Challenge is presented and served only when certroute's own ACME flow made it: its
 * controlling Order exists with the uid it names, that Order was made for an existing
 * CertificateRequest, got this very challenge (token and URL) from the CA and asks for this name,
 * and neither is finished. Anything else is a Challenge someone wrote by hand, whose answer would
 * prove control of a host behind this Traefik to any CA.
 */
import test from 'ava';
import type { CertificateRequest, Challenge, Order } from '../../src/api/types.ts';
import { ChallengeIndex } from '../../src/responder/challenge-index.ts';
import { challengeOwnerProblem, type OwnerLookup } from '../../src/responder/challenge-owner.ts';
import { certificateRequest, challenge, order, ownedBy, Resources, withChallengeState, withOrderState, type Option } from '../helpers/builders.ts';

const cr = certificateRequest('web-1');
const withAuthorization = (ch: Challenge): Option<Order> => (o) => {
  o.status = { ...o.status, state: o.status?.state ?? 'pending', authorizations: [{ url: ch.spec.authorizationURL, identifier: ch.spec.dnsName, challenges: [{ url: ch.spec.url, token: ch.spec.token, type: 'http-01' }] }] };
};
const genuineChallenge = (...options: Array<Option<Challenge>>) => challenge('web-1-abc', 'a.test', (c) => {
  c.spec.token = 'token-from-the-ca';
  c.spec.key = 'token-from-the-ca.thumbprint';
}, withChallengeState('pending', undefined, { presented: true }), ...options);

function world(ch: Challenge, orderOptions: Array<Option<Order>> = [], requests: CertificateRequest[] = [cr]): OwnerLookup {
  const o = order('web-1-123', ownedBy(cr, Resources.certificaterequests), withAuthorization(genuineChallenge()), ...orderOptions);
  ch.metadata.ownerReferences ??= [{ apiVersion: 'acme.cert-manager.io/v1', kind: 'Order', name: o.metadata.name, uid: o.metadata.uid ?? '', controller: true }];
  return {
    order: (_ns, name) => (name === o.metadata.name ? o : undefined),
    certificateRequest: (_ns, name) => requests.find((r) => r.metadata.name === name),
  };
}

test('the Challenge certroute made for its Order is served', (t) => {
  const ch = genuineChallenge();
  t.is(challengeOwnerProblem(ch, world(ch)), undefined);
});

const refused: Array<{ title: string; challenge: () => Challenge; orderOptions?: Array<Option<Order>>; requests?: CertificateRequest[]; problem: RegExp }> = [
  { title: 'no Order controls it (written by hand)', challenge: () => genuineChallenge((c) => (c.metadata.ownerReferences = [])), problem: /no Order controls this Challenge/ },
  {
    title: 'it names an Order that does not exist',
    challenge: () => genuineChallenge((c) => (c.metadata.ownerReferences = [{ apiVersion: 'acme.cert-manager.io/v1', kind: 'Order', name: 'made-up', uid: 'x', controller: true }])),
    problem: /Order made-up does not exist/,
  },
  {
    title: 'it names the Order with another uid (an Order deleted and made again)',
    challenge: () => genuineChallenge((c) => (c.metadata.ownerReferences = [{ apiVersion: 'acme.cert-manager.io/v1', kind: 'Order', name: 'web-1-123', uid: 'old-uid', controller: true }])),
    problem: /does not exist \(or is another object of that name\)/,
  },
  { title: 'the attacker\'s own token, attached to a real Order', challenge: () => genuineChallenge((c) => (c.spec.token = 'attacker-token')), problem: /got no such challenge from the CA/ },
  { title: 'a host the Order never asked for', challenge: () => genuineChallenge((c) => (c.spec.dnsName = 'victim.example.com')), problem: /does not ask for victim\.example\.com/ },
  { title: 'the Order is valid already', challenge: () => genuineChallenge(), orderOptions: [withOrderState('valid')], problem: /is valid/ },
  { title: 'the Order failed', challenge: () => genuineChallenge(), orderOptions: [withOrderState('errored')], problem: /is errored/ },
  { title: 'the Challenge is finished', challenge: () => genuineChallenge(withChallengeState('valid')), problem: /the challenge is valid/ },
  { title: 'the Order\'s CertificateRequest is gone', challenge: () => genuineChallenge(), requests: [], problem: /not made for an existing CertificateRequest/ },
  { title: 'the Order has no CertificateRequest (written by hand)', challenge: () => genuineChallenge(), orderOptions: [(o) => (o.metadata.ownerReferences = [])], problem: /not made for an existing CertificateRequest/ },
];

for (const row of refused) {
  test(`not served when ${row.title}`, (t) => {
    const ch = row.challenge();
    const lookup = world(ch, row.orderOptions, row.requests);
    t.regex(challengeOwnerProblem(ch, lookup) ?? 'served', row.problem);
    // And the responder's index, which every replica serves from, drops it.
    const index = new ChallengeIndex((c) => challengeOwnerProblem(c, lookup) === undefined);
    index.upsert(ch);
    t.is(index.lookup(ch.spec.token, ch.spec.dnsName), undefined);
    t.is(index.size, 0);
  });
}

test('the index serves the genuine Challenge and stops once its Order is valid', (t) => {
  const ch = genuineChallenge();
  let lookup = world(ch);
  const index = new ChallengeIndex((c) => challengeOwnerProblem(c, lookup) === undefined);
  index.upsert(ch);
  t.is(index.lookup('token-from-the-ca', 'a.test'), 'token-from-the-ca.thumbprint');
  lookup = world(ch, [withOrderState('valid')]);
  index.upsert(ch);
  t.is(index.lookup('token-from-the-ca', 'a.test'), undefined);
});
