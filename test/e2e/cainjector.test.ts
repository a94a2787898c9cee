/**
 * CA injection as cert-manager's cainjector does it (issue 17), proven by the API server itself:
 * it calls a webhook, a CRD conversion webhook and an aggregated API on a loopback HTTPS server
 * that serves a leaf of a certroute-issued CA, trusting only the caBundle certroute injected.
 * Each target is checked before and after the CA is rotated: during the rotation the bundle holds
 * the old and the new CA, so the old leaf keeps working, and the new leaf works too.
 *
 * Webhooks and the conversion webhook are reached by `url: https://127.0.0.1:<port>/…`. The
 * APIService needs a Service: an ExternalName Service to `localhost` (the stack's way to reach
 * a local process, see test/env/WIRING.md) which kube-apiserver's aggregator dials directly,
 * checking the serving certificate for `<service>.<namespace>.svc`.
 */
import test, { type ExecutionContext } from 'ava';
import { freePorts } from '../env/ports.ts';
import { exposeLocalPort, kubectl, loadKubeConfig, readEnv } from '../env/stack.ts';
import {
  bundleFingerprints, CA_CERTIFICATE, deleteClusterObject, LEAF_CERTIFICATE, renew, servingPki, startTlsBackend, waitForBundle, type Handler, type KeyPair, type TlsBackend,
} from '../helpers/cainjector.ts';
import { applyYaml, cleanUpFile, freshNamespace, kubectlJson, readLog, startController, waitFor, type ControllerProcess } from '../helpers/controller.ts';

let controller: ControllerProcess;
let metricsPort: number;

test.before(async () => {
  [metricsPort] = (await freePorts(1)) as [number];
  controller = await startController([`--metrics-port=${metricsPort}`]);
});

test.after.always(async () => {
  await cleanUpFile();
});

/** Answers admission reviews (allowed), conversion reviews (converted) and a tiny aggregated API. */
const handler = (group: string): Handler => (path, body) => {
  if (path === '/validate') {
    const review = body as { request: { uid: string } };
    return { body: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } } };
  }
  if (path === '/convert') {
    const review = body as { request: { uid: string; desiredAPIVersion: string; objects: Array<Record<string, unknown>> } };
    const convertedObjects = review.request.objects.map((o) => ({ ...o, apiVersion: review.request.desiredAPIVersion }));
    return { body: { apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', response: { uid: review.request.uid, convertedObjects, result: { status: 'Success' } } } };
  }
  if (path === `/apis/${group}/v1alpha1`) {
    return { body: { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: `${group}/v1alpha1`, resources: [{ name: 'gadgets', singularName: 'gadget', namespaced: false, kind: 'Gadget', verbs: ['list'] }] } };
  }
  if (path === `/apis/${group}/v1alpha1/gadgets`) return { body: { kind: 'GadgetList', apiVersion: `${group}/v1alpha1`, metadata: {}, items: [] } };
  return { status: 404, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404 } };
};

/** The head of a cluster-scoped target's manifest, with its annotations. */
const head = (apiVersion: string, kind: string, name: string, annotations: string): string => `apiVersion: ${apiVersion}
kind: ${kind}
metadata:
  name: ${name}
  annotations: {${annotations}}
`;

/** A ValidatingWebhookConfiguration whose one webhook reviews ConfigMap creations in `ns`. */
const webhookYaml = (o: { name: string; ns: string; port: number; annotations: string }): string => `${head('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', o.name, o.annotations)}webhooks:
  - name: configmaps.cainject.test
    clientConfig: {url: "https://127.0.0.1:${o.port}/validate"}
    rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${o.ns}}}
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: [v1]
    timeoutSeconds: 5
`;

interface Scenario {
  ns: string;
  backend: TlsBackend;
  ca: () => Promise<KeyPair>;
  leaf: () => Promise<KeyPair>;
}

async function scenario(t: ExecutionContext, prefix: string, dnsNames: (ns: string) => string[] = () => []): Promise<Scenario> {
  const ns = await freshNamespace(prefix);
  const pki = await servingPki(ns, dnsNames(ns));
  const backend = await startTlsBackend(await pki.leaf(), handler(`${ns}.cainject.test`));
  t.teardown(() => backend.close());
  return { ns, backend, ...pki };
}

