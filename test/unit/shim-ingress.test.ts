/**
 * The Ingress shim's decision, as cert-manager's ingress-shim makes it: one Certificate per
 * spec.tls entry, named after its Secret, for its hosts, owned by the Ingress; only for the
 * classes Traefik serves; and a Warning that names the entry and the fix for what cannot be used.
 */
import test from 'ava';
import type { Ingress } from '../../src/api/types.ts';
import { BadAnnotation, DuplicateSecretName, InvalidHost, NoTls, NotAnnotated, NotServed, SkippedTlsEntry, type ShimReason } from '../../src/shim/annotations.ts';
import { ingressKind } from '../../src/shim/ingress.ts';
import { desiredCertificates, specToWrite } from '../../src/shim/route-kind.ts';

type Option = (ingress: Ingress) => void;

function ingress(name: string, ...options: Option[]): Ingress {
  const ing: Ingress = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: 'apps', uid: `uid-${name}`, annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt' } },
    spec: { ingressClassName: 'traefik' },
  };
  for (const option of options) option(ing);
  return ing;
}

const withTls = (secretName: string | undefined, ...hosts: string[]): Option => (ing) => {
  ing.spec.tls = [...(ing.spec.tls ?? []), { ...(secretName === undefined ? {} : { secretName }), ...(hosts.length ? { hosts } : {}) }];
};
const withClass = (cls: string | undefined): Option => (ing) => {
  if (cls === undefined) delete ing.spec.ingressClassName;
  else ing.spec.ingressClassName = cls;
};
const withAnnotations = (annotations: Record<string, string>): Option => (ing) => {
  ing.metadata.annotations = { ...ing.metadata.annotations, ...annotations };
};
const withoutIssuer: Option = (ing) => {
  delete ing.metadata.annotations?.['cert-manager.io/cluster-issuer'];
};

const kind = ingressKind({ classes: ['traefik', 'traefik-internal'] });
const decide = (ing: Ingress) => desiredCertificates(kind, ing);
const reasons = (warnings: Array<{ reason: ShimReason }>) => warnings.map((w) => w.reason);

