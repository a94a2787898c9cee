/**
 * The trigger decides an issuance on the Secret as the API server has it, not as a lagging
 * cache does. storeCertificate writes the Secret and then the Certificate's status; the two
 * arrive through different watches, and when the Certificate's update comes first (or the
 * Secrets watch is away, as after a 410 Gone), the cache says "no Secret", or shows the old one,
 * for a Certificate that was just issued. Deciding on that opened a second ACME order
 * (found by the 410 fault test, test/e2e/faults-kube.test.ts).
 */
import test from 'ava';
import type { Certificate, KubeObject, Secret } from '../../src/api/types.ts';
import { certificateReconciler } from '../../src/controller/certificates.ts';
import { buildSecret } from '../../src/controller/issuing.ts';
import { writeStatus } from '../../src/controller/status.ts';
import { certificate, ready, Resources, selfSigned, withCertificateStatus } from '../helpers/builders.ts';
import { harness, type Harness } from '../helpers/fake-context.ts';

/** A Harness whose cache shows `cached` for the Certificate's Secret while the API server holds `live`. */
function context(cert: Certificate, cached: Secret | undefined, live: Secret | undefined): Harness {
  const h = harness({ now: new Date() }); // the Secrets' certificates are made now
  h.cluster.seed(Resources.certificates, cert);
  if (live) h.cluster.seed(Resources.secrets, live);
  if (cached !== live) h.cluster.showInCache(Resources.secrets, 'apps', cert.spec.secretName, cached);
  return h;
}

async function issuedSecret(cert: Certificate, resourceVersion: string): Promise<Secret> {
  const { keyPem, certificatePem } = await selfSigned({ dnsNames: cert.spec.dnsNames, algorithm: 'RSA' });
  const built = buildSecret(cert, certificatePem, keyPem, '', new Date());
  if ('error' in built) throw new Error(built.error);
  return { ...built.secret, metadata: { ...built.secret.metadata, resourceVersion } };
}

const issuingSet = (h: Harness) =>
  h.cluster.read<Certificate>(Resources.certificates, 'apps', 'web')?.status?.conditions?.some((c) => c.type === 'Issuing' && c.status === 'True') ?? false;
const issuingEvent = (h: Harness) => h.events.some((e) => e.startsWith('Normal Issuing:'));

test('a Secret missing from the cache but present in the API server starts no issuance', async (t) => {
  const cert = certificate('web', withCertificateStatus({ revision: 1 }), ready());
  const h = context(cert, undefined, await issuedSecret(cert, '42'));
  await certificateReconciler(h.ctx)('apps/web');
  t.deepEqual(h.cluster.reads, ['secrets apps/web-tls'], 'the Secret was read from the API server');
  t.false(issuingSet(h), 'Issuing was not set');
  t.false(issuingEvent(h));
});

test('an old Secret in the cache does not renew a certificate the API server already has renewed', async (t) => {
  const cert = certificate('web', withCertificateStatus({ revision: 2 }), ready());
  const stale = await issuedSecret(cert, '41');
  stale.data = { ...stale.data, 'tls.crt': (await issuedSecret(certificate('other'), '1')).data!['tls.crt']! }; // names other.test: must reissue
  const h = context(cert, stale, await issuedSecret(cert, '42'));
  await certificateReconciler(h.ctx)('apps/web');
  t.false(issuingSet(h), 'Issuing was not set');
});

test('a Secret that is really missing still starts an issuance', async (t) => {
  const cert = certificate('web');
  const h = context(cert, undefined, undefined);
  await certificateReconciler(h.ctx)('apps/web');
  t.true(issuingSet(h), 'Issuing=True was written');
  t.true(issuingEvent(h));
});

test('a cache that agrees with the API server costs one read, only when an issuance is due', async (t) => {
  const cert = certificate('web', withCertificateStatus({ revision: 1 }), ready());
  const secret = await issuedSecret(cert, '42');
  const h = context(cert, secret, secret);
  await certificateReconciler(h.ctx)('apps/web');
  t.deepEqual(h.cluster.reads, [], 'nothing was due, nothing was read');
  t.false(issuingSet(h));
});

test('a pass that reads the version its own status write replaced ends there: no second Issuing Event, no write, no 409', async (t) => {
  const h = context(certificate('web'), undefined, undefined);
  const before = h.cluster.read<Certificate>(Resources.certificates, 'apps', 'web')!;
  // The Certificate cache lags: it will still show this version after the first pass's write.
  h.cluster.showInCache(Resources.certificates, 'apps', 'web', before);
  await certificateReconciler(h.ctx)('apps/web');
  t.true(issuingSet(h));
  const writes = h.cluster.writes.length;
  const events = h.events.length;
  // The next-key Secret's watch event wakes the Certificate before its own update arrived.
  await t.notThrowsAsync(certificateReconciler(h.ctx)('apps/web'));
  t.is(h.cluster.writes.length, writes, 'nothing written from the replaced version');
  t.is(h.events.length, events, 'the Issuing Event is not recorded twice');
  // A version this process did not replace is acted on as before: an older one loses its write to a 409.
  h.cluster.showInCache(Resources.certificates, 'apps', 'web', { ...before, metadata: { ...before.metadata, resourceVersion: '0' } });
  await t.throwsAsync(certificateReconciler(h.ctx)('apps/web'), { message: /Conflict/ });
});

test('a status write the API server found to change nothing (same resourceVersion, no watch event) holds no later pass back', async (t) => {
  const h = context(certificate('web'), undefined, undefined);
  const cert = h.cluster.read<Certificate>(Resources.certificates, 'apps', 'web')!;
  // A server that prunes the only field that differed answers with the object as it was.
  h.cluster.client.replaceStatus = async <T extends KubeObject>(_def: unknown, obj: T) => ({ ...obj, metadata: { ...obj.metadata, resourceVersion: cert.metadata.resourceVersion } });
  await writeStatus(h.ctx, Resources.certificates, cert, { revision: 7 });
  t.false(h.ctx.caches.certificates.isReplaced(cert));
});

test('a status write that made a new version marks the one it replaced, while the cache shows it; not once the cache shows the new one', async (t) => {
  const h = context(certificate('web'), undefined, undefined);
  const cert = h.cluster.read<Certificate>(Resources.certificates, 'apps', 'web')!;
  h.cluster.showInCache(Resources.certificates, 'apps', 'web', cert);
  await writeStatus(h.ctx, Resources.certificates, cert, { revision: 7 });
  t.true(h.ctx.caches.certificates.isReplaced(cert));
  t.false(h.ctx.caches.certificates.isReplaced(h.cluster.read<Certificate>(Resources.certificates, 'apps', 'web')!));
  // An event that showed the write before its answer came back: nothing is noted at all.
  const shown = context(certificate('web'), undefined, undefined);
  const read = shown.cluster.read<Certificate>(Resources.certificates, 'apps', 'web')!;
  await writeStatus(shown.ctx, Resources.certificates, read, { revision: 7 });
  t.false(shown.ctx.caches.certificates.isReplaced(read));
});
