/**
 * The Gateway shim as a user meets it (issue 15 §2): annotate a `gateway.networking.k8s.io/v1`
 * Gateway as cert-manager's documentation does and each HTTPS listener's Secret gets a
 * Certificate that Traefik's kubernetesGateway provider serves. HTTP-01 reaches the responder
 * through one long-lived HTTPRoute on the Gateways' HTTP listeners (gateway wiring: no challenge
 * IngressRoute, no HTTPRoute per challenge). Gateways of another class are left alone, and what
 * cannot be used is a Warning on the Gateway that names the listener and the fix.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { stringify } from 'yaml';
import { exposeLocalPortToGateways, kubectl, loadKubeConfig, readEnv } from '../env/stack.ts';
import {
  applyYaml, CHALLENGE_ROUTE_NAME, cleanUpFile, CONTROLLER_NAMESPACE, freshNamespace, kubectlJson, own, secretPem, startController, waitFor, waitForCertificateRevision,
  waitForLeader, type ControllerProcess, type SecretView,
} from '../helpers/controller.ts';
import { deleteIssuers, newIssuer } from '../helpers/issuance.ts';
import { serveLocal, type LocalServer } from '../helpers/tls.ts';
import { caughtUp, uniqueHost, viaWebsecure, waitForServed } from '../helpers/wiring.ts';

const env = readEnv();
const CHALLENGE_HTTPROUTE = 'certroute-acme-challenge';
/** This file's responder, as a Service a Gateway's HTTPRoute can reach (see test/env/WIRING.md). */
const responderService = `${own.responderService}-gw`;
const gatewayShim = { resource: 'gateway.gateway.networking.k8s.io', shim: 'gateway-shim' };
const namespaces: string[] = [];
let issuer = '';
let controller: ControllerProcess;
let backend: LocalServer;

test.before(async () => {
  backend = await serveLocal((_req, res) => res.end('hello from the backend\n'));
  await exposeLocalPortToGateways(loadKubeConfig(env.kubeconfig), { namespace: CONTROLLER_NAMESPACE, name: responderService, port: own.responderPort });
  controller = await startController(['--enable-gateway-api', '--wiring=gateway', `--responder-service=${responderService}`]);
  await waitForLeader(controller);
  issuer = await newIssuer('pebble-gateway');
});

test.after.always(async () => {
  for (const ns of namespaces) await kubectl(['-n', ns, 'delete', 'gateways,httproutes,endpointslices', '--all', '--ignore-not-found', '--wait=false']).catch(() => undefined);
  await cleanUpFile([responderService]);
  await kubectl(['-n', CONTROLLER_NAMESPACE, 'delete', 'httproute', CHALLENGE_HTTPROUTE, 'endpointslice', `${responderService}-localhost`, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  await deleteIssuers();
  await backend?.close();
});

interface EventView { type: string; reason: string; message: string }
interface CertificateView {
  metadata: { name: string; ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }> };
  spec: { dnsNames?: string[] };
}
interface HTTPRouteView {
  metadata: { name: string; namespace: string; uid: string; labels?: Record<string, string> };
  spec: { parentRefs?: Array<{ namespace?: string; name: string; sectionName?: string }> };
  status?: { parents?: Array<{ parentRef: { name: string; namespace?: string; sectionName?: string }; conditions?: Array<{ type: string; status: string }> }> };
}

async function gatewayNamespace(prefix: string): Promise<string> {
  const ns = await freshNamespace(prefix);
  namespaces.push(ns);
  await exposeLocalPortToGateways(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: backend.port });
  return ns;
}

interface Listener { name: string; protocol: 'HTTP' | 'HTTPS'; hostname?: string; secret?: string; allowAll?: boolean }

/** A Gateway as cert-manager's documentation writes one, on the stack's Traefik entrypoints. */
function gatewayYaml(ns: string, name: string, listeners: Listener[], opts: { className?: string } = {}): string {
  return stringify({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: ns, annotations: { 'cert-manager.io/cluster-issuer': issuer } },
    spec: {
      gatewayClassName: opts.className ?? 'traefik',
      listeners: listeners.map((l) => ({
        name: l.name,
        protocol: l.protocol,
        port: l.protocol === 'HTTP' ? env.traefik.web : env.traefik.websecure,
        ...(l.hostname ? { hostname: l.hostname } : {}),
        ...(l.secret ? { tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: l.secret }] } } : {}),
        ...(l.allowAll ? { allowedRoutes: { namespaces: { from: 'All' } } } : {}),
      })),
    },
  });
}

/** The application's own HTTPRoute on the Gateway's HTTPS listener. */
function appRouteYaml(ns: string, gateway: string, section: string, host: string): string {
  return stringify({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: `${gateway}-app`, namespace: ns },
    spec: { parentRefs: [{ name: gateway, sectionName: section }], hostnames: [host], rules: [{ backendRefs: [{ name: 'backend', port: backend.port }] }] },
  });
}

const getCertificate = (ns: string, name: string) => kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', name]);
const challengeRoute = () => kubectlJson<HTTPRouteView>(['-n', CONTROLLER_NAMESPACE, 'get', 'httproute', CHALLENGE_HTTPROUTE]);

async function certificateNames(ns: string): Promise<string[]> {
  return (await kubectlJson<{ items: CertificateView[] }>(['-n', ns, 'get', 'certificates'])).items.map((c) => c.metadata.name).sort();
}

