/**
 * The solver seam: which of an issuer's solvers answers an authorization (cert-manager's
 * precedence, among the solvers certroute has and the CA offered), the registry that finds a
 * solver by configuration kind or Challenge type, and HTTP-01's readiness and responder index.
 */
import test from 'ava';
import type { AcmeAuthorization, AcmeSolver } from '../../src/api/types.ts';
import { http01, Http01Solver } from '../../src/solvers/http01.ts';
import { REGISTERED, SolverRegistry } from '../../src/solvers/registry.ts';
import { chooseSolver, noSolverReason, selectSolver } from '../../src/solvers/select.ts';
import type { ChallengeSolver, SolverDeps, SolverRegistration } from '../../src/solvers/solver.ts';
import type { Challenge } from '../../src/api/types.ts';
import type { OwnerLookup } from '../../src/responder/challenge-owner.ts';
import { certificateRequest, challenge, http01Solver, issuer, order, ownedBy, Resources, testConfig, withChallengeState, withSolvers } from '../helpers/builders.ts';

/** Deps for solvers that read only the clock and the config; anything else throws when touched. */
function solverDeps(now = new Date('2026-01-01T00:00:00Z')): SolverDeps {
  const untouchable = <T extends object>(what: string): T => new Proxy({} as T, {
    get: (_t, prop) => {
      throw new Error(`the solver under test used ${what}.${String(prop)}`);
    },
  });
  return { client: untouchable('client'), logger: untouchable('logger'), clock: () => now, config: testConfig, owners: owners.lookup };
}

/** Challenge `c` for a.test, token `token`, as certroute's flow makes it: an Order the CA gave that token, for an existing request. */
const owners = (() => {
  const cr = certificateRequest('web-1');
  const o = order('web-1-1', ownedBy(cr, Resources.certificaterequests), (x) => {
    x.status = { state: 'pending', authorizations: [{ url: 'https://acme.test/authz/c', identifier: 'a.test', challenges: [{ url: 'https://acme.test/chall/c', token: 'token', type: 'http-01' }] }] };
  });
  const lookup: OwnerLookup = { order: (_ns, n) => (n === o.metadata.name ? o : undefined), certificateRequest: (_ns, n) => (n === cr.metadata.name ? cr : undefined) };
  return { lookup, ofOrder: ownedBy<Challenge>(o, Resources.orders) };
})();

const http01Only = (deps = solverDeps()) => new SolverRegistry(deps, [http01]);

const nameOf = (s: AcmeSolver | undefined) => s?.http01?.ingress?.name;

function authorization(identifier: string, types: string[], extra: Partial<AcmeAuthorization> = {}): AcmeAuthorization {
  return { url: `https://acme.test/authz/${identifier}`, identifier, challenges: types.map((type) => ({ type, url: `https://acme.test/chall/${type}`, token: `tok-${type}` })), ...extra };
}

// ── selectSolver: cert-manager's precedence ─────────────────────────────────

const catchAll = http01Solver('catch-all');
const byLabels = http01Solver('labels', { matchLabels: { team: 'edge' } });
const byZone = http01Solver('zone example.com', { dnsZones: ['example.com'] });
const bySubZone = http01Solver('zone sub.example.com', { dnsZones: ['sub.example.com'] });
const byName = http01Solver('name www.example.com', { dnsNames: ['www.example.com'] });
const dns01ByName: AcmeSolver = { selector: { dnsNames: ['www.example.com'] }, dns01: { cloudflare: {} } };

test('the most specific matching selector wins: dnsNames, then dnsZones, then matchLabels, then none', (t) => {
  const table: Array<{ name: string; solvers: AcmeSolver[]; dnsName: string; labels?: Record<string, string>; want: string | undefined }> = [
    { name: 'no solvers', solvers: [], dnsName: 'www.example.com', want: undefined },
    { name: 'a solver without selector takes anything', solvers: [catchAll], dnsName: 'www.example.com', want: 'catch-all' },
    { name: 'dnsNames beats everything, listed last', solvers: [catchAll, byLabels, byZone, byName], dnsName: 'www.example.com', want: 'name www.example.com' },
    { name: 'dnsNames beats everything, listed first', solvers: [byName, byZone, byLabels, catchAll], dnsName: 'www.example.com', want: 'name www.example.com' },
    { name: 'a dnsNames selector that does not list the name is skipped', solvers: [byName, byZone], dnsName: 'api.example.com', want: 'zone example.com' },
    { name: 'dnsZones beats matchLabels and none', solvers: [catchAll, byLabels, byZone], dnsName: 'api.example.com', want: 'zone example.com' },
    { name: 'a zone matches its apex', solvers: [catchAll, byZone], dnsName: 'example.com', want: 'zone example.com' },
    { name: 'a zone matches only on a label boundary', solvers: [catchAll, byZone], dnsName: 'notexample.com', want: 'catch-all' },
    { name: 'a zone that does not contain the name is skipped', solvers: [byZone], dnsName: 'example.org', want: undefined },
    { name: 'matchLabels beats no selector', solvers: [catchAll, byLabels], dnsName: 'api.example.org', labels: { team: 'edge' }, want: 'labels' },
    { name: 'a matchLabels selector whose labels the Certificate lacks is skipped', solvers: [catchAll, byLabels], dnsName: 'api.example.org', labels: { team: 'core' }, want: 'catch-all' },
    { name: 'only a non-matching dnsNames selector: nothing', solvers: [byName], dnsName: 'api.example.com', want: undefined },
    { name: 'two equally specific solvers: the first listed wins', solvers: [http01Solver('first'), http01Solver('second')], dnsName: 'a.test', want: 'first' },
  ];
  for (const row of table) t.is(nameOf(selectSolver(row.solvers, row.dnsName, row.labels)), row.want, row.name);
});