test('each spec.tls entry becomes a Certificate named after its Secret, with its hosts, owned by the Ingress', (t) => {
  const result = decide(ingress('shop', withTls('shop-tls', 'shop.example.com', 'www.shop.example.com'), withTls('api-tls', 'api.example.com')));
  t.deepEqual(result.warnings, []);
  t.deepEqual(result.certificates, [
    {
      name: 'shop-tls', namespace: 'apps',
      spec: { secretName: 'shop-tls', issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer' }, dnsNames: ['shop.example.com', 'www.shop.example.com'], usages: ['digital signature', 'key encipherment'] },
      ownerReference: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: 'shop', uid: 'uid-shop', controller: true, blockOwnerDeletion: true },
    },
    {
      name: 'api-tls', namespace: 'apps',
      spec: { secretName: 'api-tls', issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer' }, dnsNames: ['api.example.com'], usages: ['digital signature', 'key encipherment'] },
      ownerReference: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', name: 'shop', uid: 'uid-shop', controller: true, blockOwnerDeletion: true },
    },
  ]);
  t.is(result.secretNameToWrite, undefined, 'an Ingress is never written to');
});

test('the annotations fill in every Certificate of the Ingress, and alt-names are added to each', (t) => {
  const result = decide(ingress('shop', withTls('a-tls', 'a.example.com'), withTls('b-tls', 'b.example.com'),
    withAnnotations({ 'cert-manager.io/duration': '2160h', 'cert-manager.io/alt-names': 'extra.example.com' })));
  t.deepEqual(result.certificates.map((c) => c.spec.dnsNames), [['a.example.com', 'extra.example.com'], ['b.example.com', 'extra.example.com']]);
  t.deepEqual(result.certificates.map((c) => c.spec.duration), ['2160h0m0s', '2160h0m0s']);
});

test('an Ingress of a class Traefik does not serve is left alone, whatever its annotations say', (t) => {
  const result = decide(ingress('shop', withClass('nginx'), withTls('shop-tls', 'shop.example.com'), withAnnotations({ 'cert-manager.io/duration': 'soon' })));
  t.deepEqual(result, { certificates: [], warnings: [], skip: NotServed });
});

test('the kubernetes.io/ingress.class annotation counts when spec.ingressClassName is not set', (t) => {
  const served = decide(ingress('a', withClass(undefined), withAnnotations({ 'kubernetes.io/ingress.class': 'traefik-internal' }), withTls('a-tls', 'a.example.com')));
  t.is(served.certificates.length, 1);
  const other = decide(ingress('b', withClass(undefined), withAnnotations({ 'kubernetes.io/ingress.class': 'nginx' }), withTls('b-tls', 'b.example.com')));
  t.is(other.skip, NotServed);
});

test('spec.ingressClassName wins over the annotation, as in Traefik', (t) => {
  const result = decide(ingress('a', withClass('nginx'), withAnnotations({ 'kubernetes.io/ingress.class': 'traefik' }), withTls('a-tls', 'a.example.com')));
  t.is(result.skip, NotServed);
});

test('an Ingress with no class at all is considered, as Traefik serves it by default', (t) => {
  const result = decide(ingress('a', withClass(undefined), withTls('a-tls', 'a.example.com')));
  t.is(result.certificates.length, 1);
});

test('an Ingress without an issuer annotation is not managed, and nothing is said', (t) => {
  t.deepEqual(decide(ingress('a', withoutIssuer, withTls('a-tls', 'a.example.com'))), { certificates: [], warnings: [], skip: NotAnnotated });
});

test('an entry without hosts or without a Secret is skipped with a Warning naming it, and the other entries go on', (t) => {
  const result = decide(ingress('shop', withTls('nohosts-tls'), withTls(undefined, 'nosecret.example.com'), withTls('good-tls', 'good.example.com')));
  t.deepEqual(result.certificates.map((c) => c.name), ['good-tls']);
  t.deepEqual(reasons(result.warnings), [SkippedTlsEntry, SkippedTlsEntry]);
  t.regex(result.warnings[0]?.message ?? '', /^spec\.tls\[0\] \(secretName nohosts-tls\) lists no hosts, so it is skipped; list the names/);
  t.regex(result.warnings[1]?.message ?? '', /^spec\.tls\[1\] names no secretName, so it is skipped; set secretName/);
  t.is(result.blocked, undefined);
});

test('two entries naming one Secret block the Ingress, as in cert-manager, and the message names both', (t) => {
  const result = decide(ingress('shop', withTls('shared-tls', 'a.example.com'), withTls('shared-tls', 'b.example.com')));
  t.deepEqual(result.certificates, []);
  t.true(result.blocked);
  t.deepEqual(reasons(result.warnings), [DuplicateSecretName]);
  t.regex(result.warnings[0]?.message ?? '', /spec\.tls\[0\]\.secretName "shared-tls" is also used in spec\.tls\[1\]/);
});

test('an annotated Ingress without spec.tls is told to add it', (t) => {
  const result = decide(ingress('shop'));
  t.deepEqual(reasons(result.warnings), [NoTls]);
  t.deepEqual(result.certificates, []);
  t.is(result.blocked, undefined, 'not blocked: Certificates it made for entries now gone are removed');
});

test('a host that is not a DNS name is left out with a warning that names the entry', (t) => {
  const result = decide(ingress('shop', withTls('shop-tls', 'shop.example.com', 'bad_host.example.com')));
  t.deepEqual(result.certificates[0]?.spec.dnsNames, ['shop.example.com']);
  t.deepEqual(reasons(result.warnings), [InvalidHost]);
  t.regex(result.warnings[0]?.message ?? '', /^spec\.tls\[0\]\.hosts: "bad_host\.example\.com"/);
});

test('a bad annotation blocks every Certificate of the Ingress', (t) => {
  const result = decide(ingress('shop', withTls('shop-tls', 'shop.example.com'), withAnnotations({ 'cert-manager.io/renew-before': 'tomorrow' })));
  t.deepEqual(result.certificates, []);
  t.deepEqual(reasons(result.warnings), [BadAnnotation]);
});

test('the Secret names the Ingress still refers to are those of its entries', (t) => {
  t.deepEqual(kind.secretNames(ingress('shop', withTls('a-tls', 'a.example.com'), withTls(undefined, 'b.example.com'), withTls('c-tls'))), ['a-tls', 'c-tls']);
});

const withDefaultIssuer = ingressKind({ classes: ['traefik'], defaults: { autoAnnotations: ['kubernetes.io/tls-acme'], issuer: { name: 'letsencrypt-production', kind: 'ClusterIssuer' } } });

test('kubernetes.io/tls-acme: "true" asks for Certificates from the default issuer, as cert-manager\'s ingress-shim does', (t) => {
  const result = desiredCertificates(withDefaultIssuer, ingress('shop', withoutIssuer, withAnnotations({ 'kubernetes.io/tls-acme': 'true' }), withTls('shop-tls', 'shop.example.com')));
  t.deepEqual(result.certificates.map((c) => c.spec.issuerRef), [{ name: 'letsencrypt-production', kind: 'ClusterIssuer' }]);
  t.deepEqual(result.warnings, []);
});

test('an issuer annotation beside kubernetes.io/tls-acme wins over the default issuer', (t) => {
  const result = desiredCertificates(withDefaultIssuer, ingress('shop', withAnnotations({ 'kubernetes.io/tls-acme': 'true' }), withTls('shop-tls', 'shop.example.com')));
  t.deepEqual(result.certificates[0]?.spec.issuerRef, { name: 'letsencrypt', kind: 'ClusterIssuer' });
});

test('kubernetes.io/tls-acme: "false", or any value Go does not read as true, asks for nothing', (t) => {
  for (const value of ['false', 'yes', '']) {
    const result = desiredCertificates(withDefaultIssuer, ingress('shop', withoutIssuer, withAnnotations({ 'kubernetes.io/tls-acme': value }), withTls('shop-tls', 'shop.example.com')));
    t.is(result.skip, NotAnnotated, value);
  }
});

test('kubernetes.io/tls-acme without a default issuer is told how to name one, and nothing is made', (t) => {
  const result = decide(ingress('shop', withoutIssuer, withAnnotations({ 'kubernetes.io/tls-acme': 'True' }), withTls('shop-tls', 'shop.example.com')));
  t.deepEqual(result.certificates, []);
  t.deepEqual(reasons(result.warnings), [BadAnnotation]);
  t.regex(result.warnings[0]?.message ?? '', /kubernetes\.io\/tls-acme asks for a certificate from the default issuer, and certroute has none; .*--default-issuer-name/);
});

test('a Certificate cert-manager\'s shim made (issuerRef with group cert-manager.io) is taken over with no write, and a real change is written', (t) => {
  const [want] = decide(ingress('shop', withTls('shop-tls', 'shop.example.com'))).certificates;
  if (!want) return t.fail('no Certificate');
  const byCertManager = { ...want.spec, issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer', group: 'cert-manager.io' } };
  t.is(specToWrite(byCertManager, want.spec), undefined);
  const otherIssuer = { ...byCertManager, issuerRef: { name: 'staging', kind: 'ClusterIssuer', group: 'cert-manager.io' } };
  t.deepEqual(specToWrite(otherIssuer, want.spec), want.spec);
  const fewerNames = { ...byCertManager, dnsNames: [] };
  t.deepEqual(specToWrite(fewerNames, want.spec), { ...want.spec, issuerRef: byCertManager.issuerRef }, 'the issuer reference keeps the form it was written in');
});
