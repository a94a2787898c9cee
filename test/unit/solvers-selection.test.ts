/**
 * Solver selection against the examples in cert-manager's documentation (the ACME issuer page and
 * the API reference of CertificateDNSNameSelector), so that an existing ClusterIssuer picks the
 * same solver for each name under certroute as under cert-manager.
 */
import test from 'ava';
import type { AcmeAuthorization, AcmeSolver } from '../../src/api/types.ts';
import { chooseSolver } from '../../src/solvers/select.ts';
import { SolverRegistry } from '../../src/solvers/registry.ts';
import { issuer, testConfig } from '../helpers/builders.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import type { Logger } from '../../src/log.ts';
import type { OwnerLookup } from '../../src/responder/challenge-owner.ts';

// Selection reads no Kubernetes object: the registry's dependencies are never touched here.
const registry = new SolverRegistry({ client: {} as KubeClient, logger: {} as Logger, clock: () => new Date(0), config: testConfig, owners: {} as OwnerLookup });

const named = (solver: AcmeSolver, name: string): AcmeSolver => ({ ...solver, http01: solver.http01 ? { ingress: { name } } : undefined, dns01: solver.dns01 ? { cloudflare: { email: name } } : undefined });
const nameOf = (s: AcmeSolver | undefined) => s?.http01?.ingress?.name ?? s?.dns01?.cloudflare?.email;

function authz(name: string): AcmeAuthorization {
  const wildcard = name.startsWith('*.');
  const identifier = name.replace(/^\*\./, '');
  return { url: `https://acme.test/authz/${name}`, identifier, wildcard, challenges: ['http-01', 'dns-01'].map((type) => ({ type, url: `https://acme.test/chall/${type}`, token: 't' })) };
}

function pick(solvers: AcmeSolver[], name: string, labels?: Record<string, string>): string | undefined {
  const le = issuer('le', (i) => (i.spec = { acme: { server: 'https://acme.test/dir', privateKeySecretRef: { name: 'k' }, solvers } }));
  return nameOf(chooseSolver(registry, le, authz(name), labels)?.config);
}

// "Adding multiple solver types": HTTP-01 by default, DNS-01 (Cloudflare) for the zone example.com.
const multiple = [
  named({ http01: { ingress: {} } }, 'http01 default'),
  named({ selector: { dnsZones: ['example.com'] }, dns01: {} }, 'cloudflare for example.com'),
];

test('the documented pair of solvers: names in example.com, the wildcard too, go to DNS-01; others to HTTP-01', (t) => {
  t.is(pick(multiple, 'www.example.com'), 'cloudflare for example.com');
  t.is(pick(multiple, 'example.com'), 'cloudflare for example.com');
  t.is(pick(multiple, '*.example.com'), 'cloudflare for example.com');
  t.is(pick(multiple, 'www.example.org'), 'http01 default');
});

test('a wildcard never goes to the HTTP-01 default, even when nothing else matches', (t) => {
  t.is(pick(multiple, '*.example.org'), undefined);
});

test('"a solver specifying sys.example.com will be selected over one specifying example.com for the domain www.sys.example.com"', (t) => {
  const zones = [named({ selector: { dnsZones: ['example.com'] }, dns01: {} }, 'example.com'), named({ selector: { dnsZones: ['sys.example.com'] }, dns01: {} }, 'sys.example.com')];
  t.is(pick(zones, 'www.sys.example.com'), 'sys.example.com');
  t.is(pick([...zones].reverse(), 'www.sys.example.com'), 'sys.example.com');
  t.is(pick(zones, 'www.example.com'), 'example.com');
});

test('"a dnsNames selector will take precedence over a dnsZones selector"', (t) => {
  const solvers = [named({ selector: { dnsZones: ['example.com'] }, dns01: {} }, 'zone'), named({ selector: { dnsNames: ['www.example.com'] }, http01: { ingress: {} } }, 'name')];
  t.is(pick(solvers, 'www.example.com'), 'name');
  t.is(pick(solvers, 'api.example.com'), 'zone');
});

test('a wildcard matches a dnsNames selector only when it lists the wildcard itself, as cert-manager matches "*.example.com"', (t) => {
  const solvers = [named({ selector: { dnsNames: ['example.com'] }, dns01: {} }, 'apex only'), named({ selector: { dnsNames: ['*.example.com'] }, dns01: {} }, 'wildcard')];
  t.is(pick(solvers, '*.example.com'), 'wildcard');
  t.is(pick(solvers, 'example.com'), 'apex only');
});

test('"if multiple solvers match with the same dnsNames value, the solver with the most matching labels in matchLabels will be selected"', (t) => {
  const solvers = [
    named({ selector: { dnsNames: ['www.example.com'], matchLabels: { team: 'edge' } }, dns01: {} }, 'one label'),
    named({ selector: { dnsNames: ['www.example.com'], matchLabels: { team: 'edge', tier: 'prod' } }, dns01: {} }, 'two labels'),
  ];
  t.is(pick(solvers, 'www.example.com', { team: 'edge', tier: 'prod' }), 'two labels');
  t.is(pick(solvers, 'www.example.com', { team: 'edge' }), 'one label', 'a selector whose labels the Certificate lacks does not match');
});

test('"if neither has more matches, the solver defined earlier in the list will be selected"', (t) => {
  const solvers = [named({ selector: { dnsZones: ['example.com'] }, dns01: {} }, 'first'), named({ selector: { dnsZones: ['example.com'] }, dns01: {} }, 'second')];
  t.is(pick(solvers, 'www.example.com'), 'first');
});

test('a selector with only matchLabels beats the default solver for the Certificates it labels, and a zone beats it', (t) => {
  const solvers = [
    named({ http01: { ingress: {} } }, 'default'),
    named({ selector: { matchLabels: { 'use-cloudflare-solver': 'true' } }, dns01: {} }, 'labelled'),
    named({ selector: { dnsZones: ['example.com'] }, dns01: {} }, 'zone'),
  ];
  t.is(pick(solvers, 'www.example.org', { 'use-cloudflare-solver': 'true' }), 'labelled');
  t.is(pick(solvers, 'www.example.org'), 'default');
  t.is(pick(solvers, 'www.example.com', { 'use-cloudflare-solver': 'true' }), 'zone');
});

test('a certroute.tlsAlpn01 solver answers the TLS-ALPN-01 challenge the CA offers, and only where the CA offers it', (t) => {
  const le = issuer('le', (i) => (i.spec = { acme: { server: 'https://acme.test/dir', privateKeySecretRef: { name: 'k' }, solvers: [{ certroute: { tlsAlpn01: {} } }] } }));
  const offering = (types: string[]): AcmeAuthorization => ({ url: 'https://acme.test/authz/a', identifier: 'a.example.com', wildcard: false, challenges: types.map((type) => ({ type, url: `https://acme.test/chall/${type}`, token: 't' })) });
  const chosen = chooseSolver(registry, le, offering(['http-01', 'tls-alpn-01']));
  t.is(chosen?.solver.specType, 'TLS-ALPN-01');
  t.is(chosen?.offer.type, 'tls-alpn-01');
  t.is(chooseSolver(registry, le, offering(['http-01', 'dns-01'])), undefined);
});
