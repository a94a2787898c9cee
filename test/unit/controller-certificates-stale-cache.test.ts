/**
 * The trigger decides an issuance on the Secret as the API server has it, not as a lagging
 * cache does. storeCertificate writes the Secret and then the Certificate's status; the two
 * arrive through different watches, and when the Certificate's update comes first (or the
 * Secrets watch is away, as after a 410 Gone), the cache says "no Secret", or shows the old one,
 * for a Certificate that was just issued. Deciding on that opened a second ACME order
 * (found by the 410 fault test, test/e2e/faults-kube.test.ts).
 */
import test from 'ava';
import type { Certificate, CertificateStatus, KubeObject, ResourceDef, Secret } from '../../src/api/types.ts';
import { certificateReconciler } from '../../src/controller/certificates.ts';
import type { Context } from '../../src/controller/context.ts';
import { buildSecret } from '../../src/controller/issuing.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { certificate, ready, selfSigned, testConfig, withCertificateStatus } from '../helpers/builders.ts';

interface Recorded {
  statuses: CertificateStatus[];
  events: string[];
  reads: string[];
}

/** A Context whose caches hold `cached` and whose API server holds `live`. */
function context(cert: Certificate, cached: Secret | undefined, live: Secret | undefined): { ctx: Context; rec: Recorded } {
  const rec: Recorded = { statuses: [], events: [], reads: [] };
  const cache = <T>(get: (ns: string | undefined, name: string) => T | undefined) => ({ get, list: () => [] });
  const ctx = {
    config: testConfig,
    clock: () => new Date(),
    metrics: new Metrics(),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    caches: {
      certificates: cache((_ns, name) => (name === cert.metadata.name ? cert : undefined)),
      secrets: cache(() => cached),
      certificaterequests: cache(() => undefined),
    },
    client: {
      async find(_def: ResourceDef, _ns: string | undefined, name: string) {
        rec.reads.push(name);
        return live;
      },
      async replaceStatus<T extends KubeObject>(_def: ResourceDef, obj: T) {
        rec.statuses.push((obj as unknown as Certificate).status ?? {});
        return obj;
      },
    },
    events: { event: (_o: KubeObject, _d: ResourceDef, type: string, reason: string) => rec.events.push(`${type} ${reason}`) },
  } as unknown as Context;
  return { ctx, rec };
}

async function issuedSecret(cert: Certificate, resourceVersion: string): Promise<Secret> {
  const { keyPem, certificatePem } = await selfSigned({ dnsNames: cert.spec.dnsNames, algorithm: 'RSA' });
  const built = buildSecret(cert, certificatePem, keyPem, '', new Date());
  if ('error' in built) throw new Error(built.error);
  return { ...built.secret, metadata: { ...built.secret.metadata, resourceVersion } };
}

const issuingSet = (rec: Recorded) => rec.statuses.some((s) => s.conditions?.some((c) => c.type === 'Issuing' && c.status === 'True'));

test('a Secret missing from the cache but present in the API server starts no issuance', async (t) => {
  const cert = certificate('web', withCertificateStatus({ revision: 1 }), ready());
  const { ctx, rec } = context(cert, undefined, await issuedSecret(cert, '42'));
  await certificateReconciler(ctx)('apps/web');
  t.deepEqual(rec.reads, ['web-tls'], 'the Secret was read from the API server');
  t.false(issuingSet(rec), 'Issuing was not set');
  t.false(rec.events.includes('Normal Issuing'));
});

test('an old Secret in the cache does not renew a certificate the API server already has renewed', async (t) => {
  const cert = certificate('web', withCertificateStatus({ revision: 2 }), ready());
  const stale = await issuedSecret(cert, '41');
  stale.data = { ...stale.data, 'tls.crt': (await issuedSecret(certificate('other'), '1')).data!['tls.crt']! }; // names other.test: must reissue
  const { ctx, rec } = context(cert, stale, await issuedSecret(cert, '42'));
  await certificateReconciler(ctx)('apps/web');
  t.false(issuingSet(rec), 'Issuing was not set');
});

test('a Secret that is really missing still starts an issuance', async (t) => {
  const cert = certificate('web');
  const { ctx, rec } = context(cert, undefined, undefined);
  await certificateReconciler(ctx)('apps/web');
  t.true(issuingSet(rec), 'Issuing=True was written');
  t.true(rec.events.includes('Normal Issuing'));
});

test('a cache that agrees with the API server costs one read, only when an issuance is due', async (t) => {
  const cert = certificate('web', withCertificateStatus({ revision: 1 }), ready());
  const secret = await issuedSecret(cert, '42');
  const { ctx, rec } = context(cert, secret, secret);
  await certificateReconciler(ctx)('apps/web');
  t.deepEqual(rec.reads, [], 'nothing was due, nothing was read');
  t.false(issuingSet(rec));
});
