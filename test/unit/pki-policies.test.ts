/**
 * The re-issue and readiness policy chains: each cert-manager reason, when it
 * fires, and that the first violation in chain order wins.
 */
import test from 'ava';
import type { Certificate, CertificateRequest, Secret } from '../../src/api/types.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { encodeB64 } from '../../src/base/objects.ts';
import {
  Reasons,
  readinessReason,
  shouldReissue,
  type PolicyInput,
} from '../../src/pki/policies.ts';
import { signCsr } from '../../src/pki/sign.ts';
import { cachedSecret } from '../../src/controller/certificates.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const issuedAt = new Date('2030-01-01T00:00:00Z');
const after = (ms: number): Date => new Date(issuedAt.getTime() + ms);

// ---- builders -------------------------------------------------------------

type Mod<T> = (o: T) => void;

function certificate(name: string, ...mods: Mod<Certificate>[]): Certificate {
  const c: Certificate = {
    metadata: { name, namespace: 'default', generation: 1 },
    spec: { secretName: `${name}-tls`, issuerRef: { name: 'ca', kind: 'Issuer' }, commonName: 'a.test', dnsNames: ['a.test', 'www.a.test'] },
    status: { revision: 1 },
  };
  for (const mod of mods) mod(c);
  return c;
}
const withDnsNames = (...names: string[]): Mod<Certificate> => (c) => void (c.spec.dnsNames = names);
const withCommonName = (cn: string | undefined): Mod<Certificate> => (c) => void (c.spec.commonName = cn);
const withIssuer = (name: string, kind?: string, group?: string): Mod<Certificate> => (c) => void (c.spec.issuerRef = { name, kind, group });
const withSpec = (patch: Partial<Certificate['spec']>): Mod<Certificate> => (c) => void Object.assign(c.spec, patch);

function secret(data: Record<string, string> | undefined, ...mods: Mod<Secret>[]): Secret {
  const s: Secret = {
    metadata: {
      name: 'web-tls',
      namespace: 'default',
      annotations: { 'cert-manager.io/certificate-name': 'web', 'cert-manager.io/issuer-name': 'ca', 'cert-manager.io/issuer-kind': 'Issuer', 'cert-manager.io/issuer-group': 'cert-manager.io' },
    },
    type: 'kubernetes.io/tls',
    data,
  };
  for (const mod of mods) mod(s);
  return s;
}
const withAnnotations = (annotations: Record<string, string>): Mod<Secret> => (s) => void (s.metadata.annotations = annotations);
const tlsData = (crt: string, key: string): Record<string, string> => ({ 'tls.crt': encodeB64(crt), 'tls.key': encodeB64(key) });

function request(cert: Certificate, csrPem: string, revision: number, patch: Partial<CertificateRequest['spec']> = {}): CertificateRequest {
  return {
    metadata: {
      name: `${cert.metadata.name}-${revision}`,
      namespace: 'default',
      creationTimestamp: `2030-01-0${revision}T00:00:00Z`,
      annotations: { 'cert-manager.io/certificate-name': cert.metadata.name, 'cert-manager.io/certificate-revision': String(revision) },
    },
    spec: { request: encodeB64(csrPem), issuerRef: { ...cert.spec.issuerRef }, ...patch },
  };
}

// ---- fixtures: one CA, one issued key pair for the default spec ------------

interface Fixture {
  keyPem: string;
  otherKeyPem: string;
  csrPem: string;
  otherCsrPem: string;
  crtPem: string;
}

const fixture: Promise<Fixture> = (async () => {
  const caKey = await generatePrivateKey({ algorithm: 'ECDSA' });
  const ca = await signCsr({ csrPem: await createCsr({ keyPem: caKey, commonName: 'CA', isCA: true }), durationMs: 3650 * DAY, selfSignKeyPem: caKey, isCA: true, now: issuedAt });
  const keyPem = await generatePrivateKey({});
  const otherKeyPem = await generatePrivateKey({});
  const base = certificate('web');
  const names = { commonName: base.spec.commonName, dnsNames: base.spec.dnsNames };
  const csrPem = await createCsr({ keyPem, ...names });
  const otherCsrPem = await createCsr({ keyPem: otherKeyPem, ...names });
  const signed = await signCsr({ csrPem, durationMs: 90 * DAY, issuer: { certPem: ca.certificatePem, keyPem: caKey }, now: issuedAt });
  return { keyPem, otherKeyPem, csrPem, otherCsrPem, crtPem: signed.certificatePem };
})();

interface Case {
  name: string;
  input: (f: Fixture) => PolicyInput;
  reissue: string | undefined;
  ready?: string | undefined;
}

/** An input whose Secret holds the fixture's issued pair, at `now`, with the given Certificate. */
function healthy(f: Fixture, cert = certificate('web'), now = after(DAY), withRequest = true): PolicyInput {
  return { certificate: cert, secret: secret(tlsData(f.crtPem, f.keyPem)), now, currentRequest: withRequest ? request(cert, f.csrPem, 1) : undefined };
}

