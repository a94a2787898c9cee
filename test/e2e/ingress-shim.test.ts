/**
 * The Ingress shim as a user meets it (issue 15 §1): annotate a `networking.k8s.io/v1` Ingress as
 * cert-manager's documentation does and each spec.tls entry gets a Certificate, which Traefik's
 * kubernetesIngress provider serves; Ingresses of a class Traefik does not serve are left alone;
 * and what cannot be used is a Warning on the Ingress that names the entry and the fix. HTTP-01
 * goes through the one responder: no Ingress per challenge.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { stringify } from 'yaml';
import { exposeLocalPort, kubectl, loadKubeConfig, readEnv } from '../env/stack.ts';
import { applyYaml, cleanUpFile, freshNamespace, kubectlJson, secretPem, startController, waitFor, waitForCertificateRevision, waitForLeader, type ControllerProcess, type SecretView } from '../helpers/controller.ts';
import { applyIssuer, deleteIssuer, freshIssuerName, waitIssuerReady } from '../helpers/issuance.ts';
import { serveLocal, type LocalServer } from '../helpers/tls.ts';
import { caughtUp, uniqueHost, viaWebsecure, waitForServed } from '../helpers/wiring.ts';

const env = readEnv();
// Also the default issuer (--default-issuer-name), for kubernetes.io/tls-acme.
const issuer = freshIssuerName('pebble-ingress');
let controller: ControllerProcess;
let backend: LocalServer;

test.before(async () => {
  backend = await serveLocal((_req, res) => res.end('hello from the backend\n'));
  // The stack's Traefik serves the IngressClass `traefik`; `internal` stands for a second class
  // the operator lists, and `nginx` for another controller's.
  controller = await startController(['--ingress-classes=traefik,internal', `--default-issuer-name=${issuer}`, '--default-issuer-kind=ClusterIssuer']);
  await waitForLeader(controller);
  await applyIssuer(issuer);
  await waitIssuerReady(issuer);
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuer(issuer);
  await backend?.close();
});

interface EventView { type: string; reason: string; message: string }
interface CertificateView {
  metadata: { name: string; ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }> };
  spec: { dnsNames?: string[]; secretName: string };
}

const ingressShim = { resource: 'ingress.networking.k8s.io', shim: 'ingress-shim' };

async function namespaceWithBackend(prefix: string): Promise<string> {
  const ns = await freshNamespace(prefix);
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: backend.port });
  return ns;
}

/** An Ingress as cert-manager's documentation writes one, with a rule per host to the backend. */
function ingressYaml(ns: string, name: string, tls: Array<{ hosts?: string[]; secretName?: string }>, opts: { className?: string; annotations?: Record<string, string> } = {}): string {
  const hosts = [...new Set(tls.flatMap((e) => e.hosts ?? []))];
  return stringify({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: ns, annotations: opts.annotations ?? { 'cert-manager.io/cluster-issuer': issuer } },
    spec: {
      ...(opts.className === undefined ? { ingressClassName: 'traefik' } : opts.className === '' ? {} : { ingressClassName: opts.className }),
      rules: hosts.map((host) => ({ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'backend', port: { number: backend.port } } } }] } })),
      tls,
    },
  });
}

const getCertificate = (ns: string, name: string) => kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', name]);

async function certificateNames(ns: string): Promise<string[]> {
  const { items } = await kubectlJson<{ items: CertificateView[] }>(['-n', ns, 'get', 'certificates']);
  return items.map((c) => c.metadata.name).sort();
}

async function ingressEvents(ns: string, name: string): Promise<EventView[]> {
  return (await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.kind=Ingress,involvedObject.name=${name}`])).items;
}


test('an annotated Ingress gets one Certificate per TLS entry, and Traefik serves each with the issuer, names and serial of its Secret', async (t) => {
  const ns = await namespaceWithBackend('ingress');
  const [shop, www, api] = [uniqueHost('shop'), uniqueHost('www'), uniqueHost('api')];
  await applyYaml(ingressYaml(ns, 'shop', [{ hosts: [shop, www], secretName: 'shop-tls' }, { hosts: [api], secretName: 'api-tls' }]));

  for (const [secret, hosts] of [['shop-tls', [shop, www]], ['api-tls', [api]]] as const) {
    await waitForCertificateRevision(ns, secret, 1, 90_000);
    const cert = await getCertificate(ns, secret);
    t.deepEqual(cert.spec.dnsNames, [...hosts]);
    t.deepEqual(cert.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.controller]), [['Ingress', 'shop', true]]);
    const secretView = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', secret]);
    const issued = new X509Certificate(secretPem(secretView, 'tls.crt'));
    for (const host of hosts) {
      const served = await waitForServed(host);
      t.is(served.serial, issued.serialNumber, `Traefik serves the Secret's certificate for ${host}`);
      t.deepEqual(served.subjectAltName.split(', ').sort(), hosts.map((h) => `DNS:${h}`).sort());
      t.regex(served.issuer, /Pebble Intermediate CA/, 'issued by the stack\'s ACME CA');
      t.is(served.issuer, issued.issuer);
    }
  }
  t.is((await viaWebsecure(api, '/')).body, 'hello from the backend\n', 'Traefik routes the Ingress over HTTPS');
  // This file's tests run side by side: every Ingress in the cluster is one of theirs.
  const { stdout } = await kubectl(['get', 'ingresses', '-A', '-o', 'jsonpath={.items[*].metadata.name}']);
  t.deepEqual(stdout.split(' ').filter((n) => !['shop', 'other', 'legacy', 'listed', 'acme', 'partly', 'twice', ''].includes(n)), [], 'no Ingress per challenge: the responder answered them');
});

