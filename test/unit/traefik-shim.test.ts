/**
 * The IngressRoute shim's decision: which Certificate an annotated IngressRoute asks for, and
 * which warnings the user sees instead when an annotation or a rule cannot be used.
 */
import test from 'ava';
import type { CertificateSpec, IngressRoute } from '../../src/api/types.ts';
import {
  BadAnnotation, BlockingReasons, CertResolverSet, ConflictingIssuerAnnotations, DuplicateSecretName, Ignored, InvalidHost,
  InvalidRule, InvalidSecretName, NegatedHost, NoHosts, NotAnnotated, splitCsv, UnknownAnnotation, UnknownMatcher,
  TooManyHosts, UnsupportedAnnotation, UnsupportedMatcher, type ShimReason,
} from '../../src/shim/annotations.ts';
import { ingressRouteKind } from '../../src/shim/ingressroute.ts';
import { desiredCertificates, foldWarnings, type DesiredCertificate, type ShimResult } from '../../src/shim/route-kind.ts';

/** The IngressRoute kind names one Secret, so it asks for at most one Certificate. */
function desiredCertificate(route: IngressRoute): Omit<ShimResult, 'certificates'> & { certificate?: DesiredCertificate } {
  const { certificates, blocked: _, ...rest } = desiredCertificates(ingressRouteKind, route);
  return certificates[0] ? { certificate: certificates[0], ...rest } : rest;
}

type Option = (route: IngressRoute) => void;

function ingressRoute(name: string, ...options: Option[]): IngressRoute {
  const route: IngressRoute = {
    apiVersion: 'traefik.io/v1alpha1',
    kind: 'IngressRoute',
    metadata: { name, namespace: 'apps', uid: `uid-${name}` },
    spec: { entryPoints: ['websecure'], routes: [] },
  };
  for (const option of options) option(route);
  return route;
}

const withAnnotations = (annotations: Record<string, string>): Option => (route) => {
  route.metadata.annotations = { ...route.metadata.annotations, ...annotations };
};
const withRoute = (match: string): Option => (route) => {
  route.spec.routes.push({ match, kind: 'Rule', services: [{ name: 'web', port: 80 }] });
};
const withSecretName = (secretName: string): Option => (route) => {
  route.spec.tls = { ...route.spec.tls, secretName };
};
const withCertResolver = (certResolver: string): Option => (route) => {
  route.spec.tls = { ...route.spec.tls, certResolver };
};

const clusterIssuer = withAnnotations({ 'cert-manager.io/cluster-issuer': 'letsencrypt' });
const reasons = (warnings: Array<{ reason: ShimReason }>) => warnings.map((w) => w.reason);

test('an IngressRoute without an issuer annotation is not managed, and nothing is said', (t) => {
  const result = desiredCertificate(ingressRoute('web', withRoute('Host(`a.test`)')));
  t.deepEqual(result, { warnings: [], skip: NotAnnotated });
});

test('certroute.io/ignore: "true" opts an annotated IngressRoute out', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withAnnotations({ 'certroute.io/ignore': 'true' }), withRoute('Host(`a.test`)')));
  t.deepEqual(result, { warnings: [], skip: Ignored });
});

test('certroute.io/ignore: "false" keeps the IngressRoute managed', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withAnnotations({ 'certroute.io/ignore': 'false' }), withRoute('Host(`a.test`)')));
  t.truthy(result.certificate);
});

test('certroute.io/ignore with another value is a bad annotation, and nothing is changed', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withAnnotations({ 'certroute.io/ignore': 'yes' }), withRoute('Host(`a.test`)')));
  t.is(result.certificate, undefined);
  t.is(result.skip, undefined);
  t.deepEqual(reasons(result.warnings), [BadAnnotation]);
});

test('a ClusterIssuer annotation yields a Certificate named after the defaulted Secret, owned by the IngressRoute', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute('Host(`a.test`) && PathPrefix(`/`)')));
  t.deepEqual(result, {
    certificate: {
      name: 'web-tls',
      namespace: 'apps',
      spec: {
        secretName: 'web-tls',
        issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer' },
        dnsNames: ['a.test'],
        usages: ['digital signature', 'key encipherment'],
      },
      ownerReference: { apiVersion: 'traefik.io/v1alpha1', kind: 'IngressRoute', name: 'web', uid: 'uid-web', controller: true, blockOwnerDeletion: true },
    },
    warnings: [],
    secretNameToWrite: 'web-tls',
  });
});

