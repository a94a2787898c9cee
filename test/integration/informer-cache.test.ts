/**
 * What the controller's caches keep of an object, against the real kube-apiserver: a Certificate
 * applied with `kubectl apply` arrives with managedFields and kubectl's last-applied annotation
 * (a second copy of the whole object); the cache keeps neither, and keeps every other annotation.
 * The object on the API server is left as it was. And a list comes in pages, trimmed as they come.
 */
import test from 'ava';
import type { Certificate, Secret } from '../../src/api/types.ts';
import { Resources } from '../../src/api/types.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { Informer, LAST_APPLIED_ANNOTATION } from '../../src/kube/informer.ts';
import { createLogger } from '../../src/log.ts';
import { kubeconfigFile } from '../env/paths.ts';
import { applyYaml, cleanUpFile, freshNamespace, waitFor } from '../helpers/controller.ts';

const client = KubeClient.fromKubeconfig(kubeconfigFile);
let ns = '';
let informer: Informer<Certificate> | undefined;

test.before(async () => {
  ns = await freshNamespace('informer-cache');
});

// The objects go first: the stack runs no namespace controller, so a deleted namespace stays
// Terminating with its objects, and a later file's controller would try to issue for them.
test.after.always(async () => {
  await informer?.stop();
  await cleanUpFile();
});

test('the Certificate cache drops managedFields and the last-applied annotation of an applied Certificate, and keeps its other annotations', async (t) => {
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: applied
  namespace: ${ns}
  annotations: {team.example/owner: payments}
spec:
  secretName: applied-tls
  dnsNames: [applied.example.test]
  issuerRef: {name: nowhere, kind: Issuer}
`);
  const live = await client.get<Certificate>(Resources.certificates, ns, 'applied');
  t.truthy(live.metadata.annotations?.[LAST_APPLIED_ANNOTATION], 'kubectl apply wrote its annotation on the API server');
  t.truthy((live.metadata as { managedFields?: unknown[] }).managedFields?.length, 'and the API server keeps managedFields');

  informer = new Informer<Certificate>(client, Resources.certificates, { namespace: ns, logger: createLogger('silent') });
  await informer.start();
  const cached = await waitFor('the Certificate in the cache', async () => informer?.get(ns, 'applied'), 30_000);
  t.is(cached.metadata.annotations?.[LAST_APPLIED_ANNOTATION], undefined, 'no last-applied copy in the cache');
  t.false('managedFields' in cached.metadata, 'no managedFields in the cache');
  t.is(cached.metadata.annotations?.['team.example/owner'], 'payments', 'other annotations are kept');
  t.deepEqual(cached.spec.dnsNames, ['applied.example.test']);

  const after = await client.get<Certificate>(Resources.certificates, ns, 'applied');
  t.is(after.metadata.annotations?.[LAST_APPLIED_ANNOTATION], live.metadata.annotations?.[LAST_APPLIED_ANNOTATION], 'the object on the API server is untouched');
});

test('a list comes in pages, each item handed over as its page arrives, and the pages add up to every object', async (t) => {
  const names = ['p1', 'p2', 'p3', 'p4', 'p5'];
  for (const name of names) {
    await client.create<Secret>(Resources.secrets, { metadata: { name, namespace: ns, labels: { 'informer-cache.test/paged': 'yes' } }, type: 'Opaque', data: { filler: Buffer.from(name).toString('base64') } });
  }
  const before = client.requestCounts.list;
  const seen: string[] = [];
  const res = await client.list<Secret>(Resources.secrets, ns, 'informer-cache.test/paged=yes', {
    pageSize: 2,
    each: (item) => {
      seen.push(item.metadata.name);
      return { ...item, data: {} };
    },
  });
  t.is(client.requestCounts.list - before, 3, 'five objects in pages of two are three requests');
  t.deepEqual(seen.sort(), names, 'every object passed through `each`');
  t.deepEqual(res.items.map((i) => i.metadata.name).sort(), names);
  t.true(res.items.every((i) => Object.keys(i.data ?? {}).length === 0), 'the list holds what `each` returned');
  t.regex(res.resourceVersion, /^\d+$/, 'with the snapshot resourceVersion a watch resumes from');
});

test('a watch asks the server to end it, and resolves when it does, so the cache resumes from the last version', async (t) => {
  const { resourceVersion } = await client.list<Secret>(Resources.secrets, ns);
  const seen: string[] = [];
  // timeoutSeconds: 1 stands for the 5 to 10 minutes a cache's watch asks for.
  await client.watch(Resources.secrets, ns, { resourceVersion, timeoutSeconds: 1 }, (ev) => void seen.push(ev.type));
  t.false(seen.includes('ERROR'), `the server ended the watch cleanly: ${seen.join(', ') || 'no events'}`);
});