/**
 * The rotation every test goes through, around `call` (which makes the API server call the
 * backend and returns once it succeeded). Before: the first CA is injected, the first leaf is
 * accepted. After the CA is renewed the bundle holds both CAs; the new leaf is accepted, which
 * shows the API server uses the new bundle, and then the old leaf is accepted again by that same
 * bundle: a server that has not picked up its new leaf yet keeps being called. Each call is
 * checked to have been served with the expected leaf, on a connection opened after the switch.
 */
async function throughRotation(t: ExecutionContext, s: Scenario, readBundle: () => Promise<string | undefined>, call: (attempt: string) => Promise<void>): Promise<void> {
  const ca1 = await s.ca();
  const leaf1 = await s.leaf();
  await waitForBundle('the injected bundle', readBundle, [ca1]);
  const servedWith = async (attempt: string, leaf: KeyPair) => {
    s.backend.use(leaf);
    const before = s.backend.requests.length;
    await call(attempt);
    const mine = s.backend.requests.slice(before).filter((r) => r.servedSerial === leaf.x509.serialNumber);
    t.true(mine.length > 0, `${attempt}: the API server's request was served with leaf ${leaf.x509.serialNumber}`);
  };
  await servedWith('before the rotation', leaf1);

  await renew(s.ns, CA_CERTIFICATE, 2);
  const ca2 = await s.ca();
  t.not(ca2.x509.fingerprint256, ca1.x509.fingerprint256, 'the renewed CA is a new certificate');
  const renewed = Date.now();
  await waitForBundle('the bundle during the rotation', readBundle, [ca1, ca2]);
  t.log(`the renewed CA was in the bundle ${Date.now() - renewed} ms after the renewed Certificate was seen Ready`);
  await renew(s.ns, LEAF_CERTIFICATE, 2);
  const leaf2 = await s.leaf();
  t.true(leaf2.x509.checkIssued(ca2.x509) && leaf2.x509.verify(ca2.x509.publicKey), 'the new leaf is signed by the new CA');
  t.false(leaf2.x509.verify(ca1.x509.publicKey), 'and not by the old one');
  await servedWith('after the rotation, with the new leaf', leaf2);
  await servedWith('after the rotation, with the old leaf still served', leaf1);
  t.deepEqual(bundleFingerprints(await readBundle()), [ca1.x509.fingerprint256, ca2.x509.fingerprint256], 'the old CA stays until it expires, as cert-manager keeps it');
}

test('a ValidatingWebhookConfiguration annotated with inject-ca-from gets the CA, and the API server calls the webhook before and after the CA is rotated', async (t) => {
  const s = await scenario(t, 'inject-vwc');
  const name = `${s.ns}-hooks`;
  t.teardown(() => deleteClusterObject('validatingwebhookconfiguration', name));
  const webhook = (annotations: string) => webhookYaml({ name, ns: s.ns, port: s.backend.port, annotations });
  const create = (cm: string) => kubectl(['-n', s.ns, 'create', 'configmap', cm]);
  // Without the annotation the API server cannot verify the backend, and the Fail policy refuses.
  await applyYaml(webhook(''));
  let refused = 0;
  await waitFor('the API server to call the webhook and fail its TLS check', async () => {
    try {
      await create(`refused-${++refused}`);
      return false;
    } catch (err) {
      return /x509|certificate|tls/i.test((err as Error).message);
    }
  }, 30_000, 300);
  t.deepEqual(s.backend.requests.filter((r) => r.path === '/validate'), [], 'no admission request got through without the CA');

  await applyYaml(webhook(`cert-manager.io/inject-ca-from: ${s.ns}/${CA_CERTIFICATE}`));
  let n = 0;
  const readBundle = async () => (await kubectlJson<{ webhooks: Array<{ clientConfig: { caBundle?: string } }> }>(['get', 'validatingwebhookconfiguration', name])).webhooks[0]?.clientConfig.caBundle;
  await throughRotation(t, s, readBundle, async (attempt) => {
    const cm = `cm-${++n}`;
    await waitFor(`ConfigMap ${cm} to be admitted ${attempt}`, async () => {
      await create(cm);
      return true;
    }, 30_000, 300);
    const reviewed = s.backend.requests.some((r) => r.path === '/validate' && (r.body as { request: { name?: string } }).request.name === cm);
    t.true(reviewed, `the webhook reviewed ConfigMap ${cm} ${attempt}`);
  });

  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const injected = new RegExp(`^certroute_ca_injections_total\\{kind="ValidatingWebhookConfiguration",name="${name}",source_kind="Certificate",source="${s.ns}/${CA_CERTIFICATE}"\\} (\\d+)$`, 'm').exec(metrics);
  t.true(Number(injected?.[1]) >= 2, 'the metric counts the first injection and the one that added the new CA');
  const lines = readLog(controller).split('\n').filter((l) => l.includes('"msg":"injected CA"') && l.includes(`"target":"ValidatingWebhookConfiguration/${name}"`));
  t.true(lines.some((l) => l.includes(`"source":"Certificate ${s.ns}/${CA_CERTIFICATE}"`) && l.includes('"into":"1 webhook"') && l.includes('"bundleCertificates":2')), 'a log line says what was injected where');
});

