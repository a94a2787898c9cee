/**
 * The Certificate reconciler's issuing path as a state machine, one pass at a
 * time, on the in-memory cluster: next key → CertificateRequest of the next
 * revision → the Secret. Each spec starts from the state a pass finds and
 * names the one step that pass must take (docs/ARCHITECTURE.md, "Certificate").
 */
import test from 'ava';
import type { Certificate, CertificateRequest, Secret } from '../../src/api/types.ts';
import { certificateReconciler, NEXT_KEY_LABEL } from '../../src/controller/certificates.ts';
import { decodeB64, encodeB64 } from '../../src/base/objects.ts';
import { signCsr } from '../../src/pki/sign.ts';
import { certificate, certificateRequest, condition, DAY, issuing, ownedBy, Resources, withCondition, withSpec, type Option } from '../helpers/builders.ts';
import { harness, type Harness } from '../helpers/fake-context.ts';

const KEY = 'apps/web';

/** A Harness holding an Issuing Certificate; the spec adds what else the pass should find. */
function issuingCertificate(...options: Array<Option<Certificate>>): Harness & { cert: Certificate } {
  const h = harness();
  const [cert] = h.cluster.seed(Resources.certificates, certificate('web', withSpec({ duration: '2160h0m0s' }), issuing('True', 'DoesNotExist', 'Issuing certificate as Secret does not exist', 1), ...options));
  return { ...h, cert: cert! };
}

const pass = (h: Harness) => certificateReconciler(h.ctx)(KEY);
const current = (h: Harness) => h.cluster.read<Certificate>(Resources.certificates, 'apps', 'web')!;
const requests = (h: Harness) => h.cluster.all<CertificateRequest>(Resources.certificaterequests, 'apps');

/** Runs passes until the next-key Secret and the request of revision 1 exist. */
async function requested(h: Harness): Promise<CertificateRequest> {
  await pass(h);
  await pass(h);
  const [request] = requests(h);
  if (!request) throw new Error('no CertificateRequest after two passes');
  return request;
}

/** The request answered by its issuer: Ready with a chain for the request's own key. */
async function answer(h: Harness, request: CertificateRequest): Promise<void> {
  const keyName = current(h).status?.nextPrivateKeySecretName ?? '';
  const keyPem = decodeB64(h.cluster.read<Secret>(Resources.secrets, 'apps', keyName)?.data?.['tls.key']);
  const { certificatePem } = await signCsr({ csrPem: decodeB64(request.spec.request), durationMs: 90 * DAY, selfSignKeyPem: keyPem, now: h.clock.now });
  await h.cluster.client.replaceStatus(Resources.certificaterequests, {
    ...request,
    status: { certificate: encodeB64(certificatePem), conditions: [condition('Ready', 'True', 'Issued', 'Certificate fetched from issuer successfully')] },
  });
}

test('the first pass of an issuance creates the next private key in a Secret the Certificate owns, and records its name', async (t) => {
  const h = issuingCertificate();
  await pass(h);
  const keyName = current(h).status?.nextPrivateKeySecretName;
  const key = h.cluster.read<Secret>(Resources.secrets, 'apps', keyName ?? '');
  t.is(key?.metadata.labels?.[NEXT_KEY_LABEL], 'true');
  t.is(key?.metadata.ownerReferences?.[0]?.uid, h.cert.metadata.uid);
  t.deepEqual(requests(h), [], 'no request yet: that is the next pass, once the caches have caught up');
});

test('a Certificate whose Secret does not exist is marked Issuing and gets its next key in the same pass and the same status write', async (t) => {
  const h = harness();
  h.cluster.seed(Resources.certificates, certificate('web'));
  await pass(h);
  const cert = current(h);
  t.like(cert.status?.conditions?.find((c) => c.type === 'Issuing'), { status: 'True', reason: 'DoesNotExist' });
  t.truthy(cert.status?.nextPrivateKeySecretName);
  t.deepEqual(h.cluster.writes.map((w) => `${w.verb} ${w.resource}`), ['create secrets', 'status certificates']);
  t.deepEqual(h.events, ['Normal Issuing: Issuing certificate as Secret does not exist']);
  await pass(h);
  t.is(requests(h)[0]?.metadata.name, 'web-1', 'the next pass makes the request');
});

test('a key made by a pass whose status write was lost is taken up by the next pass, not joined by another', async (t) => {
  const h = issuingCertificate();
  const replaceStatus = h.cluster.client.replaceStatus;
  h.cluster.client.replaceStatus = async () => {
    throw new Error('the API server went away');
  };
  await t.throwsAsync(pass(h), { message: /went away/ });
  const [made] = h.cluster.all<Secret>(Resources.secrets, 'apps');
  t.truthy(made, 'the key was made before the status write');
  h.cluster.client.replaceStatus = replaceStatus;
  await pass(h);
  t.is(current(h).status?.nextPrivateKeySecretName, made?.metadata.name, 'the key already made');
  t.is(h.cluster.all<Secret>(Resources.secrets, 'apps').length, 1, 'no second key');
});

test('with a next key, a pass creates the CertificateRequest of the next revision, owned by the Certificate, for that key', async (t) => {
  const h = issuingCertificate();
  const request = await requested(h);
  t.is(request.metadata.name, 'web-1');
  t.is(request.metadata.ownerReferences?.[0]?.uid, h.cert.metadata.uid);
  t.is(request.metadata.annotations?.['cert-manager.io/certificate-revision'], '1');
  t.is(request.spec.duration, '2160h0m0s');
  t.true(h.events.includes('Normal Requested: Created new CertificateRequest resource "web-1"'));
});

