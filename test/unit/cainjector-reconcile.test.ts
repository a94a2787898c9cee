/**
 * The CA injector's reconcile pass against in-memory caches and a recording client: what it
 * patches, what it refuses, and that a refusal is reported once. The real API server's side is
 * test/e2e/cainjector.test.ts.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import type { APIService, CustomResourceDefinition, WebhookConfiguration } from '../../src/api/cainjector.ts';
import { Resources, type Certificate, type KubeObject, type Secret } from '../../src/api/types.ts';
import { bundlePem, parseBundle } from '../../src/cainjector/bundle.ts';
import { injectorReconciler, InjectorIndex, type InjectorDeps } from '../../src/cainjector/injector.ts';
import { trimTarget } from '../../src/cainjector/targets.ts';
import { ApiError } from '../../src/kube/client.ts';
import { createLogger } from '../../src/log.ts';
import { certificate, selfSigned, withSecretName } from '../helpers/builders.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');
const newCa = async (cn: string) => new X509Certificate((await selfSigned({ commonName: cn })).certificatePem);

interface World {
  targets: Map<string, KubeObject>;
  certificates: Map<string, Certificate>;
  cachedSecrets: Map<string, Secret>;
  apiSecrets: Map<string, Secret>;
  patches: Array<{ plural: string; name: string; patch: Record<string, unknown> }>;
  events: Array<{ type: string; reason: string; message: string; name: string }>;
  conflictOnce?: boolean;
  injected: number;
  refused: number;
}

function world(): World {
  return { targets: new Map(), certificates: new Map(), cachedSecrets: new Map(), apiSecrets: new Map(), patches: [], events: [], injected: 0, refused: 0 };
}

function deps(w: World, apiserverCA?: X509Certificate[]): InjectorDeps {
  return {
    client: {
      find: async <T extends KubeObject>(_def: unknown, ns: string | undefined, name: string) => w.apiSecrets.get(`${ns}/${name}`) as T | undefined,
      get: async <T extends KubeObject>(def: { plural: string }, _ns: string | undefined, name: string) => structuredClone(w.targets.get(`${def.plural}/${name}`)) as T,
      mergePatch: async <T extends KubeObject>(def: { plural: string }, _ns: string | undefined, name: string, patch: unknown) => {
        if (w.conflictOnce) {
          w.conflictOnce = false;
          throw new ApiError('conflict', 409, 'Conflict');
        }
        w.patches.push({ plural: def.plural, name, patch: patch as Record<string, unknown> });
        return {} as T;
      },
    },
    logger: createLogger('silent'),
    events: { event: (o, _def, type, reason, message) => w.events.push({ type, reason, message, name: o.metadata.name }) },
    metrics: { injected: { inc: () => void w.injected++ }, refused: { inc: () => void w.refused++ } },
    clock: () => new Date(),
    targets: { get: (plural, name) => w.targets.get(`${plural}/${name}`) },
    certificates: { get: (ns, name) => w.certificates.get(`${ns}/${name}`) },
    secrets: { get: (ns, name) => w.cachedSecrets.get(`${ns}/${name}`) },
    apiserverCA,
  };
}

function vwc(name: string, annotations: Record<string, string>, caBundles: Array<string | undefined> = [undefined, undefined]): WebhookConfiguration {
  return {
    metadata: { name, resourceVersion: '7', annotations },
    webhooks: caBundles.map((caBundle, i) => ({ name: `w${i}.example.com`, sideEffects: 'None', clientConfig: { url: `https://127.0.0.1:1/${i}`, ...(caBundle ? { caBundle } : {}) } })),
  };
}

function issuedSecret(ns: string, name: string, cert: string, ca: X509Certificate, extra: Record<string, string> = {}): Secret {
  return { metadata: { name, namespace: ns, annotations: { 'cert-manager.io/certificate-name': cert, ...extra } }, data: { 'ca.crt': b64(ca.toString()), 'tls.crt': b64(ca.toString()) } };
}

/**
 * Certificate ns/<name> with its issued Secret <name>-tls holding `ca`; the cache, like certroute's,
 * holds the Secret without its PEM data.
 */