test('an existing spec.tls.secretName names the Certificate and is not rewritten', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withSecretName('shop-cert'), withRoute('Host(`a.test`)')));
  t.is(result.certificate?.name, 'shop-cert');
  t.is(result.certificate?.spec.secretName, 'shop-cert');
  t.is(result.secretNameToWrite, undefined);
});

test('an Issuer annotation refers to a namespaced Issuer', (t) => {
  const result = desiredCertificate(ingressRoute('web', withAnnotations({ 'cert-manager.io/issuer': 'local-ca' }), withRoute('Host(`a.test`)')));
  t.deepEqual(result.certificate?.spec.issuerRef, { name: 'local-ca', kind: 'Issuer' });
});

test('issuer-kind and issuer-group point an Issuer annotation at an external issuer', (t) => {
  const route = ingressRoute('web', withAnnotations({
    'cert-manager.io/issuer': 'pca', 'cert-manager.io/issuer-kind': 'AWSPCAClusterIssuer', 'cert-manager.io/issuer-group': 'awspca.cert-manager.io',
  }), withRoute('Host(`a.test`)'));
  t.deepEqual(desiredCertificate(route).certificate?.spec.issuerRef, { name: 'pca', kind: 'AWSPCAClusterIssuer', group: 'awspca.cert-manager.io' });
});

const conflicts: Array<[string, Record<string, string>]> = [
  ['both issuer annotations at once conflict, and no Certificate is produced', { 'cert-manager.io/issuer': 'a', 'cert-manager.io/cluster-issuer': 'b' }],
  ['a ClusterIssuer annotation with issuer-kind conflicts, as in cert-manager', { 'cert-manager.io/cluster-issuer': 'b', 'cert-manager.io/issuer-kind': 'Foo' }],
  ['a ClusterIssuer annotation with issuer-group conflicts, as in cert-manager', { 'cert-manager.io/cluster-issuer': 'b', 'cert-manager.io/issuer-group': 'foo.example.com' }],
];
for (const [name, annotations] of conflicts) {
  test(name, (t) => {
    const result = desiredCertificate(ingressRoute('web', withAnnotations(annotations), withRoute('Host(`a.test`)')));
    t.is(result.certificate, undefined);
    t.is(result.secretNameToWrite, undefined);
    t.deepEqual(reasons(result.warnings), [ConflictingIssuerAnnotations]);
  });
}

test('an empty issuer annotation is a bad annotation', (t) => {
  const result = desiredCertificate(ingressRoute('web', withAnnotations({ 'cert-manager.io/cluster-issuer': '' }), withRoute('Host(`a.test`)')));
  t.is(result.certificate, undefined);
  t.deepEqual(reasons(result.warnings), [BadAnnotation]);
  t.regex(result.warnings[0]?.message ?? '', /cert-manager\.io\/cluster-issuer: "" is empty; set it to the name of a ClusterIssuer/);
});

test('dnsNames come from every route, lowercased, each once, in order of appearance', (t) => {
  const route = ingressRoute('web', clusterIssuer,
    withRoute('Host(`B.test`) || Host(`a.test`)'),
    withRoute('Host(`a.test`, `c.test`) && PathPrefix(`/api`)'),
    withRoute('Host(`b.TEST`)'));
  t.deepEqual(desiredCertificate(route).certificate?.spec.dnsNames, ['b.test', 'a.test', 'c.test']);
});

test('an IP address in a Host matcher goes into ipAddresses, as in cert-manager', (t) => {
  const spec = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute('Host(`a.test`) || Host(`192.0.2.1`)'))).certificate?.spec;
  t.deepEqual(spec?.dnsNames, ['a.test']);
  t.deepEqual(spec?.ipAddresses, ['192.0.2.1']);
});

