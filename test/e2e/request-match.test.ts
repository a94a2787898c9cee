/**
 * One rule decides whether a CertificateRequest still asks for what its
 * Certificate asks for. A spec edit that asks for the same certificate in
 * other words must leave an ACME request in flight alone: deleting it would
 * abandon its order at the CA and start again.
 */
import test from 'ava';
import { applyYaml, cleanUpFile, freshNamespace, kubectlJson, startController, waitFor, type CertificateView } from '../helpers/controller.ts';
import { certificateYaml, deleteIssuers, newIssuer } from '../helpers/issuance.ts';

interface ObjectView {
  metadata: { name: string; uid: string; ownerReferences?: Array<{ uid: string }> };
  status?: { url?: string; state?: string };
}

const certificate = (ns: string, issuer: string, duration: string): string => certificateYaml(ns, 'held', ['held.request-match.test'], issuer, { duration });

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
});

test('re-spelling spec.duration 2160h0m0s as 2160h keeps the in-flight CertificateRequest, its Order and the revision', async (t) => {
  const ns = await freshNamespace('request-match');
  // The self-check asks a closed port, so the challenge is never accepted
  // and the order waits at the CA for as long as the test needs.
  await startController(['--self-check-address=http://127.0.0.1:9']);
  const issuer = await newIssuer('pebble-match'); // a fresh ACME account
  await applyYaml(certificate(ns, issuer, '2160h0m0s'));
  const order = await waitFor('the Order to carry its ACME URL', async () => {
    const list = await kubectlJson<{ items: ObjectView[] }>(['-n', ns, 'get', 'orders']);
    return list.items.find((o) => o.status?.url);
  }, 60_000, 50);
  const request = await kubectlJson<ObjectView>(['-n', ns, 'get', 'certificaterequest', 'held-1']);
  t.is(order.metadata.ownerReferences?.[0]?.uid, request.metadata.uid, 'the Order belongs to the request');
  const before = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'held']);

  await applyYaml(certificate(ns, issuer, '2160h'));
  const edited = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'held']);
  t.true(edited.metadata.generation > before.metadata.generation, 'the API server saw a spec change');

  // Positive evidence that the controller acted on the new generation:
  // either it stamped it on the Issuing condition, or it replaced the request.
  const after = await waitFor(`the controller to process generation ${edited.metadata.generation}`, async () => {
    const cert = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'held']);
    const issuing = cert.status?.conditions?.find((c) => c.type === 'Issuing');
    if ((issuing?.observedGeneration ?? 0) >= edited.metadata.generation) return cert;
    const requests = await kubectlJson<{ items: ObjectView[] }>(['-n', ns, 'get', 'certificaterequests']);
    return requests.items.some((r) => r.metadata.uid === request.metadata.uid) ? undefined : cert;
  }, 60_000, 50);

  const requests = (await kubectlJson<{ items: ObjectView[] }>(['-n', ns, 'get', 'certificaterequests'])).items;
  t.deepEqual(requests.map((r) => r.metadata.uid), [request.metadata.uid], 'the same CertificateRequest, not a replacement');
  const orders = (await kubectlJson<{ items: ObjectView[] }>(['-n', ns, 'get', 'orders'])).items;
  t.deepEqual(orders.map((o) => o.metadata.uid), [order.metadata.uid], 'the same Order, not a second one');
  t.is(orders[0]?.status?.url, order.status?.url, 'the same order at the CA');
  t.is(after.status?.revision, before.status?.revision, 'the revision did not move');
  t.is(after.status?.conditions?.find((c) => c.type === 'Issuing')?.status, 'True', 'the issuance is still under way');
});