function withIssuedCa(w: World, name: string, ca: X509Certificate, owner = name): void {
  w.certificates.set(`ns/${name}`, certificate(name, withSecretName(`${name}-tls`)));
  const secret = issuedSecret('ns', `${name}-tls`, owner, ca);
  w.apiSecrets.set(`ns/${name}-tls`, secret);
  w.cachedSecrets.set(`ns/${name}-tls`, { metadata: structuredClone(secret.metadata) });
}

const patchedBundles = (p: Record<string, unknown>) => (p.webhooks as WebhookConfiguration['webhooks'] ?? []).map((h) => parseBundle(unb64(h.clientConfig.caBundle)).map((c) => c.subject));

test('inject-ca-from fills every webhook of a ValidatingWebhookConfiguration with the CA of the Certificate, under the resourceVersion it read', async (t) => {
  const w = world();
  const ca = await newCa('ca-one');
  withIssuedCa(w, 'ca', ca);
  w.targets.set('validatingwebhookconfigurations/hooks', vwc('hooks', { 'cert-manager.io/inject-ca-from': 'ns/ca' }));
  const { reconcile } = injectorReconciler(deps(w));
  t.deepEqual(await reconcile('validatingwebhookconfigurations/hooks'), { kind: 'done' });
  t.is(w.patches.length, 1);
  t.deepEqual((w.patches[0]!.patch.metadata as { resourceVersion: string }).resourceVersion, '7');
  t.deepEqual(patchedBundles(w.patches[0]!.patch), [['CN=ca-one'], ['CN=ca-one']]);
  t.is(w.injected, 1);
  t.deepEqual(w.events.map((e) => e.reason), ['CAInjected']);
  t.regex(w.events[0]!.message, /Certificate ns\/ca into 2 webhooks/);
});

test('a target that already holds the CA is not patched again', async (t) => {
  const w = world();
  const ca = await newCa('ca');
  withIssuedCa(w, 'ca', ca);
  w.targets.set('validatingwebhookconfigurations/hooks', vwc('hooks', { 'cert-manager.io/inject-ca-from': 'ns/ca' }, [b64(bundlePem([ca]))]));
  await injectorReconciler(deps(w)).reconcile('validatingwebhookconfigurations/hooks');
  t.deepEqual(w.patches, []);
  t.deepEqual(w.events, []);
});

test('a rotated CA is added beside the old one in a CRD conversion webhook', async (t) => {
  const w = world();
  const [oldCa, rotated] = await Promise.all([newCa('old'), newCa('new')]);
  withIssuedCa(w, 'ca', rotated);
  const crd: CustomResourceDefinition = {
    metadata: { name: 'things.example.com', resourceVersion: '3', annotations: { 'cert-manager.io/inject-ca-from': 'ns/ca' } },
    spec: { group: 'example.com', names: { plural: 'things', kind: 'Thing' }, conversion: { strategy: 'Webhook', webhook: { clientConfig: { url: 'https://127.0.0.1:1/convert', caBundle: b64(bundlePem([oldCa])) }, conversionReviewVersions: ['v1'] } } },
  };
  w.targets.set('customresourcedefinitions/things.example.com', crd);
  await injectorReconciler(deps(w)).reconcile('customresourcedefinitions/things.example.com');
  const patch = w.patches[0]!.patch as { spec: { conversion: { webhook: { clientConfig: { caBundle: string } } } } };
  t.deepEqual(parseBundle(unb64(patch.spec.conversion.webhook.clientConfig.caBundle)).map((c) => c.subject), ['CN=old', 'CN=new']);
});

test('inject-ca-from-secret reads a Secret no informer watches from the API server, and looks again later', async (t) => {
  const w = world();
  const ca = await newCa('direct');
  w.apiSecrets.set('ns/plain', { metadata: { name: 'plain', namespace: 'ns', annotations: { 'cert-manager.io/allow-direct-injection': 'true' } }, data: { 'ca.crt': b64(ca.toString()) } });
  const api: APIService = { metadata: { name: 'v1.example.com', resourceVersion: '1', annotations: { 'cert-manager.io/inject-ca-from-secret': 'ns/plain' } }, spec: { group: 'example.com', version: 'v1', service: { namespace: 'ns', name: 'api' } } };
  w.targets.set('apiservices/v1.example.com', api);
  const outcome = await injectorReconciler(deps(w)).reconcile('apiservices/v1.example.com');
  t.is(outcome.kind, 'requeueAfter');
  const patch = w.patches[0]!.patch as { spec: { caBundle: string } };
  t.deepEqual(parseBundle(unb64(patch.spec.caBundle)).map((c) => c.subject), ['CN=direct']);
});