test('a HostRegexp beside a Host still yields a Certificate, with a warning that says what to do', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute('Host(`a.test`) || HostRegexp(`^.+\\.a\\.test$`)')));
  t.deepEqual(result.certificate?.spec.dnsNames, ['a.test']);
  t.deepEqual(reasons(result.warnings), [UnsupportedMatcher]);
  t.regex(result.warnings[0]?.message ?? '', /^IngressRoute apps\/web spec\.routes\[0\]\.match: HostRegexp\(`.*`\) cannot be turned into a certificate name; list the names in spec\.tls\.domains/);
});

test('a route with only a HostRegexp has no hosts, and no Certificate is produced', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute('HostRegexp(`.+`)')));
  t.is(result.certificate, undefined);
  t.deepEqual(reasons(result.warnings), [UnsupportedMatcher, NoHosts]);
});

test('a route with no Host at all has no hosts, and no Certificate is produced', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute('PathPrefix(`/`)')));
  t.is(result.certificate, undefined);
  t.deepEqual(reasons(result.warnings), [NoHosts]);
});

test('cert-manager.io/alt-names adds names a rule cannot express', (t) => {
  const route = ingressRoute('web', clusterIssuer, withAnnotations({ 'cert-manager.io/alt-names': 'x.a.test, Y.a.test' }), withRoute('HostRegexp(`^.+\\.a\\.test$`)'));
  const result = desiredCertificate(route);
  t.deepEqual(result.certificate?.spec.dnsNames, ['x.a.test', 'y.a.test']);
  t.deepEqual(reasons(result.warnings), [UnsupportedMatcher]);
});

const withDomains = (...domains: Array<{ main?: string; sans?: string[] }>): Option => (route) => {
  route.spec.tls = { ...route.spec.tls, domains };
};

test('spec.tls.domains names the Certificate, wildcards included, in place of the hosts of the rules', (t) => {
  const route = ingressRoute('web', clusterIssuer, withRoute('Host(`app.a.test`)'), withDomains({ main: 'a.test', sans: ['*.A.test'] }, { main: 'b.test' }));
  const result = desiredCertificate(route);
  t.deepEqual(result.certificate?.spec.dnsNames, ['a.test', '*.a.test', 'b.test']);
  t.deepEqual(result.warnings, []);
});

test('with spec.tls.domains a HostRegexp rule needs no names and gets no warning', (t) => {
  const route = ingressRoute('web', clusterIssuer, withRoute('HostRegexp(`^.+\\.a\\.test$`)'), withDomains({ main: '*.a.test' }));
  const result = desiredCertificate(route);
  t.deepEqual(result.certificate?.spec.dnsNames, ['*.a.test']);
  t.deepEqual(result.warnings, []);
});

test('a spec.tls.domains entry that is not a name is left out with a warning that names the field, and the others stay', (t) => {
  const route = ingressRoute('web', clusterIssuer, withDomains({ main: 'a.test', sans: ['a.*.test', '192.0.2.7'] }, { sans: ['b.test'] }));
  const result = desiredCertificate(route);
  t.deepEqual(result.certificate?.spec.dnsNames, ['a.test', 'b.test']);
  t.deepEqual(result.certificate?.spec.ipAddresses, ['192.0.2.7']);
  t.deepEqual(reasons(result.warnings), [InvalidHost, InvalidHost]);
  t.regex(result.warnings[0]?.message ?? '', /^spec\.tls\.domains\[0\]\.sans\[0\]: "a\.\*\.test" is not added to the certificate: it has a wildcard/);
  t.regex(result.warnings[1]?.message ?? '', /^spec\.tls\.domains\[1\]\.main: "" is not added to the certificate: it is empty/);
});

test('cert-manager.io/alt-names adds to the names of spec.tls.domains', (t) => {
  const route = ingressRoute('web', clusterIssuer, withAnnotations({ 'cert-manager.io/alt-names': 'c.test' }), withDomains({ main: 'a.test' }));
  t.deepEqual(desiredCertificate(route).certificate?.spec.dnsNames, ['a.test', 'c.test']);
});