test('between two matching dnsZones the longest zone wins, wherever it is listed', (t) => {
  const table: Array<{ solvers: AcmeSolver[]; dnsName: string; want: string }> = [
    { solvers: [bySubZone, byZone], dnsName: 'a.sub.example.com', want: 'zone sub.example.com' },
    { solvers: [byZone, bySubZone], dnsName: 'a.sub.example.com', want: 'zone sub.example.com' },
    { solvers: [byZone, bySubZone], dnsName: 'a.example.com', want: 'zone example.com' },
  ];
  for (const row of table) t.is(nameOf(selectSolver(row.solvers, row.dnsName)), row.want, `${row.dnsName} with [${row.solvers.map(nameOf).join(', ')}]`);
});

// ── chooseSolver: what certroute has and what the CA offered ─────────────────

test('a solver of a kind certroute has no solver for is never picked, however specific its selector', (t) => {
  const choice = chooseSolver(http01Only(), issuer('le', withSolvers(dns01ByName, catchAll)), authorization('www.example.com', ['http-01', 'dns-01']));
  t.is(nameOf(choice?.config), 'catch-all');
});

test('the choice carries the solver and the challenge the CA offered for its type', (t) => {
  const choice = chooseSolver(http01Only(), issuer('le', withSolvers(catchAll)), authorization('a.test', ['dns-01', 'http-01', 'tls-alpn-01']));
  t.is(choice?.solver.specType, 'HTTP-01');
  t.deepEqual(choice?.offer, { type: 'http-01', url: 'https://acme.test/chall/http-01', token: 'tok-http-01' });
});

test('no solver is chosen when the CA did not offer its challenge type', (t) => {
  const auth = authorization('a.test', ['dns-01']);
  t.is(chooseSolver(http01Only(), issuer('le', withSolvers(catchAll)), auth), undefined);
  t.is(noSolverReason(http01Only(), auth), 'no http01 solver on the issuer matches a.test; add one to spec.acme.solvers');
});

test('a wildcard is never given to a solver that cannot validate one, and the reason says so', (t) => {
  const auth = authorization('example.com', ['http-01', 'dns-01'], { wildcard: true });
  t.is(chooseSolver(http01Only(), issuer('le', withSolvers(catchAll)), auth), undefined);
  t.regex(noSolverReason(http01Only(), auth), /^example\.com is a wildcard; HTTP-01 cannot validate wildcards/);
});

test('a wildcard goes to a registered solver that can validate one', (t) => {
  const wildcardCapable: SolverRegistration = { configKind: 'dns01', create: () => fakeSolver({ configKind: 'dns01', challengeType: 'dns-01', specType: 'DNS-01', wildcards: true }) };
  const registry = new SolverRegistry(solverDeps(), [http01, wildcardCapable]);
  const dns01ByWildcard: AcmeSolver = { selector: { dnsNames: ['*.www.example.com'] }, dns01: { cloudflare: {} } };
  const choice = chooseSolver(registry, issuer('le', withSolvers(catchAll, dns01ByWildcard)), authorization('www.example.com', ['http-01', 'dns-01'], { wildcard: true }));
  t.is(choice?.solver.specType, 'DNS-01');
  t.is(choice?.offer.type, 'dns-01');
});

test('no issuer (not in the cache yet) or an issuer without ACME has no solver', (t) => {
  const auth = authorization('a.test', ['http-01']);
  t.is(chooseSolver(http01Only(), undefined, auth), undefined);
  t.is(chooseSolver(http01Only(), issuer('ca', (i) => (i.spec = { ca: { secretName: 'ca' } })), auth), undefined);
});