test('a Secret without allow-direct-injection is refused with one Warning, however often it is read again', async (t) => {
  const w = world();
  const ca = await newCa('direct');
  w.apiSecrets.set('ns/plain', { metadata: { name: 'plain', namespace: 'ns' }, data: { 'ca.crt': b64(ca.toString()) } });
  w.targets.set('mutatingwebhookconfigurations/m', vwc('m', { 'cert-manager.io/inject-ca-from-secret': 'ns/plain' }));
  const { reconcile } = injectorReconciler(deps(w));
  for (let i = 0; i < 3; i++) t.is((await reconcile('mutatingwebhookconfigurations/m')).kind, 'requeueAfter', 'the Secret is not watched: it is read again later');
  t.deepEqual(w.patches, []);
  t.deepEqual(w.events.map((e) => `${e.type} ${e.reason}`), ['Warning DirectInjectionNotAllowed']);
  t.regex(w.events[0]!.message, /Secret ns\/plain does not allow direct injection; annotate it with cert-manager\.io\/allow-direct-injection: "true"/);
  t.is(w.refused, 1);
});

test('a fixed problem clears, and the same problem coming back is reported again', async (t) => {
  const w = world();
  const ca = await newCa('ca');
  w.targets.set('validatingwebhookconfigurations/v', vwc('v', { 'cert-manager.io/inject-ca-from': 'ns/missing' }));
  const { reconcile } = injectorReconciler(deps(w));
  await reconcile('validatingwebhookconfigurations/v');
  withIssuedCa(w, 'missing', ca);
  await reconcile('validatingwebhookconfigurations/v');
  w.certificates.delete('ns/missing');
  await reconcile('validatingwebhookconfigurations/v');
  t.deepEqual(w.events.map((e) => e.reason), ['CertificateNotFound', 'CAInjected', 'CertificateNotFound']);
});

test("a Secret that is not the named Certificate's is refused", async (t) => {
  const w = world();
  const ca = await newCa('ca');
  withIssuedCa(w, 'ca', ca, 'someone-else');
  w.targets.set('validatingwebhookconfigurations/v', vwc('v', { 'cert-manager.io/inject-ca-from': 'ns/ca' }));
  await injectorReconciler(deps(w)).reconcile('validatingwebhookconfigurations/v');
  t.deepEqual(w.patches, []);
  t.deepEqual(w.events.map((e) => e.reason), ['SecretNotOwnedByCertificate']);
});

test('inject-apiserver-ca injects the CA of the controller kubeconfig, and is refused when it has none', async (t) => {
  const ca = await newCa('apiserver');
  const w = world();
  w.targets.set('validatingwebhookconfigurations/v', vwc('v', { 'cert-manager.io/inject-apiserver-ca': 'true' }, [undefined]));
  await injectorReconciler(deps(w, [ca])).reconcile('validatingwebhookconfigurations/v');
  t.deepEqual(patchedBundles(w.patches[0]!.patch), [['CN=apiserver']]);
  const none = world();
  none.targets.set('validatingwebhookconfigurations/v', vwc('v', { 'cert-manager.io/inject-apiserver-ca': 'true' }));
  await injectorReconciler(deps(none)).reconcile('validatingwebhookconfigurations/v');
  t.deepEqual(none.events.map((e) => e.reason), ['NoAPIServerCA']);
});

