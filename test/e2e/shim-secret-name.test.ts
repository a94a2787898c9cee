/**
 * `--shim-default-secret-name=false` (the chart's `shim.defaultSecretName: false`, which drops
 * the cluster-wide `patch` on IngressRoutes): an annotated IngressRoute with no
 * `spec.tls.secretName` is not written to. Its owner gets a Warning Event on the route that names
 * the Secret certroute issues into and the line to add; the Certificate is still made.
 */
import test from 'ava';
import { annotatedIngressRoute, applyYaml, cleanUpFile, freshNamespace, kubectlJson, startController, waitFor, waitForLeader } from '../helpers/controller.ts';
import { kubectl } from '../env/stack.ts';

interface EventView {
  type: string;
  reason: string;
  message: string;
  involvedObject: { kind: string; name: string; namespace: string };
}

interface RouteView {
  metadata: { generation: number };
  spec: { tls?: { secretName?: string } };
}

test.after.always(async () => {
  await cleanUpFile();
});

test('with shim.defaultSecretName off, a route without spec.tls.secretName is left alone and gets a SecretNameNotSet Warning naming the fix', async (t) => {
  const controller = await startController(['--shim-default-secret-name=false']);
  await waitForLeader(controller);
  const ns = await freshNamespace('shimname');
  // No ACME issuance is needed to see the shim's decision: the issuer need not exist.
  await applyYaml(annotatedIngressRoute({ namespace: ns, name: 'shop', host: `shop.${ns}.test`, issuer: `absent-${ns}`, backendPort: 9, tls: {} }));

  // Positive evidence that the shim processed the route: its Certificate, and the Event.
  const certificate = await waitFor('the Certificate the shim makes', async () =>
    (await kubectlJson<{ items: Array<{ metadata: { name: string }; spec: { secretName: string } }> }>(['-n', ns, 'get', 'certificates'])).items[0], 30_000);
  t.is(certificate.spec.secretName, 'shop-tls');
  const warning = await waitFor('a SecretNameNotSet Warning on the route', async () =>
    (await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events', '--field-selector', 'reason=SecretNameNotSet'])).items[0], 30_000);
  t.is(warning.type, 'Warning');
  const { kind, name, namespace } = warning.involvedObject;
  t.deepEqual({ kind, name, namespace }, { kind: 'IngressRoute', name: 'shop', namespace: ns }, 'on the route');
  t.regex(warning.message, /spec\.tls\.secretName is empty/, 'says what is wrong');
  t.regex(warning.message, /Secret shop-tls/, 'names the Secret certroute issues into');
  t.regex(warning.message, /set spec\.tls\.secretName: shop-tls$/, 'and the line to add');
  const { stdout: table } = await kubectl(['-n', ns, 'get', 'events', '--field-selector', 'type=Warning']);
  t.regex(table, /Warning\s+SecretNameNotSet\s+ingressroute\/shop\s+.*set spec\.tls\.secretName: shop-tls/, 'kubectl get events shows it, naming the route');

  const route = await kubectlJson<RouteView>(['-n', ns, 'get', 'ingressroute', 'shop']);
  t.is(route.spec.tls?.secretName, undefined, 'the route was not written to');
  t.is(route.metadata.generation, 1);
});