test('a rule that does not parse blocks the Certificate, so a typo never drops names', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute('Host(`a.test`)'), withRoute('Host(`b.test`')));
  t.is(result.certificate, undefined);
  t.deepEqual(reasons(result.warnings), [InvalidRule]);
  t.regex(result.warnings[0]?.message ?? '', /^IngressRoute apps\/web spec\.routes\[1\]\.match: cannot parse the rule at column 14/);
});

test('a negated Host is not a certificate name, and the user is told', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute('Host(`a.test`) && !Host(`admin.a.test`)')));
  t.deepEqual(result.certificate?.spec.dnsNames, ['a.test']);
  t.deepEqual(reasons(result.warnings), [NegatedHost]);
});

test('a Host that is not a DNS name is left out with a warning', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute('Host(`a.test`) || Host(`a_b.test`)')));
  t.deepEqual(result.certificate?.spec.dnsNames, ['a.test']);
  t.deepEqual(reasons(result.warnings), [InvalidHost]);
});

test('a misspelt matcher is reported but its Host names still count', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute('Host(`a.test`) && PathPrefx(`/`)')));
  t.deepEqual(result.certificate?.spec.dnsNames, ['a.test']);
  t.deepEqual(reasons(result.warnings), [UnknownMatcher]);
});

const goodAnnotations: Array<[string, Record<string, string>, Partial<CertificateSpec>]> = [
  ['common-name sets commonName', { 'cert-manager.io/common-name': 'a.test' }, { commonName: 'a.test' }],
  ['duration is written in Go canonical form, as cert-manager writes it', { 'cert-manager.io/duration': '2160h' }, { duration: '2160h0m0s' }],
  ['duration accepts any Go duration of at least an hour', { 'cert-manager.io/duration': '90m' }, { duration: '1h30m0s' }],
  ['renew-before sets renewBefore', { 'cert-manager.io/renew-before': '720h' }, { renewBefore: '720h0m0s' }],
  ['renew-before-percentage sets renewBeforePercentage', { 'cert-manager.io/renew-before-percentage': '33' }, { renewBeforePercentage: 33 }],
  ['usages replace the default usages', { 'cert-manager.io/usages': 'digital signature, server auth' }, { usages: ['digital signature', 'server auth'] }],
  ['private-key-algorithm sets the key algorithm', { 'cert-manager.io/private-key-algorithm': 'ECDSA' }, { privateKey: { algorithm: 'ECDSA' } }],
  ['private-key-size alone is an RSA size', { 'cert-manager.io/private-key-size': '4096' }, { privateKey: { size: 4096 } }],
  ['private-key-size with ECDSA is a curve size', { 'cert-manager.io/private-key-algorithm': 'ECDSA', 'cert-manager.io/private-key-size': '384' }, { privateKey: { algorithm: 'ECDSA', size: 384 } }],
  ['private-key-encoding sets the key encoding', { 'cert-manager.io/private-key-encoding': 'PKCS8' }, { privateKey: { encoding: 'PKCS8' } }],
  ['private-key-rotation-policy sets the rotation policy', { 'cert-manager.io/private-key-rotation-policy': 'Always' }, { privateKey: { rotationPolicy: 'Always' } }],
  ['revision-history-limit sets revisionHistoryLimit', { 'cert-manager.io/revision-history-limit': '3' }, { revisionHistoryLimit: 3 }],
  ['subject-organizations is CSV, so a quoted value keeps its comma', { 'cert-manager.io/subject-organizations': '"Example, Inc",Other' }, { subject: { organizations: ['Example, Inc', 'Other'] } }],
  ['subject-organizationalunits sets organizationalUnits', { 'cert-manager.io/subject-organizationalunits': 'Web' }, { subject: { organizationalUnits: ['Web'] } }],
  ['subject-countries sets countries', { 'cert-manager.io/subject-countries': 'NL,DE' }, { subject: { countries: ['NL', 'DE'] } }],
  ['secret-template sets labels and annotations on the Secret', { 'cert-manager.io/secret-template': '{"labels":{"team":"web"},"annotations":{"example.com/owner":"web"}}' }, { secretTemplate: { labels: { team: 'web' }, annotations: { 'example.com/owner': 'web' } } }],
  ['ip-sans adds IP addresses', { 'cert-manager.io/ip-sans': '192.0.2.1,2001:db8::1' }, { ipAddresses: ['192.0.2.1', '2001:db8::1'] }],
];
for (const [name, annotations, expected] of goodAnnotations) {
  test(`the annotation ${name}`, (t) => {
    const result = desiredCertificate(ingressRoute('web', clusterIssuer, withAnnotations(annotations), withRoute('Host(`a.test`)')));
    t.deepEqual(result.warnings, []);
    t.like(result.certificate?.spec, expected);
    for (const [field, value] of Object.entries(expected)) {
      t.deepEqual(result.certificate?.spec[field as keyof CertificateSpec], value, field);
    }
  });
}