test('a CRD without a conversion webhook and an APIService with insecureSkipTLSVerify are not injectable, and say why', async (t) => {
  const w = world();
  w.targets.set('customresourcedefinitions/plain.example.com', { metadata: { name: 'plain.example.com', annotations: { 'cert-manager.io/inject-apiserver-ca': 'true' } }, spec: { group: 'example.com', names: { plural: 'plain', kind: 'Plain' } } } as CustomResourceDefinition);
  w.targets.set('apiservices/v1.insecure.example.com', { metadata: { name: 'v1.insecure.example.com', annotations: { 'cert-manager.io/inject-apiserver-ca': 'true' } }, spec: { service: { namespace: 'ns', name: 'api' }, insecureSkipTLSVerify: true } } as APIService);
  const { reconcile } = injectorReconciler(deps(w, [await newCa('apiserver')]));
  await reconcile('customresourcedefinitions/plain.example.com');
  await reconcile('apiservices/v1.insecure.example.com');
  t.deepEqual(w.patches, []);
  t.deepEqual(w.events.map((e) => e.reason), ['NotInjectable', 'NotInjectable']);
  t.regex(w.events[0]!.message, /no conversion webhook/);
  t.regex(w.events[1]!.message, /insecureSkipTLSVerify/);
});

test('a patch that loses a race is recomputed once on the object read from the API server', async (t) => {
  const w = world();
  const ca = await newCa('ca');
  withIssuedCa(w, 'ca', ca);
  w.targets.set('validatingwebhookconfigurations/v', vwc('v', { 'cert-manager.io/inject-ca-from': 'ns/ca' }));
  w.conflictOnce = true;
  await injectorReconciler(deps(w)).reconcile('validatingwebhookconfigurations/v');
  t.is(w.patches.length, 1);
});

test('the index finds the targets that name a Certificate or a Secret, and forgets a target whose annotation is gone', (t) => {
  const index = new InjectorIndex();
  t.true(index.update('validatingwebhookconfigurations/a', { kind: 'Certificate', namespace: 'ns', name: 'ca' }));
  t.true(index.update('apiservices/b', { kind: 'Secret', namespace: 'ns', name: 'ca' }));
  t.false(index.update('customresourcedefinitions/c', undefined), 'a target asking for nothing is not queued');
  t.deepEqual(index.targetsOf('Certificate', 'ns', 'ca'), ['validatingwebhookconfigurations/a']);
  t.deepEqual(index.targetsOf('Secret', 'ns', 'ca'), ['apiservices/b']);
  t.true(index.update('validatingwebhookconfigurations/a', undefined), 'a target that stopped asking is looked at once more');
  t.deepEqual(index.targetsOf('Certificate', 'ns', 'ca'), []);
});

test('the target caches keep all of an annotated webhook configuration, only what injection reads of an annotated CRD, and only the metadata of a target that asks for nothing', (t) => {
  const annotated = vwc('hooks', { 'cert-manager.io/inject-ca-from': 'ns/ca' });
  const whole = structuredClone(annotated);
  trimTarget(Resources.validatingwebhookconfigurations)(annotated);
  t.deepEqual(annotated, whole);

  const crd = (annotations: Record<string, string>) => ({
    metadata: { name: 'things.example.com', annotations },
    spec: { group: 'example.com', names: { plural: 'things', kind: 'Thing' }, scope: 'Namespaced', versions: [{ name: 'v1', schema: { openAPIV3Schema: { type: 'object' } } }], conversion: { strategy: 'Webhook' } },
    status: { conditions: [] },
  });
  const kept = crd({ 'cert-manager.io/inject-apiserver-ca': 'true' });
  trimTarget(Resources.customresourcedefinitions)(kept);
  t.deepEqual(kept.spec as unknown, { group: 'example.com', names: { plural: 'things', kind: 'Thing' }, conversion: { strategy: 'Webhook' } });
  t.false('status' in kept);

  const plain = crd({ other: 'x' });
  trimTarget(Resources.customresourcedefinitions)(plain);
  t.deepEqual(plain as unknown, { metadata: { name: 'things.example.com', annotations: { other: 'x' } } });
  const hooks = vwc('other', {});
  trimTarget(Resources.mutatingwebhookconfigurations)(hooks);
  t.deepEqual(hooks as unknown, { metadata: { name: 'other', resourceVersion: '7', annotations: {} } });
});