async function gatewayEvents(ns: string, name: string): Promise<EventView[]> {
  return (await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.kind=Gateway,involvedObject.name=${name}`])).items;
}


test.serial('an annotated Gateway gets a Certificate per HTTPS listener Secret, validated through the one challenge HTTPRoute, and Traefik serves it', async (t) => {
  const ns = await gatewayNamespace('gateway');
  const host = uniqueHost('gw');
  const attached = (r: HTTPRouteView) => r.spec.parentRefs?.some((p) => p.namespace === ns && p.name === 'edge' && p.sectionName === 'web');
  await applyYaml(gatewayYaml(ns, 'edge', [{ name: 'web', protocol: 'HTTP', allowAll: true }, { name: 'https', protocol: 'HTTPS', hostname: host, secret: 'edge-tls' }]));
  await applyYaml(appRouteYaml(ns, 'edge', 'https', host));

  // Gateway wiring: the HTTPRoute carries the challenges, and no challenge IngressRoute competes with it.
  const before = await waitFor('the challenge HTTPRoute on the Gateway\'s HTTP listener', async () => {
    const r = await challengeRoute().catch(() => undefined);
    return r && attached(r) ? r : undefined;
  }, 30_000);
  const { stdout: ingressRoute } = await kubectl(['-n', CONTROLLER_NAMESPACE, 'get', 'ingressroutes', '--field-selector', `metadata.name=${CHALLENGE_ROUTE_NAME}`, '-o', 'name']);
  t.is(ingressRoute.trim(), '', 'no challenge IngressRoute in gateway wiring');
  const accepted = await waitFor('Traefik to accept the challenge HTTPRoute on the listener', async () => {
    const r = await challengeRoute();
    return r.status?.parents?.find((p) => p.parentRef.name === 'edge' && p.parentRef.sectionName === 'web')?.conditions?.find((c) => c.type === 'Accepted')?.status === 'True';
  }, 30_000);
  t.true(accepted);

  await waitForCertificateRevision(ns, 'edge-tls', 1, 90_000);
  const cert = await getCertificate(ns, 'edge-tls');
  t.deepEqual(cert.spec.dnsNames, [host]);
  t.deepEqual(cert.metadata.ownerReferences?.map((o) => [o.kind, o.name, o.controller]), [['Gateway', 'edge', true]]);
  const issued = new X509Certificate(secretPem(await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'edge-tls']), 'tls.crt'));
  const served = await waitForServed(host);
  t.is(served.serial, issued.serialNumber, 'Traefik serves the Secret\'s certificate on the HTTPS listener');
  t.is(served.subjectAltName, `DNS:${host}`);
  t.regex(served.issuer, /Pebble Intermediate CA/);
  t.is((await viaWebsecure(host, '/')).body, 'hello from the backend\n', 'Traefik routes the app over the Gateway');

  // One long-lived route: the same object before and after the challenge, and no other.
  const after = await challengeRoute();
  t.is(after.metadata.uid, before.metadata.uid, 'the challenge HTTPRoute was not replaced per challenge');
  const { items } = await kubectlJson<{ items: HTTPRouteView[] }>(['get', 'httproutes', '-A']);
  t.deepEqual(items.filter((r) => r.metadata.name !== 'edge-app' && r.metadata.name !== 'other-app').map((r) => `${r.metadata.namespace}/${r.metadata.name}`), [`${CONTROLLER_NAMESPACE}/${CHALLENGE_HTTPROUTE}`]);
});

test.serial('a Gateway of a class Traefik does not serve gets no Certificate, and the challenge route does not attach to it', async (t) => {
  const ns = await gatewayNamespace('gwclass');
  await applyYaml(gatewayYaml(ns, 'other', [{ name: 'web', protocol: 'HTTP', allowAll: true }, { name: 'https', protocol: 'HTTPS', hostname: uniqueHost('other'), secret: 'other-tls' }], { className: 'istio' }));
  await caughtUp(controller, gatewayShim, ns, 'other');
  t.deepEqual(await certificateNames(ns), []);
  t.false((await challengeRoute()).spec.parentRefs?.some((p) => p.namespace === ns) ?? false);
  t.deepEqual(await gatewayEvents(ns, 'other'), [], 'another controller\'s Gateway gets no Event from certroute');
});

test.serial('a listener without a hostname, and an HTTP listener the challenge route cannot join, each get a Warning that names the fix', async (t) => {
  const ns = await gatewayNamespace('gwbad');
  await applyYaml(gatewayYaml(ns, 'bad', [
    { name: 'web', protocol: 'HTTP' },
    { name: 'nohost', protocol: 'HTTPS', secret: 'nohost-tls' },
  ]));
  const skipped = await waitFor('a SkippedTlsEntry Warning', async () => (await gatewayEvents(ns, 'bad')).find((e) => e.reason === 'SkippedTlsEntry'), 30_000);
  t.is(skipped.type, 'Warning');
  t.regex(skipped.message, /spec\.listeners\[1\] \("nohost"\) is skipped: it has no hostname, so there is no name for the certificate; set hostname/);
  const notAdmitted = await waitFor('a ChallengeRouteNotAdmitted Warning', async () => (await gatewayEvents(ns, 'bad')).find((e) => e.reason === 'ChallengeRouteNotAdmitted'), 30_000);
  t.is(notAdmitted.type, 'Warning');
  t.regex(notAdmitted.message, /listener "web" admits routes from its own namespace only, .*set spec\.listeners\[\]\.allowedRoutes\.namespaces\.from: All/);
  const { stdout: table } = await kubectl(['-n', ns, 'get', 'events', '--field-selector', 'type=Warning']);
  t.regex(table, /Warning\s+SkippedTlsEntry\s+gateway\/bad/, 'kubectl get events names the Gateway');
  t.deepEqual(await certificateNames(ns), []);
});