test('a request in flight survives an edit that re-spells its duration, and the Issuing condition records the generation it saw', async (t) => {
  const h = issuingCertificate();
  const request = await requested(h);
  const edited = current(h);
  await h.cluster.client.replace(Resources.certificates, { ...edited, spec: { ...edited.spec, duration: '2160h' } });
  t.is(current(h).metadata.generation, 2);
  await pass(h);
  t.deepEqual(requests(h).map((r) => r.metadata.uid), [request.metadata.uid], 'the same request');
  t.is(current(h).status?.conditions?.find((c) => c.type === 'Issuing')?.observedGeneration, 2);
});

test('a request in flight that asks for other names is deleted, so the next pass asks again', async (t) => {
  const h = issuingCertificate();
  const request = await requested(h);
  const edited = current(h);
  await h.cluster.client.replace(Resources.certificates, { ...edited, spec: { ...edited.spec, dnsNames: ['web.test', 'www.test'] } });
  await pass(h);
  t.deepEqual(requests(h), [], 'the stale request is gone');
  await pass(h);
  const [again] = requests(h);
  t.not(again?.metadata.uid, request.metadata.uid);
  t.is(again?.metadata.name, 'web-1', 'the revision did not move');
});

test('a request of the next revision’s name that another Certificate owns is deleted, not adopted', async (t) => {
  const h = issuingCertificate();
  await pass(h);
  const deletedNamesake = certificate('web', (c) => void (c.metadata.uid = 'uid-of-a-deleted-web'));
  h.cluster.seed(Resources.certificaterequests, certificateRequest('web-1', ownedBy(deletedNamesake, Resources.certificates)));
  await pass(h);
  t.deepEqual(requests(h), []);
});

test('a failed request counts a failure, sets Issuing=False with its message, and is deleted', async (t) => {
  const h = issuingCertificate();
  const request = await requested(h);
  await h.cluster.client.replaceStatus(Resources.certificaterequests, { ...request, status: { conditions: [condition('Ready', 'False', 'Failed', 'the CA said no')] } });
  await pass(h);
  const cert = current(h);
  t.is(cert.status?.failedIssuanceAttempts, 1);
  t.is(cert.status?.lastFailureTime, '2030-01-01T00:00:00Z');
  t.like(cert.status?.conditions?.find((c) => c.type === 'Issuing'), { status: 'False', reason: 'Failed' });
  t.regex(cert.status?.conditions?.find((c) => c.type === 'Issuing')?.message ?? '', /the CA said no/);
  t.deepEqual(requests(h), []);
});

test('a Ready request’s chain goes into the Secret, the revision moves to 1, Issuing goes and the next key is deleted', async (t) => {
  const h = issuingCertificate();
  const request = await requested(h);
  const keyName = current(h).status?.nextPrivateKeySecretName ?? '';
  await answer(h, request);
  await pass(h);
  const cert = current(h);
  t.is(cert.status?.revision, 1);
  t.is(cert.status?.conditions?.find((c) => c.type === 'Issuing'), undefined);
  t.like(cert.status?.conditions?.find((c) => c.type === 'Ready'), { status: 'True', reason: 'Ready' });
  const secret = h.cluster.read<Secret>(Resources.secrets, 'apps', 'web-tls');
  t.is(secret?.type, 'kubernetes.io/tls');
  t.is(secret?.metadata.annotations?.['cert-manager.io/certificate-name'], 'web');
  t.is(h.cluster.read(Resources.secrets, 'apps', keyName), undefined, 'no private key outlives its issuance');
});

test('a new Secret is created without reading it first; one the cache does not show yet is read and merged into, keeping the user’s keys', async (t) => {
  const fresh = issuingCertificate();
  await answer(fresh, await requested(fresh));
  await pass(fresh);
  t.deepEqual(fresh.cluster.reads.filter((r) => r.endsWith('/web-tls')), [], 'no read of a Secret the cache does not show');
  t.truthy(fresh.cluster.read<Secret>(Resources.secrets, 'apps', 'web-tls')?.data?.['tls.crt']);

  const h = issuingCertificate();
  h.cluster.seed(Resources.secrets, { metadata: { name: 'web-tls', namespace: 'apps' }, type: 'kubernetes.io/tls', data: { 'user-key': encodeB64('kept') } } as Secret);
  h.cluster.showInCache(Resources.secrets, 'apps', 'web-tls', undefined);
  await answer(h, await requested(h));
  await pass(h);
  const secret = h.cluster.read<Secret>(Resources.secrets, 'apps', 'web-tls');
  t.truthy(secret?.data?.['tls.crt'], 'the chain went in');
  t.is(decodeB64(secret?.data?.['user-key']), 'kept', 'merged, not replaced');
  t.is(current(h).status?.revision, 1);
});

test('a pass that finds the request still pending writes nothing when the generation it saw is recorded already', async (t) => {
  const h = issuingCertificate(withCondition<Certificate>(condition('Ready', 'False', 'DoesNotExist', 'no Secret')));
  await requested(h);
  const before = h.cluster.writes.length;
  await pass(h);
  t.deepEqual(h.cluster.writes.slice(before), []);
});