const cases: Case[] = [
  { name: 'an up-to-date certificate needs nothing and is ready', input: (f) => healthy(f), reissue: undefined, ready: undefined },
  { name: 'a missing Secret is DoesNotExist', input: () => ({ certificate: certificate('web'), now: after(DAY) }), reissue: Reasons.DoesNotExist },
  { name: 'a Secret with no data is MissingData', input: () => ({ certificate: certificate('web'), secret: secret(undefined), now: after(DAY) }), reissue: Reasons.MissingData },
  { name: 'a Secret without tls.key is MissingData', input: (f) => ({ certificate: certificate('web'), secret: secret({ 'tls.crt': encodeB64(f.crtPem) }), now: after(DAY) }), reissue: Reasons.MissingData },
  { name: 'a Secret with an empty tls.crt is MissingData', input: (f) => ({ certificate: certificate('web'), secret: secret({ 'tls.crt': '', 'tls.key': encodeB64(f.keyPem) }), now: after(DAY) }), reissue: Reasons.MissingData },
  { name: 'a tls.key that is not a key is InvalidKeyPair', input: (f) => ({ certificate: certificate('web'), secret: secret(tlsData(f.crtPem, '-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n')), now: after(DAY) }), reissue: Reasons.InvalidKeyPair },
  { name: 'a tls.crt that is not a certificate is InvalidCertificate', input: (f) => ({ certificate: certificate('web'), secret: secret(tlsData('junk', f.keyPem)), now: after(DAY) }), reissue: Reasons.InvalidCertificate },
  { name: 'a certificate that does not match the key is InvalidKeyPair', input: (f) => ({ certificate: certificate('web'), secret: secret(tlsData(f.crtPem, f.otherKeyPem)), now: after(DAY) }), reissue: Reasons.InvalidKeyPair },
  { name: 'a Secret issued by another issuer is IncorrectIssuer', input: (f) => healthy(f, certificate('web', withIssuer('other-ca'))), reissue: Reasons.IncorrectIssuer, ready: Reasons.IncorrectIssuer },
  { name: 'moving from an Issuer to a ClusterIssuer of the same name is IncorrectIssuer', input: (f) => healthy(f, certificate('web', withIssuer('ca', 'ClusterIssuer'))), reissue: Reasons.IncorrectIssuer },
  { name: 'an issuerRef without kind and group means Issuer in cert-manager.io', input: (f) => healthy(f, certificate('web', withIssuer('ca'))), reissue: undefined },
  {
    name: 'a Secret without issuer annotations is not judged on them',
    input: (f) => ({ ...healthy(f, certificate('web', withIssuer('ca', 'ClusterIssuer')), after(DAY), false), secret: secret(tlsData(f.crtPem, f.keyPem), withAnnotations({})) }),
    reissue: undefined,
  },
  { name: 'a Secret that belongs to another Certificate is IncorrectCertificate', input: (f) => healthy(f, certificate('api')), reissue: Reasons.IncorrectCertificate },
  { name: 'a key of another algorithm than the spec asks is SecretMismatch', input: (f) => healthy(f, certificate('web', withSpec({ privateKey: { algorithm: 'ECDSA' } }))), reissue: Reasons.SecretMismatch },
  { name: 'a key of another size than the spec asks is SecretMismatch', input: (f) => healthy(f, certificate('web', withSpec({ privateKey: { size: 4096 } }))), reissue: Reasons.SecretMismatch },
  { name: 'another key encoding alone is not a reason to re-issue', input: (f) => healthy(f, certificate('web', withSpec({ privateKey: { encoding: 'PKCS8' } }))), reissue: undefined },
  {
    name: 'a current request made with another key is SecretMismatch',
    input: (f) => ({ ...healthy(f), currentRequest: request(certificate('web'), f.otherCsrPem, 1) }),
    reissue: Reasons.SecretMismatch,
  },
  {
    name: 'an unreadable current request is InvalidCertificateRequest',
    input: (f) => ({ ...healthy(f), currentRequest: { ...request(certificate('web'), f.csrPem, 1), spec: { request: 'bm90IGEgY3Ny', issuerRef: { name: 'ca' } } } }),
    reissue: Reasons.InvalidCertificateRequest,
  },
  {
    name: 'changed dnsNames with the current request still there is RequestChanged',
    input: (f) => ({ ...healthy(f, certificate('web', withDnsNames('a.test', 'new.a.test'))), currentRequest: request(certificate('web'), f.csrPem, 1) }),
    reissue: Reasons.RequestChanged,
    ready: Reasons.RequestChanged,
  },
  { name: 'changed usages are RequestChanged', input: (f) => ({ ...healthy(f, certificate('web', withSpec({ usages: ['server auth'] }))), currentRequest: request(certificate('web'), f.csrPem, 1) }), reissue: Reasons.RequestChanged },
  {
    name: 'usages spelled out as the defaults are not a change',
    input: (f) => ({ ...healthy(f, certificate('web', withSpec({ usages: ['key encipherment', 'digital signature'] }))), currentRequest: request(certificate('web'), f.csrPem, 1) }),
    reissue: undefined,
  },
  {
    name: 'a changed duration is RequestChanged, an equal one spelled differently is not',
    input: (f) => ({ ...healthy(f, certificate('web', withSpec({ duration: '720h' }))), currentRequest: request(certificate('web'), f.csrPem, 1, { duration: '2160h0m0s' }) }),
    reissue: Reasons.RequestChanged,
  },
  {
    name: 'the same duration in another spelling is not a change',
    input: (f) => ({ ...healthy(f, certificate('web', withSpec({ duration: '2160h' }))), currentRequest: request(certificate('web'), f.csrPem, 1, { duration: '2160h0m0s' }) }),
    reissue: undefined,
  },
  { name: 'changed dnsNames after the request was deleted is SecretMismatch', input: (f) => healthy(f, certificate('web', withDnsNames('a.test', 'new.a.test')), after(DAY), false), reissue: Reasons.SecretMismatch },
  {
    name: 'without a request, a common name the CA also listed as a DNS name is not a change',
    input: (f) => healthy(f, certificate('web', withCommonName(undefined), withDnsNames('a.test', 'www.a.test')), after(DAY), false),
    reissue: undefined,
  },
  { name: 'an expired certificate is Expired, and not Ready', input: (f) => healthy(f, certificate('web'), after(91 * DAY)), reissue: Reasons.Expired, ready: Reasons.Expired },
  { name: 'a certificate past its renewal time is Renewing but still Ready', input: (f) => healthy(f, certificate('web'), after(60 * DAY)), reissue: Reasons.Renewing, ready: undefined },
  { name: 'a certificate a second before its renewal time needs nothing', input: (f) => healthy(f, certificate('web'), after(60 * DAY - 1000)), reissue: undefined },
  { name: 'renewBefore moves the renewal time', input: (f) => healthy(f, certificate('web', withSpec({ renewBefore: '2000h' })), after(10 * DAY)), reissue: Reasons.Renewing },
  {
    name: 'the first violation wins: missing data is reported before a wrong issuer',
    input: () => ({ certificate: certificate('web', withIssuer('other')), secret: secret({}), now: after(DAY) }),
    reissue: Reasons.MissingData,
  },
];