// ── the registry ────────────────────────────────────────────────────────────

function fakeSolver(o: Pick<ChallengeSolver, 'configKind' | 'challengeType' | 'specType' | 'wildcards'>): ChallengeSolver {
  return { ...o, present: async () => {}, check: async () => ({ kind: 'ready' }), cleanUp: async () => {} };
}

test('the registry finds a solver by its configuration kind and by the type a Challenge carries', (t) => {
  const registry = http01Only();
  t.true(registry.get('http01') instanceof Http01Solver);
  t.is(registry.get('dns01'), undefined);
  t.is(registry.forConfig(catchAll), registry.get('http01'));
  t.is(registry.forConfig(dns01ByName), undefined);
  t.is(registry.forChallenge(challenge('c', 'a.test')), registry.get('http01'));
  t.is(registry.forChallenge(challenge('c', 'a.test', (c) => (c.spec.type = 'DNS-01'))), undefined);
});

test('only the solvers that leave something outside the Challenge clean up (and so hold its deletion with a finalizer)', (t) => {
  const registry = new SolverRegistry(solverDeps(), REGISTERED);
  t.is(registry.get('http01')?.cleanUp, undefined, 'HTTP-01: the responder index follows the informer');
  t.is(typeof registry.get('dns01')?.cleanUp, 'function', 'DNS-01: the TXT record');
  t.is(typeof registry.get('tlsAlpn01')?.cleanUp, 'function', 'TLS-ALPN-01: the IngressRouteTCP');
});

test('two registrations for the same challenge type are refused at start-up', (t) => {
  t.throws(() => new SolverRegistry(solverDeps(), [http01, http01]), { message: /two solvers registered for http01/ });
});

// ── HTTP-01 ─────────────────────────────────────────────────────────────────

const createdAt = (iso: string) => (c: { metadata: { creationTimestamp?: string } }) => {
  c.metadata.creationTimestamp = iso;
};

test('HTTP-01 with waitInsteadOfSelfCheck waits out the rest of the delay, then is ready without a request', async (t) => {
  const waiting = challenge('c', 'a.test', createdAt('2026-01-01T00:00:00Z'), (c) => (c.spec.solver = { http01: { certroute: { waitInsteadOfSelfCheck: '30s' } } }));
  const early = new Http01Solver(solverDeps(new Date('2026-01-01T00:00:10Z')));
  t.deepEqual(await early.check(waiting), { kind: 'wait', ms: 20_000 });
  const late = new Http01Solver(solverDeps(new Date('2026-01-01T00:00:30Z')));
  t.deepEqual(await late.check(waiting), { kind: 'ready' });
});

test('HTTP-01 that cannot reach Traefik is not ready, with a message that says what to check', async (t) => {
  const solver = new Http01Solver({ ...solverDeps(), config: { ...testConfig, selfCheckWebAddress: 'http://127.0.0.1:1' } });
  const readiness = await solver.check(challenge('c', 'a.test'));
  t.is(readiness.kind, 'notReady');
  t.regex(readiness.kind === 'notReady' ? readiness.message : '', /^self-check GET http:\/\/127\.0\.0\.1:1\/\.well-known\/acme-challenge\/token \(Host: a\.test\) returned connection error .*check the Traefik web entrypoint address/);
});

test('the HTTP-01 responder index serves a Challenge once it is presented and forgets it when it is deleted', (t) => {
  const solver = new Http01Solver(solverDeps());
  const pending = challenge('c', 'a.test', owners.ofOrder);
  solver.onChallenge(pending, 'add');
  t.is(solver.index.lookup('token', 'a.test'), undefined, 'not presented yet');
  const presented = challenge('c', 'a.test', owners.ofOrder, withChallengeState('pending', '', { presented: true }));
  solver.onChallenge(presented, 'update');
  t.is(solver.index.lookup('token', 'a.test'), 'token.thumbprint');
  t.is(solver.index.lookup('token', 'A.TEST:80'), 'token.thumbprint', 'the Host is compared as a host name');
  solver.onChallenge(presented, 'delete');
  t.is(solver.index.lookup('token', 'a.test'), undefined);
});

test('the HTTP-01 solver keeps the responder index fed by the informer, and the registry lists it as such', (t) => {
  const registry = http01Only();
  t.deepEqual(registry.watchers(), [registry.get('http01')]);
});

test('the HTTP-01 responder index never serves a presented Challenge that no Order of certroute\'s owns', (t) => {
  const solver = new Http01Solver(solverDeps());
  solver.onChallenge(challenge('forged', 'a.test', withChallengeState('pending', '', { presented: true })), 'add');
  t.is(solver.index.lookup('token', 'a.test'), undefined);
});