const badAnnotations: Array<[string, Record<string, string>, string, RegExp]> = [
  ['a duration that is not a Go duration', { 'cert-manager.io/duration': 'soon' }, 'cert-manager.io/duration', /such as 2160h/],
  ['a duration in days, which Go does not know', { 'cert-manager.io/duration': '90d' }, 'cert-manager.io/duration', /such as 2160h/],
  ['a duration shorter than an hour', { 'cert-manager.io/duration': '30m' }, 'cert-manager.io/duration', /at least 1h/],
  ['a renew-before that is not a Go duration', { 'cert-manager.io/renew-before': 'early' }, 'cert-manager.io/renew-before', /such as 720h/],
  ['a renew-before shorter than five minutes', { 'cert-manager.io/renew-before': '1m' }, 'cert-manager.io/renew-before', /at least 5m/],
  ['a renew-before as long as the duration', { 'cert-manager.io/duration': '24h', 'cert-manager.io/renew-before': '24h' }, 'cert-manager.io/renew-before', /shorter renew-before or a longer duration/],
  ['a renew-before as long as the default 90 days', { 'cert-manager.io/renew-before': '2160h' }, 'cert-manager.io/renew-before', /2160h0m0s/],
  ['renew-before and renew-before-percentage together', { 'cert-manager.io/renew-before': '720h', 'cert-manager.io/renew-before-percentage': '33' }, 'cert-manager.io/renew-before-percentage', /keep only one/],
  ['a renew-before-percentage of 0', { 'cert-manager.io/renew-before-percentage': '0' }, 'cert-manager.io/renew-before-percentage', /1 to 99/],
  ['a renew-before-percentage of 100', { 'cert-manager.io/renew-before-percentage': '100' }, 'cert-manager.io/renew-before-percentage', /1 to 99/],
  ['a renew-before-percentage with a percent sign', { 'cert-manager.io/renew-before-percentage': '33%' }, 'cert-manager.io/renew-before-percentage', /without "%"/],
  ['an unknown usage', { 'cert-manager.io/usages': 'digital signature,ping pong' }, 'cert-manager.io/usages', /"server auth"/],
  ['a usage list with an empty item', { 'cert-manager.io/usages': 'server auth,,signing' }, 'cert-manager.io/usages', /single commas/],
  ['an unknown key algorithm', { 'cert-manager.io/private-key-algorithm': 'DSA' }, 'cert-manager.io/private-key-algorithm', /RSA, ECDSA or Ed25519/],
  ['a key algorithm in the wrong case', { 'cert-manager.io/private-key-algorithm': 'ecdsa' }, 'cert-manager.io/private-key-algorithm', /RSA, ECDSA or Ed25519/],
  ['a key size that is not a number', { 'cert-manager.io/private-key-size': 'abc' }, 'cert-manager.io/private-key-size', /2048, 3072 or 4096/],
  ['an RSA key size below 2048', { 'cert-manager.io/private-key-size': '1024' }, 'cert-manager.io/private-key-size', /2048, 3072 or 4096/],
  ['an ECDSA key size that is not a curve', { 'cert-manager.io/private-key-algorithm': 'ECDSA', 'cert-manager.io/private-key-size': '128' }, 'cert-manager.io/private-key-size', /256, 384 or 521/],
  ['a key size for Ed25519', { 'cert-manager.io/private-key-algorithm': 'Ed25519', 'cert-manager.io/private-key-size': '256' }, 'cert-manager.io/private-key-size', /remove it/],
  ['an unknown key encoding', { 'cert-manager.io/private-key-encoding': 'DER' }, 'cert-manager.io/private-key-encoding', /PKCS1 or PKCS8/],
  ['a rotation policy other than Never or Always', { 'cert-manager.io/private-key-rotation-policy': 'Sometimes' }, 'cert-manager.io/private-key-rotation-policy', /Never or Always/],
  ['a revision history limit of 0', { 'cert-manager.io/revision-history-limit': '0' }, 'cert-manager.io/revision-history-limit', /such as 3/],
  ['a revision history limit that is not a number', { 'cert-manager.io/revision-history-limit': 'many' }, 'cert-manager.io/revision-history-limit', /such as 3/],
  ['a common name longer than 64 characters', { 'cert-manager.io/common-name': `${'a'.repeat(60)}.test` }, 'cert-manager.io/common-name', /shorter name/],
  ['an empty common name', { 'cert-manager.io/common-name': '' }, 'cert-manager.io/common-name', /remove the annotation/],
  ['subject organizations that are not CSV', { 'cert-manager.io/subject-organizations': 'Example "Inc"' }, 'cert-manager.io/subject-organizations', /double quotes/],
  ['a secret template that is not JSON', { 'cert-manager.io/secret-template': '{labels: web}' }, 'cert-manager.io/secret-template', /write JSON/],
  ['a secret template with another field', { 'cert-manager.io/secret-template': '{"data":{}}' }, 'cert-manager.io/secret-template', /only "annotations" and "labels"/],
  ['a secret template that sets cert-manager annotations', { 'cert-manager.io/secret-template': '{"annotations":{"cert-manager.io/x":"y"}}' }, 'cert-manager.io/secret-template', /cert-manager owns/],
  ['alt-names with a name that is not a DNS name', { 'cert-manager.io/alt-names': 'a_b.test' }, 'cert-manager.io/alt-names', /DNS names separated by commas/],
  ['ip-sans with a value that is not an IP address', { 'cert-manager.io/ip-sans': '300.1.1.1' }, 'cert-manager.io/ip-sans', /IPv4 or IPv6/],
  ['an issuer-kind that is not a kind', { 'cert-manager.io/issuer': 'x', 'cert-manager.io/issuer-kind': 'my issuer' }, 'cert-manager.io/issuer-kind', /Kind of the external issuer/],
  ['an issuer name that is not an object name', { 'cert-manager.io/cluster-issuer': 'Lets Encrypt' }, 'cert-manager.io/cluster-issuer', /metadata\.name/],
];
for (const [name, annotations, key, fix] of badAnnotations) {
  test(`${name} is a bad annotation that names the value and the fix, and no Certificate is produced`, (t) => {
    const base: Record<string, string> = 'cert-manager.io/issuer' in annotations ? {} : { 'cert-manager.io/cluster-issuer': 'letsencrypt' };
    const a: Record<string, string> = { ...base, ...annotations };
    const result = desiredCertificate(ingressRoute('web', withAnnotations(a), withRoute('Host(`a.test`)')));
    t.is(result.certificate, undefined);
    t.is(result.secretNameToWrite, undefined);
    t.is(result.skip, undefined);
    const warning = result.warnings.find((w) => w.reason === BadAnnotation);
    t.truthy(warning, JSON.stringify(result.warnings));
    t.true(warning?.message.startsWith(`annotation ${key}: ${JSON.stringify(a[key])} `), warning?.message);
    t.regex(warning?.message ?? '', fix);
  });
}