for (const c of cases) {
  test(`policy: ${c.name}`, async (t) => {
    const input = c.input(await fixture);
    t.is(shouldReissue(input)?.reason, c.reissue);
    if ('ready' in c) t.is(readinessReason(input)?.reason, c.ready);
  });
}

for (const c of cases) {
  test(`policy, on the Secret as the cache holds it (facts, no PEM): ${c.name}`, async (t) => {
    const full = c.input(await fixture);
    const cached = full.secret && structuredClone(full.secret);
    if (cached) cachedSecret(cached);
    t.is(cached?.data?.['tls.key'], undefined, 'no private key in the cache');
    t.is(cached?.data?.['tls.crt'], undefined, 'no certificate PEM in the cache');
    const input = { ...full, secret: cached };
    t.is(shouldReissue(input)?.reason, c.reissue);
    t.is(shouldReissue(input)?.message, shouldReissue(full)?.message, 'the same message as from the full Secret');
    if ('ready' in c) t.is(readinessReason(input)?.reason, c.ready);
  });
}

test('a next-key Secret keeps its private key in the cache: it signs the request', async (t) => {
  const f = await fixture;
  const next = secret({ 'tls.key': encodeB64(f.keyPem) }, (s) => void (s.metadata.labels = { 'cert-manager.io/next-private-key': 'true' }));
  cachedSecret(next);
  t.is(next.data?.['tls.key'], encodeB64(f.keyPem));
});

test('violation messages say what to look at, without volatile detail', async (t) => {
  const f = await fixture;
  const wrongIssuer = shouldReissue(healthy(f, certificate('web', withIssuer('other-ca'))));
  t.is(wrongIssuer?.message, 'Issuing certificate as Secret was previously issued by "Issuer.cert-manager.io/ca"');
  const changed = shouldReissue({ ...healthy(f, certificate('web', withDnsNames('b.test'))), currentRequest: request(certificate('web'), f.csrPem, 1) });
  t.is(changed?.message, 'Fields on existing CertificateRequest resource not up to date: [spec.dnsNames]');
  t.is(shouldReissue(healthy(f, certificate('web'), after(91 * DAY)))?.message, 'Certificate expired on Mon, 01 Apr 2030 00:00:00 GMT');
});
