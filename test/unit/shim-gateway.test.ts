/**
 * The Gateway shim's decision, as cert-manager's gateway-shim makes it (one Certificate per
 * Secret of the HTTPS and TLS listeners, for their hostnames), and the parents of the one
 * challenge HTTPRoute: the HTTP listeners of the annotated Gateways Traefik serves.
 */
import test from 'ava';
import type { Gateway, GatewayListener } from '../../src/api/types.ts';
import { NoTls, NotServed, SkippedTlsEntry, type ShimReason } from '../../src/shim/annotations.ts';
import { gatewayKind } from '../../src/shim/gateway.ts';
import {
  challengeParents, ChallengeRouteNotAdmitted, CHALLENGE_PATH_PREFIX, desiredChallengeHTTPRoute, MAX_PARENT_REFS, TooManyChallengeParents,
} from '../../src/shim/gateway-challenge-route.ts';
import { desiredCertificates } from '../../src/shim/route-kind.ts';

function gateway(name: string, listeners: GatewayListener[], opts: { cls?: string; annotated?: boolean; namespace?: string } = {}): Gateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: {
      name, namespace: opts.namespace ?? 'apps', uid: `uid-${name}`,
      annotations: opts.annotated === false ? {} : { 'cert-manager.io/issuer': 'local-ca' },
    },
    spec: { gatewayClassName: opts.cls ?? 'traefik', listeners },
  };
}

const https = (name: string, hostname: string | undefined, secret: string, extra: { namespace?: string; kind?: string } = {}): GatewayListener => ({
  name, port: 443, protocol: 'HTTPS', ...(hostname ? { hostname } : {}),
  tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', group: '', name: secret, ...extra }] },
});
const http = (name: string, from?: 'All' | 'Same'): GatewayListener => ({ name, port: 80, protocol: 'HTTP', ...(from ? { allowedRoutes: { namespaces: { from } } } : {}) });

const kind = gatewayKind({ classes: ['traefik'] });
const decide = (g: Gateway) => desiredCertificates(kind, g);
const reasons = (warnings: Array<{ reason: ShimReason }>) => warnings.map((w) => w.reason);

test('each HTTPS listener Secret becomes a Certificate for the listener hostname, owned by the Gateway', (t) => {
  const result = decide(gateway('edge', [http('web'), https('shop', 'shop.example.com', 'shop-tls'), https('api', 'api.example.com', 'api-tls')]));
  t.deepEqual(result.warnings, []);
  t.deepEqual(result.certificates.map((c) => [c.name, c.spec.dnsNames]), [['shop-tls', ['shop.example.com']], ['api-tls', ['api.example.com']]]);
  t.deepEqual(result.certificates[0]?.spec.issuerRef, { name: 'local-ca', kind: 'Issuer' });
  t.deepEqual(result.certificates[0]?.ownerReference, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'edge', uid: 'uid-edge', controller: true, blockOwnerDeletion: true });
});

test('listeners that share a Secret share its Certificate, with every hostname', (t) => {
  const result = decide(gateway('edge', [https('a', 'a.example.com', 'shared-tls'), https('b', 'b.example.com', 'shared-tls')]));
  t.deepEqual(result.certificates.map((c) => [c.name, c.spec.dnsNames]), [['shared-tls', ['a.example.com', 'b.example.com']]]);
});

test('a Passthrough TLS listener is not for certificates, and an HTTP-only Gateway is told it has none', (t) => {
  const passthrough: GatewayListener = { name: 'pt', port: 443, protocol: 'TLS', hostname: 'pt.example.com', tls: { mode: 'Passthrough' } };
  const result = decide(gateway('edge', [http('web'), passthrough]));
  t.deepEqual(result.certificates, []);
  t.deepEqual(reasons(result.warnings), [NoTls]);
});

test('a listener without a hostname, or naming a Secret elsewhere or not a Secret, is skipped with a Warning, and the others go on', (t) => {
  const result = decide(gateway('edge', [
    https('nohost', undefined, 'a-tls'),
    https('elsewhere', 'b.example.com', 'b-tls', { namespace: 'other' }),
    https('configmap', 'c.example.com', 'c-tls', { kind: 'ConfigMap' }),
    https('good', 'd.example.com', 'd-tls'),
  ]));
  t.deepEqual(result.certificates.map((c) => c.name), ['d-tls']);
  t.deepEqual(reasons(result.warnings), [SkippedTlsEntry, SkippedTlsEntry, SkippedTlsEntry]);
  t.regex(result.warnings[0]?.message ?? '', /^spec\.listeners\[0\] \("nohost"\) is skipped: it has no hostname/);
  t.regex(result.warnings[1]?.message ?? '', /name a Secret in namespace apps/);
  t.regex(result.warnings[2]?.message ?? '', /kind "ConfigMap"; only a Secret/);
});

test('a Gateway of a class Traefik does not serve is left alone', (t) => {
  t.deepEqual(decide(gateway('edge', [https('a', 'a.example.com', 'a-tls')], { cls: 'istio' })), { certificates: [], warnings: [], skip: NotServed });
});

test('the challenge route attaches to the HTTP listeners of the annotated Traefik Gateways only, by section name', (t) => {
  const parents = challengeParents([
    gateway('b-edge', [http('web', 'All'), https('s', 's.example.com', 's-tls')]),
    gateway('a-edge', [http('web', 'All'), http('alt', 'All')]),
    gateway('plain', [http('web', 'All')], { annotated: false }),
    gateway('istio', [http('web', 'All')], { cls: 'istio' }),
  ], kind, 'certroute');
  t.deepEqual(parents.parentRefs.map((p) => `${p.namespace}/${p.name}/${p.sectionName}`), ['apps/a-edge/web', 'apps/a-edge/alt', 'apps/b-edge/web']);
  t.deepEqual(parents.problems, []);
});

test('a listener that admits routes from its own namespace only is told how to let the challenge route in', (t) => {
  const same = gateway('edge', [http('web')]);
  const parents = challengeParents([same], kind, 'certroute');
  t.deepEqual(parents.parentRefs, []);
  t.is(parents.problems[0]?.reason, ChallengeRouteNotAdmitted);
  t.regex(parents.problems[0]?.message ?? '', /allowedRoutes\.namespaces\.from: All/);
  const inOwnNamespace = challengeParents([gateway('edge', [http('web')], { namespace: 'certroute' })], kind, 'certroute');
  t.is(inOwnNamespace.parentRefs.length, 1, 'a Gateway in certroute\'s namespace admits it with the default');
});

test('past 32 HTTP listeners the challenge route cannot attach, and the Gateway is told', (t) => {
  const many = gateway('edge', Array.from({ length: MAX_PARENT_REFS + 1 }, (_, i) => http(`web${i}`, 'All')));
  const parents = challengeParents([many], kind, 'certroute');
  t.is(parents.parentRefs.length, MAX_PARENT_REFS);
  t.deepEqual(parents.problems.map((p) => p.reason), [TooManyChallengeParents]);
});

test('the challenge HTTPRoute sends the challenge path prefix to the responder Service', (t) => {
  const route = desiredChallengeHTTPRoute({ namespace: 'certroute', serviceName: 'certroute', servicePort: 8089, enabled: true }, []);
  t.deepEqual(route.spec.rules, [{
    matches: [{ path: { type: 'PathPrefix', value: CHALLENGE_PATH_PREFIX } }],
    backendRefs: [{ group: '', kind: 'Service', name: 'certroute', port: 8089, weight: 1 }],
  }]);
  t.is(CHALLENGE_PATH_PREFIX, '/.well-known/acme-challenge');
});