test('only Ingresses of the listed classes get Certificates: ingressClassName first, then the annotation', async (t) => {
  const ns = await namespaceWithBackend('ingclass');
  const [other, legacy, listed] = [uniqueHost('other'), uniqueHost('legacy'), uniqueHost('listed')];
  await applyYaml(ingressYaml(ns, 'other', [{ hosts: [other], secretName: 'other-tls' }], { className: 'nginx' }));
  await applyYaml(ingressYaml(ns, 'legacy', [{ hosts: [legacy], secretName: 'legacy-tls' }], { className: '', annotations: { 'cert-manager.io/cluster-issuer': issuer, 'kubernetes.io/ingress.class': 'nginx' } }));
  await applyYaml(ingressYaml(ns, 'listed', [{ hosts: [listed], secretName: 'listed-tls' }], { className: '', annotations: { 'cert-manager.io/cluster-issuer': issuer, 'kubernetes.io/ingress.class': 'internal' } }));

  await waitFor('the Certificate of the Ingress of a listed class', () => getCertificate(ns, 'listed-tls'), 30_000);
  await caughtUp(controller, ingressShim, ns, 'other');
  await caughtUp(controller, ingressShim, ns, 'legacy');
  t.deepEqual(await certificateNames(ns), ['listed-tls'], 'nothing for the Ingresses of class nginx');
  t.deepEqual(await ingressEvents(ns, 'other'), [], 'another controller\'s Ingress gets no Event from certroute');

  // Moving an Ingress to a class Traefik does not serve removes its Certificate, never the Secret.
  await waitForCertificateRevision(ns, 'listed-tls', 1, 90_000);
  await kubectl(['-n', ns, 'annotate', '--overwrite', 'ingress', 'listed', 'kubernetes.io/ingress.class=nginx']);
  await waitFor('the Certificate to go', async () => !(await certificateNames(ns)).includes('listed-tls'), 30_000);
  const { items } = await kubectlJson<{ items: SecretView[] }>(['-n', ns, 'get', 'secrets', '--field-selector', 'metadata.name=listed-tls']);
  t.is(items.length, 1, 'the Secret stays');
});

test('kubernetes.io/tls-acme: "true" gets a Certificate from the default issuer, as cert-manager documents it, and Traefik serves it', async (t) => {
  const ns = await namespaceWithBackend('ingacme');
  const host = uniqueHost('acme');
  await applyYaml(ingressYaml(ns, 'acme', [{ hosts: [host], secretName: 'acme-tls' }], { annotations: { 'kubernetes.io/tls-acme': 'true' } }));
  await waitForCertificateRevision(ns, 'acme-tls', 1, 90_000);
  t.deepEqual((await kubectlJson<{ spec: { issuerRef: unknown } }>(['-n', ns, 'get', 'certificate', 'acme-tls'])).spec.issuerRef, { name: issuer, kind: 'ClusterIssuer' });
  t.regex((await waitForServed(host)).issuer, /Pebble Intermediate CA/);
});

test('bad TLS entries get a Warning on the Ingress that names the entry and the fix, and good entries still get their Certificate', async (t) => {
  const ns = await namespaceWithBackend('ingbad');
  const good = uniqueHost('good');
  await applyYaml(ingressYaml(ns, 'partly', [{ secretName: 'nohosts-tls' }, { hosts: [good], secretName: 'good-tls' }]));
  await applyYaml(ingressYaml(ns, 'twice', [{ hosts: [uniqueHost('a')], secretName: 'same-tls' }, { hosts: [uniqueHost('b')], secretName: 'same-tls' }]));

  const skipped = await waitFor('a SkippedTlsEntry Warning', async () => (await ingressEvents(ns, 'partly')).find((e) => e.reason === 'SkippedTlsEntry'), 30_000);
  t.is(skipped.type, 'Warning');
  t.regex(skipped.message, /spec\.tls\[0\] \(secretName nohosts-tls\) lists no hosts, so it is skipped; list the names the certificate must cover in hosts/);
  await waitFor('the good entry\'s Certificate', () => getCertificate(ns, 'good-tls'), 30_000);

  const duplicate = await waitFor('a DuplicateSecretName Warning', async () => (await ingressEvents(ns, 'twice')).find((e) => e.reason === 'DuplicateSecretName'), 30_000);
  t.is(duplicate.type, 'Warning');
  t.regex(duplicate.message, /spec\.tls\[0\]\.secretName "same-tls" is also used in spec\.tls\[1\]; .*give each entry its own secretName/);
  const { stdout: table } = await kubectl(['-n', ns, 'get', 'events', '--field-selector', 'type=Warning']);
  t.regex(table, /Warning\s+DuplicateSecretName\s+ingress\/twice/, 'kubectl get events names the Ingress');
  await caughtUp(controller, ingressShim, ns, 'twice');
  t.false((await certificateNames(ns)).includes('same-tls'), 'a blocked Ingress gets no Certificate');
});
