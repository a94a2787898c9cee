/**
 * The IngressRoute shim as a user meets it (issue 4 §1): annotate a route and a Certificate
 * with the route's hosts appears, Traefik serves what it issues, edits follow, opting out keeps
 * the Secret Traefik serves, and whatever cannot be used is a Warning event on the route that
 * says what to do, without touching the Certificate that serves now.
 */
import test from 'ava';
import { exposeLocalPort, kubectl, loadKubeConfig, readEnv } from '../env/stack.ts';
import { annotatedIngressRoute, applyYaml, cleanUpFile, freshNamespace, kubectlJson, startController, waitFor, type ControllerProcess, type SecretView, waitForLeader } from '../helpers/controller.ts';
import { deleteIssuers, newIssuer } from '../helpers/issuance.ts';
import { servedCertificate, serveLocal, type LocalServer } from '../helpers/tls.ts';
import { applyAnnotatedRoute, shimCaughtUp, uniqueHost, viaWebsecure, waitForServed } from '../helpers/wiring.ts';

const env = readEnv();
// A fresh ACME account per run: Pebble forgets accounts whenever a test restarts it.
let issuer = '';
let controller: ControllerProcess;
let backend: LocalServer;

test.before(async () => {
  backend = await serveLocal((_req, res) => res.end('hello from the backend\n'));
  controller = await startController();
  await waitForLeader(controller);
  issuer = await newIssuer('pebble-shim');
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
  await backend?.close();
});

interface CertificateView {
  metadata: { name: string; generation: number; resourceVersion: string; ownerReferences?: Array<{ kind: string; name: string }> };
  spec: { dnsNames?: string[]; secretName: string; duration?: string; renewBefore?: string; privateKey?: { algorithm?: string } };
  status?: { conditions?: Array<{ type: string; status: string }> };
}

interface EventView {
  type: string;
  reason: string;
  message: string;
  involvedObject: { kind: string; name: string };
}

const getCertificate = (ns: string, name: string) => kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', name]);

async function certificateExists(ns: string, name: string): Promise<boolean> {
  const { stdout } = await kubectl(['-n', ns, 'get', 'certificates', '--field-selector', `metadata.name=${name}`, '-o', 'name']);
  return stdout.trim() !== '';
}

async function waitForReady(ns: string, name: string): Promise<CertificateView> {
  return waitFor(`Certificate ${ns}/${name} Ready`, async () => {
    const c = await getCertificate(ns, name);
    return c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? c : undefined;
  }, 60_000);
}

async function routeEvents(ns: string, route: string): Promise<EventView[]> {
  const { items } = await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.kind=IngressRoute,involvedObject.name=${route}`]);
  return items;
}

/** An IngressRoute with the given routes' matches, written as YAML a user would apply. */
const routeYaml = (ns: string, name: string, matches: string[], opts: { annotations?: Record<string, string>; syntax?: 'v2' } = {}): string =>
  annotatedIngressRoute({ namespace: ns, name, matches, issuer, backendPort: backend.port, ...opts });

async function namespaceWithBackend(prefix: string): Promise<string> {
  const ns = await freshNamespace(prefix);
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: backend.port });
  return ns;
}

test('a v2 Host(a, b) rule gives the Certificate both names, and Traefik serves the issued certificate for each', async (t) => {
  const ns = await namespaceWithBackend('shimv2');
  const [a, b] = [uniqueHost('one'), uniqueHost('two')];
  await applyYaml(routeYaml(ns, 'app', [`Host(\`${a}\`, \`${b}\`)`], { syntax: 'v2' }));
  const cert = await waitFor('the Certificate', () => getCertificate(ns, 'app-tls'), 30_000);
  t.deepEqual(cert.spec.dnsNames, [a, b]);
  t.is(cert.metadata.ownerReferences?.[0]?.kind, 'IngressRoute');
  for (const host of [a, b]) {
    const served = await waitForServed(host);
    t.deepEqual(served.subjectAltName.split(', ').sort(), [`DNS:${a}`, `DNS:${b}`].sort());
    t.is((await viaWebsecure(host, '/')).body, 'hello from the backend\n', `Traefik routes ${host} with the v2 rule`);
  }
});