test('a CRD conversion webhook annotated with inject-ca-from gets the CA, and the API server converts through it before and after the CA is rotated', async (t) => {
  const s = await scenario(t, 'inject-crd');
  const group = `${s.ns}.cainject.test`;
  const crd = `widgets.${group}`;
  t.teardown(() => deleteClusterObject('customresourcedefinition', crd));
  const version = (v: string, storage: boolean) => `    - name: ${v}
      served: true
      storage: ${storage}
      schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object, x-kubernetes-preserve-unknown-fields: true}}}}`;
  await applyYaml(`${head('apiextensions.k8s.io/v1', 'CustomResourceDefinition', crd, `cert-manager.io/inject-ca-from: ${s.ns}/${CA_CERTIFICATE}`)}spec:
  group: ${group}
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
${version('v1', true)}
${version('v2', false)}
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: [v1]
      clientConfig: {url: "https://127.0.0.1:${s.backend.port}/convert"}
`);
  await kubectl(['wait', '--for=condition=Established', `crd/${crd}`, '--timeout=30s']);
  await waitFor('the Widget kind to be served', async () => {
    await kubectl(['apply', '-f', '-'], { input: `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"w","namespace":"${s.ns}"},"spec":{"size":3}}` });
    return true;
  }, 30_000, 300);
  const readBundle = async () => (await kubectlJson<{ spec: { conversion: { webhook: { clientConfig: { caBundle?: string } } } } }>(['get', 'crd', crd])).spec.conversion.webhook.clientConfig.caBundle;
  await throughRotation(t, s, readBundle, async (attempt) => {
    const w = await waitFor(`the Widget read as v2 ${attempt}`, async () => JSON.parse((await kubectl(['get', '--raw', `/apis/${group}/v2/namespaces/${s.ns}/widgets/w`])).stdout) as { apiVersion: string; spec: { size: number } }, 30_000, 300);
    t.is(w.apiVersion, `${group}/v2`);
    t.is(w.spec.size, 3);
  });
  t.true(s.backend.requests.some((r) => r.path === '/convert'), 'the conversions went through the webhook');
});

