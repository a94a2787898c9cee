/**
 * The issuing path's pure builders: the CertificateRequest for a revision, whether an existing
 * request still fits the spec, and the Secret exactly as cert-manager writes it — which is never
 * written when the chain does not match its key or has already expired (docs/ARCHITECTURE.md, decision 7).
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import type { Certificate, CertificateRequest } from '../../src/api/types.ts';
import { buildCertificateRequest, buildSecret, requestMatchesSpec } from '../../src/controller/issuing.ts';
import { parseCsr } from '../../src/pki/csr.ts';
import { generatePrivateKey, publicKeyFingerprint } from '../../src/pki/keys.ts';
import { x509 } from '../../src/pki/x509.ts';
import {
  certificate, DAY, HOUR, selfSigned, withCommonName, withDnsNames, withIssuer, withLabels, withSpec, type Option,
} from '../helpers/builders.ts';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

// One key for the whole file: RSA/ECDSA generation is the slow part.
const keyPem = generatePrivateKey({ algorithm: 'ECDSA' });

async function requestFor(cert: Certificate, revision = 1, key?: string): Promise<CertificateRequest> {
  return buildCertificateRequest(cert, `${cert.metadata.name}-${revision}`, revision, `${cert.metadata.name}-next`, key ?? (await keyPem));
}

// ── buildCertificateRequest ─────────────────────────────────────────────────

test('the request carries cert-manager’s annotations: certificate name, revision and next-key Secret', async (t) => {
  const cr = await buildCertificateRequest(certificate('web'), 'web-3', 3, 'web-abcde', await keyPem);
  t.deepEqual(cr.metadata.annotations, {
    'cert-manager.io/certificate-name': 'web',
    'cert-manager.io/certificate-revision': '3',
    'cert-manager.io/private-key-secret-name': 'web-abcde',
  });
  t.is(cr.metadata.name, 'web-3');
  t.is(cr.metadata.namespace, 'apps');
});

test('the request is controlled by its Certificate, so it goes when the Certificate goes', async (t) => {
  const cr = await requestFor(certificate('web'));
  t.deepEqual(cr.metadata.ownerReferences, [
    { apiVersion: 'cert-manager.io/v1', kind: 'Certificate', name: 'web', uid: 'uid-web', controller: true, blockOwnerDeletion: true },
  ]);
});

test('the request copies the Certificate’s labels, and changing them later does not touch the Certificate', async (t) => {
  const cert = certificate('web', withLabels<Certificate>({ team: 'edge' }));
  const cr = await requestFor(cert);
  t.deepEqual(cr.metadata.labels, { team: 'edge' });
  (cr.metadata.labels ?? {}).team = 'other';
  t.is(cert.metadata.labels?.team, 'edge');
});

test('the request’s CSR asks for the spec’s names, with the next private key', async (t) => {
  const cert = certificate('web', withCommonName('a.test'), withDnsNames('a.test', 'b.test'), withSpec({ ipAddresses: ['10.0.0.1'], uris: ['spiffe://apps/web'] }));
  const cr = await requestFor(cert);
  const csr = parseCsr(unb64(cr.spec.request));
  t.is(csr.commonName, 'a.test');
  t.deepEqual(csr.dnsNames, ['a.test', 'b.test']);
  t.deepEqual(csr.ipAddresses, ['10.0.0.1']);
  t.deepEqual(csr.uris, ['spiffe://apps/web']);
  t.is(csr.publicKeyFingerprint, publicKeyFingerprint(await keyPem));
  t.true(await new x509.Pkcs10CertificateRequest(unb64(cr.spec.request)).verify(), 'the CSR is signed by that key, as @peculiar/x509 checks it');
});

test('the request’s issuerRef is spelled out with cert-manager’s defaults', async (t) => {
  const table: Array<{ ref: Option<Certificate>; want: { name: string; kind: string; group: string } }> = [
    { ref: withIssuer('ca'), want: { name: 'ca', kind: 'Issuer', group: 'cert-manager.io' } },
    { ref: withIssuer('le', 'ClusterIssuer'), want: { name: 'le', kind: 'ClusterIssuer', group: 'cert-manager.io' } },
    { ref: withIssuer('x', 'AWSPCAIssuer', 'awspca.cert-manager.io'), want: { name: 'x', kind: 'AWSPCAIssuer', group: 'awspca.cert-manager.io' } },
  ];
  for (const row of table) t.deepEqual((await requestFor(certificate('web', row.ref))).spec.issuerRef, row.want);
});

test('duration, usages and isCA reach the request only when the spec sets them', async (t) => {
  const plain = await requestFor(certificate('web'));
  t.deepEqual(Object.keys(plain.spec).sort(), ['issuerRef', 'request']);
  const full = await requestFor(certificate('web', withSpec({ duration: '720h', usages: ['server auth', 'digital signature'], isCA: true })));
  t.is(full.spec.duration, '720h');
  t.deepEqual(full.spec.usages, ['server auth', 'digital signature']);
  t.true(full.spec.isCA);
});

// ── requestMatchesSpec ──────────────────────────────────────────────────────

test('a request built for a spec matches that spec and key', async (t) => {
  const cert = certificate('web', withCommonName('a.test'), withDnsNames('a.test', 'b.test'), withSpec({ duration: '720h', ipAddresses: ['10.0.0.1'] }));
  t.true(requestMatchesSpec(await requestFor(cert), cert, await keyPem));
});

test('a request no longer matches when what the spec asks for changed', async (t) => {
  const base = certificate('web', withCommonName('a.test'), withDnsNames('a.test'), withSpec({ duration: '720h' }));
  const cr = await requestFor(base);
  const changed = (option: Option<Certificate>): Certificate => {
    const c = structuredClone(base);
    option(c);
    return c;
  };
  const table: Array<{ name: string; cert: Certificate; matches: boolean }> = [
    { name: 'nothing', cert: base, matches: true },
    { name: 'dnsNames in another order', cert: changed(withDnsNames('a.test')), matches: true },
    { name: 'a dnsName added', cert: changed(withDnsNames('a.test', 'b.test')), matches: false },
    { name: 'the commonName', cert: changed(withCommonName('b.test')), matches: false },
    { name: 'the commonName removed', cert: changed((c) => delete c.spec.commonName), matches: false },
    { name: 'an ipAddress added', cert: changed(withSpec({ ipAddresses: ['10.0.0.1'] })), matches: false },
    { name: 'a uri added', cert: changed(withSpec({ uris: ['spiffe://x'] })), matches: false },
    { name: 'the issuer name', cert: changed(withIssuer('other', 'ClusterIssuer')), matches: false },
    { name: 'the issuer kind', cert: changed(withIssuer('letsencrypt', 'Issuer')), matches: false },
    { name: 'the duration', cert: changed(withSpec({ duration: '2160h' })), matches: false },
    { name: 'the same duration spelled as Go prints it', cert: changed(withSpec({ duration: '720h0m0s' })), matches: true },
    { name: 'the same duration in minutes', cert: changed(withSpec({ duration: '43200m' })), matches: true },
    { name: 'the duration removed, so the 90-day default', cert: changed((c) => delete c.spec.duration), matches: false },
  ];
  for (const row of table) t.is(requestMatchesSpec(cr, row.cert, await keyPem), row.matches, row.name);
});

test('a request no longer matches when usages, isCA or the subject changed, as the trigger policy (RequestChanged) also decides', async (t) => {
  // Otherwise a request still in flight is finished with the old usages, and the
  // trigger policy at once asks for another issuance: one wasted certificate.
  const base = certificate('web');
  const cr = await requestFor(base);
  const table: Array<{ name: string; spec: Partial<Certificate['spec']> }> = [
    { name: 'usages', spec: { usages: ['client auth'] } },
    { name: 'isCA', spec: { isCA: true } },
    { name: 'subject.organizations', spec: { subject: { organizations: ['Example'] } } },
    { name: 'subject.countries', spec: { subject: { countries: ['DE'] } } },
  ];
  const stillMatching = [];
  for (const row of table) if (requestMatchesSpec(cr, certificate('web', withSpec(row.spec)), await keyPem)) stillMatching.push(row.name);
  t.deepEqual(stillMatching, [], 'these changes must make the in-flight request stale');
});

test('a request for another key does not match: the next key was replaced', async (t) => {
  const cert = certificate('web');
  const cr = await requestFor(cert);
  t.false(requestMatchesSpec(cr, cert, await generatePrivateKey({ algorithm: 'ECDSA' })));
});

test('a request whose spec.request is not a CSR does not match, and does not throw', async (t) => {
  const cert = certificate('web');
  const cr = await requestFor(cert);
  for (const request of ['', b64('not a csr'), 'bm90IGJhc2U2NA==', '%%%']) {
    t.false(requestMatchesSpec({ ...cr, spec: { ...cr.spec, request } }, cert, await keyPem), JSON.stringify(request));
  }
});

// ── buildSecret ─────────────────────────────────────────────────────────────

const now = new Date();

test('the Secret is a kubernetes.io/tls Secret named by the spec, holding chain, key and CA', async (t) => {
  const cert = certificate('web', withDnsNames('a.test'));
  const issued = await selfSigned({ dnsNames: ['a.test'] });
  const built = buildSecret(cert, issued.certificatePem, issued.keyPem, issued.certificatePem, now);
  if ('error' in built) return t.fail(built.error);
  const { secret } = built;
  t.is(secret.type, 'kubernetes.io/tls');
  t.is(secret.metadata.name, 'web-tls');
  t.is(secret.metadata.namespace, 'apps');
  t.is(unb64(secret.data?.['tls.crt']), issued.certificatePem);
  t.is(unb64(secret.data?.['tls.key']), issued.keyPem);
  t.is(unb64(secret.data?.['ca.crt']), issued.certificatePem);
  t.true(new X509Certificate(unb64(secret.data?.['tls.crt'])).checkHost('a.test') === 'a.test');
});

test('the Secret carries the label that lets certroute’s informer see it: controller.cert-manager.io/fao: "true"', async (t) => {
  const issued = await selfSigned();
  const built = buildSecret(certificate('web'), issued.certificatePem, issued.keyPem, '', now);
  if ('error' in built) return t.fail(built.error);
  t.is(built.secret.metadata.labels?.['controller.cert-manager.io/fao'], 'true');
});

test('the Secret carries cert-manager’s annotations, read from the issued leaf', async (t) => {
  const cert = certificate('web', withIssuer('letsencrypt', 'ClusterIssuer'));
  const issued = await selfSigned({ commonName: 'a.test', dnsNames: ['a.test', 'b.test'], ipAddresses: ['10.0.0.1', '::1'] });
  const built = buildSecret(cert, issued.certificatePem, issued.keyPem, '', now);
  if ('error' in built) return t.fail(built.error);
  t.deepEqual(built.secret.metadata.annotations, {
    'cert-manager.io/certificate-name': 'web',
    'cert-manager.io/issuer-name': 'letsencrypt',
    'cert-manager.io/issuer-kind': 'ClusterIssuer',
    'cert-manager.io/issuer-group': 'cert-manager.io',
    'cert-manager.io/common-name': 'a.test',
    'cert-manager.io/alt-names': 'a.test,b.test',
    'cert-manager.io/ip-sans': '10.0.0.1,::1',
    'cert-manager.io/uri-sans': '',
  });
  t.deepEqual(built.leaf.dnsNames, ['a.test', 'b.test']);
});

test('the issuer annotations default the kind to Issuer and the group to cert-manager.io', async (t) => {
  const issued = await selfSigned();
  const built = buildSecret(certificate('web', withIssuer('ca')), issued.certificatePem, issued.keyPem, '', now);
  if ('error' in built) return t.fail(built.error);
  t.is(built.secret.metadata.annotations?.['cert-manager.io/issuer-kind'], 'Issuer');
  t.is(built.secret.metadata.annotations?.['cert-manager.io/issuer-group'], 'cert-manager.io');
});

test('ca.crt is left out when the issuer gave no CA', async (t) => {
  const issued = await selfSigned();
  const built = buildSecret(certificate('web'), issued.certificatePem, issued.keyPem, '', now);
  if ('error' in built) return t.fail(built.error);
  t.deepEqual(Object.keys(built.secret.data ?? {}).sort(), ['tls.crt', 'tls.key']);
});

test('secretTemplate labels and annotations are added, but cannot override cert-manager’s own', async (t) => {
  const cert = certificate('web', withSpec({
    secretTemplate: {
      labels: { team: 'edge', 'controller.cert-manager.io/fao': 'false' },
      annotations: { 'reflector/allowed': 'true', 'cert-manager.io/certificate-name': 'spoofed' },
    },
  }));
  const issued = await selfSigned();
  const built = buildSecret(cert, issued.certificatePem, issued.keyPem, '', now);
  if ('error' in built) return t.fail(built.error);
  t.is(built.secret.metadata.labels?.team, 'edge');
  t.is(built.secret.metadata.labels?.['controller.cert-manager.io/fao'], 'true');
  t.is(built.secret.metadata.annotations?.['reflector/allowed'], 'true');
  t.is(built.secret.metadata.annotations?.['cert-manager.io/certificate-name'], 'web');
});

test('a chain that does not match its private key is refused, so Traefik keeps serving the old one', async (t) => {
  const issued = await selfSigned();
  const otherKey = await generatePrivateKey({ algorithm: 'ECDSA' });
  const built = buildSecret(certificate('web'), issued.certificatePem, otherKey, '', now);
  t.true('error' in built);
  if ('error' in built) t.regex(built.error, /does not match the private key/);
});

test('an already expired chain is refused', async (t) => {
  const issued = await selfSigned({ notBefore: new Date(now.getTime() - 10 * DAY), durationMs: DAY });
  const built = buildSecret(certificate('web'), issued.certificatePem, issued.keyPem, '', now);
  t.true('error' in built);
  if ('error' in built) t.regex(built.error, /expired/);
});

test('a chain that expires in an hour is still stored: it is better than none', async (t) => {
  const issued = await selfSigned({ notBefore: new Date(now.getTime() - DAY), durationMs: DAY + HOUR });
  t.false('error' in buildSecret(certificate('web'), issued.certificatePem, issued.keyPem, '', now));
});

test('data that is not a certificate is refused with a reason', async (t) => {
  for (const chain of ['', 'garbage', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n']) {
    const built = buildSecret(certificate('web'), chain, await keyPem, '', now);
    t.true('error' in built, JSON.stringify(chain));
  }
});