test('email-sans is rejected as unsupported, and no Certificate is produced', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withAnnotations({ 'cert-manager.io/email-sans': 'a@a.test' }), withRoute('Host(`a.test`)')));
  t.is(result.certificate, undefined);
  t.deepEqual(reasons(result.warnings), [UnsupportedAnnotation]);
  t.regex(result.warnings[0]?.message ?? '', /cert-manager\.io\/email-sans is not supported: .*; remove it/);
});

test('a misspelt cert-manager annotation is reported but does not block', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withAnnotations({ 'cert-manager.io/duraton': '2160h' }), withRoute('Host(`a.test`)')));
  t.truthy(result.certificate);
  t.deepEqual(reasons(result.warnings), [UnknownAnnotation]);
});

test('a route that also names a certResolver gets a warning but still a Certificate', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withCertResolver('le'), withRoute('Host(`a.test`)')));
  t.truthy(result.certificate);
  t.deepEqual(reasons(result.warnings), [CertResolverSet]);
  t.is(result.secretNameToWrite, 'web-tls');
});

test('a secretName that is not an object name blocks the Certificate', (t) => {
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withSecretName('Web_TLS'), withRoute('Host(`a.test`)')));
  t.is(result.certificate, undefined);
  t.deepEqual(reasons(result.warnings), [InvalidSecretName]);
});