test('an APIService annotated with inject-ca-from gets the CA, and kubectl get --raw reaches the aggregated API before and after the CA is rotated', async (t) => {
  const s = await scenario(t, 'inject-api', (ns) => [`aggregated.${ns}.svc`]);
  const group = `${s.ns}.cainject.test`;
  const apiService = `v1alpha1.${group}`;
  t.teardown(() => deleteClusterObject('apiservice', apiService));
  await exposeLocalPort(loadKubeConfig(readEnv().kubeconfig), { namespace: s.ns, name: 'aggregated', port: s.backend.port });
  await applyYaml(`${head('apiregistration.k8s.io/v1', 'APIService', apiService, `cert-manager.io/inject-ca-from: ${s.ns}/${CA_CERTIFICATE}`)}spec:
  group: ${group}
  version: v1alpha1
  service: {namespace: ${s.ns}, name: aggregated, port: ${s.backend.port}}
  groupPriorityMinimum: 1000
  versionPriority: 15
`);
  const readBundle = async () => (await kubectlJson<{ spec: { caBundle?: string } }>(['get', 'apiservice', apiService])).spec.caBundle;
  await throughRotation(t, s, readBundle, async (attempt) => {
    const list = await waitFor(`kubectl get --raw through the aggregated API ${attempt}`, async () => JSON.parse((await kubectl(['get', '--raw', `/apis/${group}/v1alpha1/gadgets`])).stdout) as { kind: string }, 60_000, 300);
    t.is(list.kind, 'GadgetList');
  });
});

interface EventView {
  reason: string;
  type: string;
  message: string;
  count?: number;
}

test('inject-ca-from-secret naming a Secret without allow-direct-injection is refused with one Warning Event, and nothing is injected', async (t) => {
  const s = await scenario(t, 'inject-deny');
  const name = `${s.ns}-direct`;
  t.teardown(() => deleteClusterObject('validatingwebhookconfiguration', name));
  // A Secret certroute did not issue, with a CA in it, that does not allow injection.
  const ca = await s.ca();
  await kubectl(['-n', s.ns, 'create', 'secret', 'generic', 'plain-ca', `--from-literal=ca.crt=${ca.cert}`]);
  await applyYaml(webhookYaml({ name, ns: s.ns, port: s.backend.port, annotations: `cert-manager.io/inject-ca-from-secret: ${s.ns}/plain-ca` }));
  const events = async () => (await kubectlJson<{ items: EventView[] }>(['-n', 'default', 'get', 'events', '--field-selector', `involvedObject.kind=ValidatingWebhookConfiguration,involvedObject.name=${name}`])).items;
  const [warning] = await waitFor('a Warning Event on the ValidatingWebhookConfiguration', async () => {
    const found = (await events()).filter((e) => e.type === 'Warning');
    return found.length > 0 ? found : undefined;
  }, 30_000, 200);
  t.is(warning?.reason, 'DirectInjectionNotAllowed');
  t.regex(warning?.message ?? '', new RegExp(`Secret ${s.ns}/plain-ca does not allow direct injection; annotate it with cert-manager.io/allow-direct-injection: "true"`));

  // Touch the target and wait for the controller to have looked at it again: still one Event.
  const reconciled = () => readLog(controller).split('\n').filter((l) => l.includes('"msg":"reconciled"') && l.includes(`"key":"validatingwebhookconfigurations/${name}"`)).length;
  const before = reconciled();
  await kubectl(['annotate', 'validatingwebhookconfiguration', name, 'touched=1']);
  await waitFor('the controller to reconcile the touched target', async () => reconciled() > before, 30_000, 200);
  const after = await events();
  t.deepEqual(after.map((e) => `${e.type} ${e.reason} ${e.count ?? 1}`), ['Warning DirectInjectionNotAllowed 1'], 'reported once, not again on every pass');
  const vwc = await kubectlJson<{ webhooks: Array<{ clientConfig: { caBundle?: string } }> }>(['get', 'validatingwebhookconfiguration', name]);
  t.is(vwc.webhooks[0]?.clientConfig.caBundle, undefined, 'nothing was injected');

  // Allowing it, then touching the target, injects the Secret's CA.
  await kubectl(['-n', s.ns, 'annotate', 'secret', 'plain-ca', 'cert-manager.io/allow-direct-injection=true']);
  await kubectl(['annotate', 'validatingwebhookconfiguration', name, 'touched=2', '--overwrite']);
  await waitForBundle('the bundle from the allowed Secret', async () => (await kubectlJson<typeof vwc>(['get', 'validatingwebhookconfiguration', name])).webhooks[0]?.clientConfig.caBundle, [ca]);
});