test('a v3 rule with ||, && and PathPrefix, over several routes, gives the Certificate every Host', async (t) => {
  const ns = await namespaceWithBackend('shimv3');
  const [a, b, c] = [uniqueHost('a'), uniqueHost('b'), uniqueHost('c')];
  await applyYaml(routeYaml(ns, 'app', [`Host(\`${a}\`) || Host(\`${b}\`) && PathPrefix(\`/api\`)`, `Host(\`${c}\`)`]));
  const cert = await waitFor('the Certificate', () => getCertificate(ns, 'app-tls'), 30_000);
  t.deepEqual(cert.spec.dnsNames, [a, b, c]);
  const served = await waitForServed(c);
  t.deepEqual(served.subjectAltName.split(', ').sort(), [`DNS:${a}`, `DNS:${b}`, `DNS:${c}`].sort());
  t.is((await viaWebsecure(b, '/api')).body, 'hello from the backend\n');
});

test('changing a route or an annotation updates the Certificate, and Traefik serves the re-issued certificate', async (t) => {
  const ns = await namespaceWithBackend('shimedit');
  const [a, b] = [uniqueHost('first'), uniqueHost('added')];
  await applyYaml(routeYaml(ns, 'app', [`Host(\`${a}\`)`]));
  await waitForReady(ns, 'app-tls');
  await waitForServed(a);

  await applyYaml(routeYaml(ns, 'app', [`Host(\`${a}\`) || Host(\`${b}\`)`]));
  const widened = await waitFor('dnsNames with the added host', async () => {
    const c = await getCertificate(ns, 'app-tls');
    return c.spec.dnsNames?.includes(b) ? c : undefined;
  }, 30_000);
  t.deepEqual(widened.spec.dnsNames, [a, b]);
  const served = await waitForServed(b);
  t.true(served.subjectAltName.includes(`DNS:${a}`), 'the re-issued certificate still covers the first host');

  await kubectl(['-n', ns, 'annotate', 'ingressroute', 'app', 'cert-manager.io/renew-before=720h', 'cert-manager.io/private-key-algorithm=ECDSA']);
  const annotated = await waitFor('renewBefore and the key algorithm on the Certificate', async () => {
    const c = await getCertificate(ns, 'app-tls');
    return c.spec.renewBefore && c.spec.privateKey?.algorithm ? c : undefined;
  }, 30_000);
  t.is(annotated.spec.renewBefore, '720h0m0s');
  t.is(annotated.spec.privateKey?.algorithm, 'ECDSA');
});

test('removing the issuer annotation deletes the Certificate but keeps the Secret, which Traefik goes on serving', async (t) => {
  const ns = await namespaceWithBackend('shimremove');
  const host = uniqueHost('removed');
  await applyAnnotatedRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port });
  await waitForReady(ns, 'app-tls');
  const before = await waitForServed(host);
  const secretBefore = await kubectlJson<SecretView & { metadata: { ownerReferences?: unknown[] } }>(['-n', ns, 'get', 'secret', 'app-tls']);
  t.is(secretBefore.metadata.ownerReferences, undefined, 'no owner reference, so a garbage collector would not delete the Secret with the Certificate');

  await kubectl(['-n', ns, 'annotate', 'ingressroute', 'app', 'cert-manager.io/cluster-issuer-']);
  await waitFor('the Certificate to be deleted', async () => !(await certificateExists(ns, 'app-tls')), 30_000);
  const secretAfter = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'app-tls']);
  t.is(secretAfter.data['tls.crt'], secretBefore.data['tls.crt']);
  const event = await waitFor('a DeletedCertificate event', async () => (await routeEvents(ns, 'app')).find((e) => e.reason === 'DeletedCertificate'), 30_000);
  t.regex(event.message, /kept Secret app-tls/);
  const after = await servedCertificate(env.traefik.websecure, host);
  t.is(after.serial, before.serial, 'Traefik still serves the same certificate');
  const { stdout: secretName } = await kubectl(['-n', ns, 'get', 'ingressroute', 'app', '-o', 'jsonpath={.spec.tls.secretName}']);
  t.is(secretName, 'app-tls', 'the route still names the Secret');
});

test('certroute.io/ignore: "true" opts an IngressRoute out, and opting out later deletes only the Certificate', async (t) => {
  const ns = await namespaceWithBackend('shimignore');
  const [ignored, managed] = [uniqueHost('ignored'), uniqueHost('managed')];
  await applyAnnotatedRoute({ namespace: ns, name: 'ignored', host: ignored, issuer, backendPort: backend.port, annotations: { 'certroute.io/ignore': 'true' } });
  await applyAnnotatedRoute({ namespace: ns, name: 'managed', host: managed, issuer, backendPort: backend.port });
  await waitForReady(ns, 'managed-tls');
  // Evidence first: the shim is done with the ignored route (it warns about an unknown key there).
  await shimCaughtUp(controller, ns, 'ignored');
  t.false(await certificateExists(ns, 'ignored-tls'), 'no Certificate for the ignored route');
  const { stdout: secretName } = await kubectl(['-n', ns, 'get', 'ingressroute', 'ignored', '-o', 'jsonpath={.spec.tls.secretName}']);
  t.is(secretName, '', 'the ignored route is not edited');

  await kubectl(['-n', ns, 'annotate', 'ingressroute', 'managed', 'certroute.io/ignore=true']);
  await waitFor('the opted-out Certificate to be deleted', async () => !(await certificateExists(ns, 'managed-tls')), 30_000);
  const { items } = await kubectlJson<{ items: SecretView[] }>(['-n', ns, 'get', 'secrets', '--field-selector', 'metadata.name=managed-tls']);
  t.is(items.length, 1, 'the Secret stays');
});

