/**
 * What brings a Certificate back to the ARI check. The certificate to ask about is read from the
 * Secret cache, and the Secret's watch can deliver the new Secret after the Certificate's own
 * status event: the pass on that event finds no certificate and ends, so the Secret's event must
 * bring the Certificate back, or the CA is never asked about it (a revoked certificate would then
 * wait for its ordinary renewal time).
 */
import test from 'ava';
import { webcrypto } from 'node:crypto';
import { Resources, type Secret } from '../../src/api/types.ts';
import { renewalInfoController } from '../../src/controller/renewalinfo.ts';
import type { ControllerSetup } from '../../src/kube/controller.ts';
import { x509 } from '../../src/pki/x509.ts';
import { certificate, issuer, withCertificateStatus } from '../helpers/builders.ts';
import { harness } from '../helpers/fake-context.ts';

function registered(): { h: ReturnType<typeof harness>; keys: string[] } {
  const h = harness();
  const keys: string[] = [];
  // The ARI controller subscribes to caches it takes from its context, not to the informer set.
  renewalInfoController.register(h.ctx, { informers: undefined as unknown as ControllerSetup['informers'], queue: { add: (key) => void keys.push(key) } });
  return { h, keys };
}

const secret = (name: string, namespace = 'apps'): Secret => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'kubernetes.io/tls', data: {} });

test('a Secret arriving in the cache brings back the Certificates that name it, and only those', (t) => {
  const { h, keys } = registered();
  h.cluster.seed(Resources.certificates, certificate('web'), certificate('api'));
  h.cluster.emit(Resources.secrets, secret('web-tls'), 'add');
  t.deepEqual(keys, ['apps/web']);
  h.cluster.emit(Resources.secrets, secret('web-tls', 'other'), 'update');
  t.deepEqual(keys, ['apps/web'], 'a Secret of the same name in another namespace is not theirs');
});

test('a pass with no certificate in the Secret cache yet ends, and the Secret event that follows starts the next', async (t) => {
  const { h, keys } = registered();
  h.cluster.seed(Resources.clusterissuers, issuer('letsencrypt'));
  h.cluster.seed(Resources.certificates, certificate('web'));
  const reconcile = renewalInfoController.register(h.ctx, { informers: undefined as unknown as ControllerSetup['informers'], queue: { add: () => undefined } }).reconcile;
  t.deepEqual(await reconcile('apps/web'), { kind: 'done' }, 'an ACME Certificate whose Secret the cache does not show yet: nothing to ask about');
  t.deepEqual(h.ca.calls, [], 'and the CA was not asked');
  h.cluster.emit(Resources.secrets, secret('web-tls'), 'add');
  t.deepEqual(keys, ['apps/web']);
});

/** A leaf with an Authority Key Identifier (so it has an ARI identifier), valid until `notAfter`. */
async function leafPem(notAfter: Date): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0a', name: 'CN=web.test', notBefore: new Date('2029-12-01T00:00:00Z'), notAfter, keys, signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'web.test' }]), new x509.AuthorityKeyIdentifierExtension('0123456789abcdef')],
  });
  return cert.toString('pem');
}

test('a pass whose Secret cache still shows the certificate from before a renewal the status records asks the CA nothing and writes nothing', async (t) => {
  const { h } = registered();
  h.cluster.seed(Resources.clusterissuers, issuer('letsencrypt'));
  // The status already records the renewed certificate (notAfter in April); the cache's Secret is the old one (March).
  h.cluster.seed(Resources.certificates, certificate('web', withCertificateStatus({ notAfter: '2030-04-01T00:00:00Z', notBefore: '2030-01-01T00:00:00Z', renewalTime: '2030-03-01T00:00:00Z' })));
  h.cluster.seed(Resources.secrets, { ...secret('web-tls'), data: { 'tls.crt': Buffer.from(await leafPem(new Date('2030-03-01T00:00:00Z'))).toString('base64') } });
  const reconcile = renewalInfoController.register(h.ctx, { informers: undefined as unknown as ControllerSetup['informers'], queue: { add: () => undefined } }).reconcile;
  t.deepEqual(await reconcile('apps/web'), { kind: 'done' });
  t.deepEqual(h.ca.calls, [], 'the CA was not asked about the old certificate');
  t.deepEqual(h.cluster.writes, [], "and the old certificate's dates were not written back over the status");
});
