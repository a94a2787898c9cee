/**
 * What a Secret holds when its Certificate moves to another issuer. A SelfSigned issuer writes
 * ca.crt; the ACME issuer that replaces it gives no CA. The old ca.crt must go, or clients that
 * trust ca.crt would keep trusting the previous root beside the new chain. A key the user added
 * to the Secret stays: the certificate is merged into the Secret as the API server has it.
 */
import test from 'ava';
import { kubectl } from '../env/stack.ts';
import {
  cleanUpFile, applyYaml, freshNamespace, kubectlJson, startController, waitForCertificateRevision, type ControllerProcess, type SecretView,
} from '../helpers/controller.ts';
import { applyIssuer, deleteIssuer, freshIssuerName, waitIssuerReady } from '../helpers/issuance.ts';

let controller: ControllerProcess | undefined;
let issuer = '';

test.after.always(async () => {
  await cleanUpFile();
  if (issuer) await deleteIssuer(issuer);
});

test('moving a Certificate from a SelfSigned issuer to ACME removes the old ca.crt and keeps the user\'s own keys', async (t) => {
  controller = await startController();
  issuer = freshIssuerName('ca-switch');
  await applyIssuer(issuer);
  await waitIssuerReady(issuer);
  const ns = await freshNamespace('ca-switch');
  const host = `switch.${ns}.test`;
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned, namespace: ${ns}}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: switch, namespace: ${ns}}
spec:
  secretName: switch-tls
  dnsNames: [${host}]
  issuerRef: {name: selfsigned, kind: Issuer}
`);
  await waitForCertificateRevision(ns, 'switch', 1, 60_000);
  const first = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'switch-tls']);
  t.truthy(first.data['ca.crt'], 'the SelfSigned issuer wrote ca.crt');

  // The user keeps something of their own in the Secret (under a key that is no cert-manager
  // output: keystore.p12 and the like follow spec.keystores, and go when it asks for none).
  await kubectl(['-n', ns, 'patch', 'secret', 'switch-tls', '--type=merge', '-p', JSON.stringify({ data: { 'client-settings.conf': Buffer.from('mine').toString('base64') } })]);
  await kubectl(['-n', ns, 'patch', 'certificate', 'switch', '--type=merge', '-p', JSON.stringify({ spec: { issuerRef: { name: issuer, kind: 'ClusterIssuer' } } })]);
  await waitForCertificateRevision(ns, 'switch', 2, 90_000);

  const second = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'switch-tls']);
  t.not(second.data['tls.crt'], first.data['tls.crt'], 'the ACME certificate replaced the self-signed one');
  t.is(second.data['ca.crt'], undefined, 'no ca.crt from the previous issuer');
  t.is(Buffer.from(second.data['client-settings.conf'] ?? '', 'base64').toString(), 'mine', 'the user\'s key survived');
  t.is(second.metadata.annotations?.['cert-manager.io/issuer-name'], issuer);
});
