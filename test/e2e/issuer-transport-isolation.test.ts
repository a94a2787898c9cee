/**
 * An issuer's TLS settings are its own. Two attacks of a tenant who may write a namespaced Issuer:
 * - `skipTLSVerify: true` pointed at the origin a ClusterIssuer uses: when TLS settings were kept
 *   per CA origin, process-wide, the last issuer evaluated won, and verification went off for the
 *   ClusterIssuer too. Here the origin is a stand-in whose certificate nobody trusts (a
 *   man in the middle): the ClusterIssuer must keep refusing it.
 * - a bogus `caBundle` pointed at the ClusterIssuer's CA: it must not break the ClusterIssuer,
 *   which keeps issuing.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectl, readEnv } from '../env/stack.ts';
import { startAcmeProxy, type AcmeProxy } from '../helpers/acme-proxy.ts';
import {
  cleanUpFile, applyYaml, freshNamespace, kubectlJson, startController, waitFor, waitForCertificateRevision, type ControllerProcess,
} from '../helpers/controller.ts';
import { applyIssuer, certificateYaml, deleteIssuer, freshIssuerName, waitIssuerReady } from '../helpers/issuance.ts';

const env = readEnv();
let controller: ControllerProcess | undefined;
let mitm: AcmeProxy | undefined;
const clusterIssuers: string[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'certroute-mitm-'));

test.after.always(async () => {
  await cleanUpFile();
  await mitm?.close();
  for (const i of clusterIssuers) await deleteIssuer(i);
  rmSync(tmp, { recursive: true, force: true });
});

/** A self-signed certificate for 127.0.0.1 that no issuer's caBundle trusts. */
function untrustedCertificate(): { cert: string; key: string } {
  const cert = join(tmp, 'mitm.crt');
  const key = join(tmp, 'mitm.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=mitm', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

interface IssuerView { metadata: { generation: number }; status?: { conditions?: Array<{ type: string; status: string; message?: string; observedGeneration?: number }> } }
const readyOf = (i: IssuerView) => i.status?.conditions?.find((c) => c.type === 'Ready');

test('a tenant Issuer with skipTLSVerify or a bogus caBundle changes nothing for a ClusterIssuer on the same CA', async (t) => {
  controller = await startController();
  const untrusted = untrustedCertificate();
  mitm = await startAcmeProxy(env, { tls: untrusted });

  // The ClusterIssuer trusts the stack's CA only: the stand-in must fail its TLS check.
  const victim = freshIssuerName('victim');
  clusterIssuers.push(victim);
  await applyIssuer(victim, mitm.directory);
  const refused = await waitFor('the ClusterIssuer to refuse the untrusted certificate', async () => {
    const r = readyOf(await kubectlJson<IssuerView>(['get', 'clusterissuer', victim]));
    return r?.status === 'False' ? r : undefined;
  }, 60_000);
  t.regex(refused.message ?? '', /certificate|self.signed|DEPTH_ZERO|unable to verify/i);

  // The tenant turns verification off for the same origin; its own Issuer gets through.
  const tenant = await freshNamespace('tenant-tls');
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: insecure, namespace: ${tenant}}
spec:
  acme:
    server: ${mitm.directory}
    skipTLSVerify: true
    privateKeySecretRef: {name: insecure-account}
    solvers: [{http01: {ingress: {}}}]
`);
  await waitFor('the tenant Issuer Ready (verification off, for it alone)', async () => readyOf(await kubectlJson<IssuerView>(['-n', tenant, 'get', 'issuer', 'insecure']))?.status === 'True', 60_000);

  // The ClusterIssuer is evaluated again (a spec change) and still refuses the stand-in.
  await kubectl(['patch', 'clusterissuer', victim, '--type=merge', '-p', JSON.stringify({ spec: { acme: { email: 'again@example.com' } } })]);
  const again = await waitFor('the ClusterIssuer to be evaluated again', async () => {
    const i = await kubectlJson<IssuerView>(['get', 'clusterissuer', victim]);
    const r = readyOf(i);
    return r?.observedGeneration === i.metadata.generation ? r : undefined;
  }, 60_000);
  t.is(again.status, 'False', 'the tenant\'s skipTLSVerify did not reach the ClusterIssuer');

  // A bogus caBundle for the real CA, beside a ClusterIssuer that uses the right one.
  const friendly = freshIssuerName('friendly');
  clusterIssuers.push(friendly);
  await applyIssuer(friendly);
  await waitIssuerReady(friendly);
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: bogus, namespace: ${tenant}}
spec:
  acme:
    server: ${env.pebble.directory}
    caBundle: ${Buffer.from(untrusted.cert).toString('base64')}
    privateKeySecretRef: {name: bogus-account}
    solvers: [{http01: {ingress: {}}}]
`);
  await waitFor('the bogus Issuer to fail on its own caBundle', async () => readyOf(await kubectlJson<IssuerView>(['-n', tenant, 'get', 'issuer', 'bogus']))?.status === 'False', 60_000);
  const ns = await freshNamespace('friendly-tls');
  await applyYaml(certificateYaml(ns, 'still-trusted', [`still-trusted.${ns}.test`], friendly));
  const issued = await waitForCertificateRevision(ns, 'still-trusted', 1, 90_000);
  t.is(issued.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True', 'the ClusterIssuer on the same CA kept issuing');
});