test('the desired Certificate is deterministic: equal inputs give deep-equal output with no undefined fields', (t) => {
  const make = () => ingressRoute('web', clusterIssuer, withAnnotations({
    'cert-manager.io/duration': '2160h', 'cert-manager.io/private-key-algorithm': 'ECDSA', 'cert-manager.io/subject-countries': 'NL',
  }), withRoute('Host(`b.test`) || Host(`a.test`)'));
  const first = desiredCertificate(make());
  const second = desiredCertificate(make());
  t.deepEqual(first, second);
  t.deepEqual(JSON.parse(JSON.stringify(first)), first);
  t.deepEqual(Object.keys(first.certificate?.spec ?? {}), ['secretName', 'issuerRef', 'dnsNames', 'duration', 'usages', 'subject', 'privateKey']);
});

test('the route given to the shim is not modified', (t) => {
  const route = ingressRoute('web', clusterIssuer, withAnnotations({ 'cert-manager.io/usages': 'server auth' }), withRoute('Host(`A.test`)'));
  const before = structuredClone(route);
  desiredCertificate(route);
  t.deepEqual(route, before);
});

test('blocking reasons are exactly those that stop a Certificate', (t) => {
  t.deepEqual([...BlockingReasons].sort(), [BadAnnotation, ConflictingIssuerAnnotations, DuplicateSecretName, InvalidRule, InvalidSecretName, NoHosts, TooManyHosts, UnsupportedAnnotation].sort());
});

test('splitCsv reads one CSV line as Go encoding/csv does', (t) => {
  t.deepEqual(splitCsv('a,b'), ['a', 'b']);
  t.deepEqual(splitCsv('"10 Downing Street, Westminster",Manchester'), ['10 Downing Street, Westminster', 'Manchester']);
  t.deepEqual(splitCsv('"say ""hi""",x'), ['say "hi"', 'x']);
  t.deepEqual(splitCsv('a,'), ['a', '']);
  t.is(typeof splitCsv('"open'), 'string');
  t.is(typeof splitCsv('a"b'), 'string');
  t.is(typeof splitCsv('"a"b'), 'string');
});

test('900 bad hosts give one Warning per reason, quoting five and counting the rest', (t) => {
  const rule = Array.from({ length: 900 }, (_, i) => `Host(\`bad_${i}\`)`).join('||');
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withRoute(rule), withRoute('Host(`a.test`) || HostRegexp(`.+`)')));
  t.true(result.warnings.filter((w) => w.reason === InvalidHost).length >= 900);
  const folded = foldWarnings(result.warnings);
  t.deepEqual([...folded.keys()].sort(), [InvalidHost, UnsupportedMatcher].sort());
  t.regex(folded.get(InvalidHost) ?? '', /bad_4".*; and 895 more like these$/);
  t.notRegex(folded.get(InvalidHost) ?? '', /bad_5"/);
  t.notRegex(folded.get(UnsupportedMatcher) ?? '', /more like these/);
});

test('routes and alt-names that together name more than 100 hosts block the Certificate', (t) => {
  const routes = Array.from({ length: 60 }, (_, i) => withRoute(`Host(\`r${i}.test\`)`));
  const altNames = Array.from({ length: 41 }, (_, i) => `alt${i}.test`).join(',');
  const result = desiredCertificate(ingressRoute('web', clusterIssuer, withAnnotations({ 'cert-manager.io/alt-names': altNames }), ...routes));
  t.is(result.certificate, undefined);
  t.deepEqual(reasons(result.warnings), [TooManyHosts]);
});