test('a HostRegexp rule gets a Warning event that says what to do', async (t) => {
  const ns = await namespaceWithBackend('shimregexp');
  const host = uniqueHost('plain');
  await applyYaml(routeYaml(ns, 'regexp', ['HostRegexp(`^.+\\.regexp\\.test$`)']));
  await applyYaml(routeYaml(ns, 'mixed', [`Host(\`${host}\`) || HostRegexp(\`^.+\\.regexp\\.test$\`)`]));

  const warning = await waitFor('an UnsupportedMatcher Warning event', async () => (await routeEvents(ns, 'regexp')).find((e) => e.type === 'Warning' && e.reason === 'UnsupportedMatcher'), 30_000);
  t.regex(warning.message, /HostRegexp/);
  t.regex(warning.message, new RegExp(`^IngressRoute ${ns}/regexp spec\\.routes\\[0\\]\\.match: HostRegexp`), 'the text names the route and the rule');
  t.regex(warning.message, /list the names in spec\.tls\.domains \(main and sans/);
  t.regex(warning.message, /add a Host\(`…`\) matcher for each name/);
  t.regex(warning.message, /cert-manager\.io\/alt-names/);
  const { stdout: table } = await kubectl(['-n', ns, 'get', 'events', '--field-selector', 'type=Warning']);
  t.regex(table, /Warning\s+UnsupportedMatcher\s+ingressroute\/regexp/, 'kubectl get events shows it');
  const noHosts = (await routeEvents(ns, 'regexp')).find((e) => e.reason === 'NoHosts');
  t.truthy(noHosts, 'with no Host at all there is nothing to certify, and the route is told so');
  t.false(await certificateExists(ns, 'regexp-tls'));

  // Beside a Host, the HostRegexp is only a warning: the Host still gets its certificate.
  const mixed = await waitFor('the Certificate for the Host', () => getCertificate(ns, 'mixed-tls'), 30_000);
  t.deepEqual(mixed.spec.dnsNames, [host]);
  t.true((await routeEvents(ns, 'mixed')).some((e) => e.type === 'Warning' && e.reason === 'UnsupportedMatcher'));
});

test('a bad annotation gets a Warning event and leaves the serving Certificate untouched until it is fixed', async (t) => {
  const ns = await namespaceWithBackend('shimbad');
  const host = uniqueHost('bad');
  await applyAnnotatedRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port });
  const before = await waitForReady(ns, 'app-tls');
  const served = await waitForServed(host);
  const secretBefore = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'app-tls']);

  await kubectl(['-n', ns, 'annotate', 'ingressroute', 'app', 'cert-manager.io/duration=soon']);
  const warning = await waitFor('a BadAnnotation Warning event', async () => (await routeEvents(ns, 'app')).find((e) => e.type === 'Warning' && e.reason === 'BadAnnotation'), 30_000);
  t.regex(warning.message, /cert-manager\.io\/duration: "soon"/);
  await shimCaughtUp(controller, ns, 'app');
  const after = await getCertificate(ns, 'app-tls');
  t.is(after.metadata.generation, before.metadata.generation, 'the Certificate spec was not written');
  t.deepEqual(after.spec, before.spec);
  const secretAfter = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'app-tls']);
  t.is(secretAfter.metadata.resourceVersion, secretBefore.metadata.resourceVersion, 'the Secret was not touched');
  t.is((await servedCertificate(env.traefik.websecure, host)).serial, served.serial, 'Traefik serves the same certificate');

  await kubectl(['-n', ns, 'annotate', '--overwrite', 'ingressroute', 'app', 'cert-manager.io/duration=2160h']);
  const fixed = await waitFor('the fixed duration on the Certificate', async () => {
    const c = await getCertificate(ns, 'app-tls');
    return c.spec.duration ? c : undefined;
  }, 30_000);
  t.is(fixed.spec.duration, '2160h0m0s');
});
