/**
 * How challenges reach the one responder (docs/ARCHITECTURE.md, decision 5), on the stack's real Traefik:
 * route mode's single IngressRoute (created at start-up, configurable, repaired), middleware
 * mode's plugin, both behind Traefik's web→websecure redirect, the self-check's report when it
 * fails, and `--shim-only`. Each test runs the controller configuration it needs; only one
 * controller runs (and leads) at a time, so the tests are serial.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { kubectl, readEnv, restart } from '../env/stack.ts';
import { freePorts } from '../env/ports.ts';
import {
  applyYaml, cleanUpFile, CONTROLLER_NAMESPACE, freshNamespace, kubectlJson, own, pebbleClusterIssuer, startController, waitFor,
  type ControllerProcess, waitForLeader,
} from '../helpers/controller.ts';
import { certificateYaml, deleteIssuer, freshIssuerName, waitIssuerReady } from '../helpers/issuance.ts';
import { pebbleRoot } from '../helpers/pebble.ts';
import { serveLocal, type LocalServer } from '../helpers/tls.ts';
import {
  answeredByResponder, applyAnnotatedRoute, CHALLENGE_PATH, CHALLENGE_ROUTE, challengeRouters, deleteChallengeRoute,
  traefikApi, traefikDefaults, traefikMiddlewareMode, uniqueHost, viaWeb,
  waitForServed, type ApiObject,
} from '../helpers/wiring.ts';

const env = readEnv();
// Fresh ACME accounts per run: Pebble forgets accounts whenever a test restarts it.
const issuer = freshIssuerName('pebble-wiring');
/** Waits 10 s instead of self-checking, which holds each challenge presented long enough to look at. */
const slowIssuer = freshIssuerName('pebble-wiring-slow');
let controller: ControllerProcess | undefined;
let backend: LocalServer;
let traefikChanged = false;

/**
 * Stops the controller that runs now and starts one with `args`; resolves once it leads.
 * `withoutChallengeRoute` first removes the route a route-mode controller left, as an operator
 * switching to middleware mode (or to cert-manager) would.
 */
async function runController(args: string[] = [], opts: { withoutChallengeRoute?: boolean } = {}): Promise<ControllerProcess> {
  await controller?.stop();
  controller = undefined;
  if (opts.withoutChallengeRoute) await deleteChallengeRoute();
  controller = await startController(args);
  await waitForLeader(controller);
  return controller;
}

test.before(async () => {
  await applyYaml(pebbleClusterIssuer(issuer));
  await applyYaml(pebbleClusterIssuer(slowIssuer, env, { http01: { certroute: { waitInsteadOfSelfCheck: '10s' } } }));
  backend = await serveLocal((_req, res) => res.end('hello from the backend\n'));
});

test.after.always(async () => {
  await cleanUpFile();
  await backend?.close();
  if (traefikChanged) await traefikDefaults();
  for (const name of [issuer, slowIssuer]) await deleteIssuer(name);
});

interface IngressRouteView {
  metadata: { uid: string; labels?: Record<string, string> };
  spec: { entryPoints: string[]; routes: Array<{ match: string; priority?: number; services: Array<{ name: string; namespace?: string; port: number }> }> };
}

const getChallengeRoute = () => kubectlJson<IngressRouteView>(['-n', CHALLENGE_ROUTE.namespace, 'get', 'ingressroute', CHALLENGE_ROUTE.name]);
const challengeRouteExists = async () => (await kubectl(['-n', CHALLENGE_ROUTE.namespace, 'get', 'ingressroute', '--field-selector', `metadata.name=${CHALLENGE_ROUTE.name}`, '-o', 'name'])).stdout.trim() !== '';

function isDefaultChallengeRoute(r: IngressRouteView): boolean {
  const [route] = r.spec.routes;
  return r.spec.entryPoints.join(',') === 'web,websecure' && r.spec.routes.length === 1
    && route?.match === `PathPrefix(\`${CHALLENGE_PATH}\`)` && route.priority === 2 ** 30
    && route.services.length === 1 && route.services[0]?.name === own.responderService && route.services[0]?.port === own.responderPort;
}

async function verifiesAgainstPebble(served: { chain: X509Certificate[] }): Promise<boolean> {
  const root = new X509Certificate(await pebbleRoot(env));
  return served.chain.some((c) => c.verify(root.publicKey));
}

test.serial('at start-up the controller creates the challenge route on the entrypoints and with the priority it is given, and Traefik routes it', async (t) => {
  await runController(['--entrypoints=web', '--route-priority=4242'], { withoutChallengeRoute: true });
  const route = await waitFor('the challenge IngressRoute', getChallengeRoute, 30_000);
  t.deepEqual(route.spec.entryPoints, ['web']);
  t.is(route.spec.routes.length, 1);
  t.is(route.spec.routes[0]?.match, `PathPrefix(\`${CHALLENGE_PATH}\`)`);
  t.is(route.spec.routes[0]?.priority, 4242);
  t.deepEqual(route.spec.routes[0]?.services, [{ name: own.responderService, namespace: CONTROLLER_NAMESPACE, port: own.responderPort }]);
  t.is(route.metadata.labels?.['app.kubernetes.io/managed-by'], 'certroute');
  const routers = await waitFor('Traefik to route the challenge path on web', async () => {
    const r = await challengeRouters();
    return r.length === 1 && r[0]?.status === 'enabled' && r[0].priority === 4242 ? r : undefined;
  }, 30_000);
  t.deepEqual(routers[0]?.entryPoints, ['web']);
  t.is(routers[0]?.rule, `PathPrefix(\`${CHALLENGE_PATH}\`)`);
  t.true(answeredByResponder(await viaWeb('any.example.test', `${CHALLENGE_PATH}unknown-token`)), 'the challenge path on web reaches the responder');

  // A controller started with the defaults brings the route to web and websecure at priority 2^30.
  await runController();
  await waitFor('the challenge route with the default entrypoints and priority', async () => isDefaultChallengeRoute(await getChallengeRoute()), 30_000);
  const defaults = await waitFor('Traefik to route the challenge path on web and websecure', async () => {
    const r = await challengeRouters();
    return r.length === 2 && r.every((x) => x.status === 'enabled' && x.priority === 2 ** 30) ? r : undefined;
  }, 30_000);
  t.deepEqual(defaults.flatMap((r) => r.entryPoints ?? []).sort(), ['web', 'websecure']);
});

test.serial('an edited or deleted challenge route is put back', async (t) => {
  await runController();
  await waitFor('the default challenge route', async () => isDefaultChallengeRoute(await getChallengeRoute()), 30_000);
  const before = await getChallengeRoute();

  // How soon (on the watch event, not at the 30 s repair) is a figure for `npm run bench`.
  let started = Date.now();
  await kubectl(['-n', CHALLENGE_ROUTE.namespace, 'patch', 'ingressroute', CHALLENGE_ROUTE.name, '--type=json', '-p',
    JSON.stringify([{ op: 'replace', path: '/spec/routes/0/priority', value: 1 }, { op: 'replace', path: '/spec/entryPoints', value: ['websecure'] }])]);
  await waitFor('the edited challenge route to be restored', async () => isDefaultChallengeRoute(await getChallengeRoute()), 60_000, 50);
  t.log(`restored ${Date.now() - started} ms after the edit`);

  started = Date.now();
  await kubectl(['-n', CHALLENGE_ROUTE.namespace, 'delete', 'ingressroute', CHALLENGE_ROUTE.name]);
  const recreated = await waitFor('the deleted challenge route to be re-created', async () => {
    const r = await getChallengeRoute();
    return r.metadata.uid !== before.metadata.uid && isDefaultChallengeRoute(r) ? r : undefined;
  }, 60_000, 50);
  t.log(`re-created ${Date.now() - started} ms after the delete`);
  t.not(recreated.metadata.uid, before.metadata.uid);
  await waitFor('Traefik to route the challenge path again', async () => (await challengeRouters()).filter((r) => r.status === 'enabled').length === 2, 30_000);
  t.true(answeredByResponder(await viaWeb('any.example.test', `${CHALLENGE_PATH}unknown-token`)));
});

interface Counts {
  kube: Record<string, number>;
  traefik: Record<string, number>;
}

/**
 * Everything Traefik could be configured from in the test's namespace and in certroute's, in the
 * cluster and in Traefik's own API (whose kubernetescrd objects are named `<namespace>-<name>`).
 */
async function traefikVisibleObjects(ns: string): Promise<Counts> {
  const kube: Record<string, number> = {};
  const kinds: Record<string, string> = {
    'ingressroutes.traefik.io': 'IngressRoute', 'middlewares.traefik.io': 'Middleware', 'traefikservices.traefik.io': 'TraefikService',
    'serverstransports.traefik.io': 'ServersTransport', services: 'Service', 'ingresses.networking.k8s.io': 'Ingress',
  };
  for (const namespace of [ns, CONTROLLER_NAMESPACE]) {
    // One request per namespace: the counts are taken while a challenge waits.
    const { items } = await kubectlJson<{ items: Array<{ kind: string }> }>(['-n', namespace, 'get', Object.keys(kinds).join(',')]);
    for (const [resource, kind] of Object.entries(kinds)) kube[`${resource} in ${namespace}`] = items.filter((o) => o.kind === kind).length;
  }
  const traefik: Record<string, number> = {};
  for (const kind of ['routers', 'services', 'middlewares']) {
    traefik[kind] = (await traefikApi<ApiObject[]>(`/api/http/${kind}`)).filter((o) => [ns, CONTROLLER_NAMESPACE].some((n) => o.name.startsWith(`${n}-`))).length;
  }
  return { kube, traefik };
}

interface ChallengeView {
  metadata: { name: string };
  spec: { token: string; key: string; dnsName: string };
  status?: { presented?: boolean; state?: string; reason?: string };
}

test.serial('an issuance creates no per-challenge IngressRoute, Middleware, Service or Traefik router', async (t) => {
  await runController();
  await waitIssuerReady(slowIssuer);
  const ns = await freshNamespace('zero');
  const host = uniqueHost('zero');
  await applyAnnotatedRoute({ namespace: ns, name: 'app', host, backendPort: backend.port });
  await waitFor('Traefik to route the unannotated IngressRoute', async () => (await traefikApi<ApiObject[]>('/api/http/routers')).some((r) => r.rule === `Host(\`${host}\`)`), 30_000);
  await waitFor('the challenge routers', async () => (await challengeRouters()).length === 2, 30_000);
  const before = await traefikVisibleObjects(ns);

  await kubectl(['-n', ns, 'annotate', 'ingressroute', 'app', `cert-manager.io/cluster-issuer=${slowIssuer}`]);
  const challenge = await waitFor('a presented Challenge', async () => {
    const list = await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges']);
    return list.items.find((c) => c.status?.presented && c.status.state === 'pending');
  }, 30_000, 50);
  const token = await viaWeb(host, `${CHALLENGE_PATH}${challenge.spec.token}`);
  t.is(token.status, 200, 'Traefik answers the pending token through the one challenge route');
  t.is(token.body.trim(), challenge.spec.key);
  const during = await traefikVisibleObjects(ns);
  const still = await kubectlJson<ChallengeView>(['-n', ns, 'get', 'challenge', challenge.metadata.name]).catch(() => undefined);
  t.is(still?.status?.state, 'pending', 'the objects were counted while the challenge was pending');

  const served = await waitForServed(host);
  t.true(await verifiesAgainstPebble(served));
  const after = await traefikVisibleObjects(ns);
  t.deepEqual(during, before, 'while the challenge was pending');
  t.deepEqual(after, before, 'after the certificate was issued');
});

interface EventView {
  type: string;
  reason: string;
  message: string;
  involvedObject: { kind: string; name: string };
}

async function warnings(ns: string, name: string): Promise<EventView[]> {
  const list = await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.name=${name},type=Warning`]);
  return list.items;
}


async function onlyChallenge(ns: string): Promise<ChallengeView> {
  return waitFor(`the Challenge in ${ns}`, async () => {
    const list = await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges']);
    return list.items.length === 1 ? list.items[0] : undefined;
  }, 30_000);
}

test.serial('a failed self-check says on the Challenge and in a Warning event what was requested and what came back', async (t) => {
  const [nothing] = (await freePorts(1)) as [number];
  await runController([`--self-check-address=http://127.0.0.1:${nothing}`]);
  await waitIssuerReady(issuer);
  const ns = await freshNamespace('selfcheck');
  const host = uniqueHost('selfcheck');
  await applyYaml(certificateYaml(ns, 'web', [host], issuer));
  const { metadata: { name }, spec: { token } } = await onlyChallenge(ns);
  const requested = `GET http://127.0.0.1:${nothing}${CHALLENGE_PATH}${token} (Host: ${host})`;

  const refused = await waitFor('the self-check failure on the Challenge', async () => {
    const c = await kubectlJson<ChallengeView>(['-n', ns, 'get', 'challenge', name]);
    return c.status?.reason?.includes('ECONNREFUSED') ? c : undefined;
  }, 30_000);
  t.true(refused.status!.reason!.includes(`self-check ${requested} returned connection error ECONNREFUSED`), refused.status!.reason);
  t.is(refused.status?.state, 'pending', 'the challenge is not accepted at the CA');
  const event = await waitFor('a SelfCheckFailed Warning event', async () => (await warnings(ns, name)).find((e) => e.reason === 'SelfCheckFailed'), 30_000);
  t.is(event.involvedObject.kind, 'Challenge');
  t.is(event.message, refused.status!.reason!);

  // Something answers, but not certroute's responder: a wrong route.
  const wrong = await serveLocal((_req, res) => {
    res.statusCode = 404;
    res.end('no route for this host\n');
  });
  try {
    await runController([`--self-check-address=http://127.0.0.1:${wrong.port}`]);
    const notFound = await waitFor('the wrong-route failure on the Challenge', async () => {
      const c = await kubectlJson<ChallengeView>(['-n', ns, 'get', 'challenge', name]);
      return c.status?.reason?.includes(`127.0.0.1:${wrong.port}`) ? c : undefined;
    }, 30_000);
    t.true(notFound.status!.reason!.startsWith(`self-check GET http://127.0.0.1:${wrong.port}${CHALLENGE_PATH}${token} (Host: ${host}) returned status 404;`), notFound.status!.reason);
    t.false(notFound.status!.reason!.includes('no route for this host'), 'what answered is never quoted in status');
    await waitFor('a Warning event for the wrong route', async () => (await warnings(ns, name)).some((e) => e.message === notFound.status?.reason), 30_000);
  } finally {
    await wrong.close();
  }

  // With the self-check pointed at Traefik again, the same challenge passes and the certificate is issued.
  await runController();
  await waitFor('the Certificate Ready', async () => {
    const { stdout } = await kubectl(['-n', ns, 'get', 'certificate', 'web', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    return stdout === 'True';
  }, 60_000);
  t.pass();
});

test.serial('--shim-only turns an annotated IngressRoute into a Certificate and does nothing else', async (t) => {
  await runController(['--shim-only'], { withoutChallengeRoute: true });
  const ns = await freshNamespace('shimonly');
  const host = uniqueHost('shimonly');
  await applyAnnotatedRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port });
  const cert = await waitFor('the Certificate', async () => kubectlJson<{ spec: { dnsNames: string[]; secretName: string }; status?: { conditions?: unknown[] } }>(['-n', ns, 'get', 'certificate', 'app-tls']), 30_000);
  t.deepEqual(cert.spec.dnsNames, [host]);
  const { stdout: secretName } = await kubectl(['-n', ns, 'get', 'ingressroute', 'app', '-o', 'jsonpath={.spec.tls.secretName}']);
  t.is(secretName, 'app-tls');

  // Evidence that the process kept handling this namespace: a later change to the route reaches
  // the Certificate. A full controller would have made a CertificateRequest by then.
  const moved = uniqueHost('shimonly-moved');
  await kubectl(['-n', ns, 'patch', 'ingressroute', 'app', '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/spec/routes/0/match', value: `Host(\`${moved}\`)` }])]);
  await waitFor('the shim to carry the new host to the Certificate', async () =>
    (await kubectlJson<{ spec: { dnsNames: string[] } }>(['-n', ns, 'get', 'certificate', 'app-tls'])).spec.dnsNames.includes(moved), 30_000);
  for (const kind of ['certificaterequests', 'orders', 'challenges', 'secrets']) {
    const { items } = await kubectlJson<{ items: unknown[] }>(['-n', ns, 'get', kind]);
    t.is(items.length, 0, `no ${kind} in ${ns}`);
  }
  const now = await kubectlJson<{ status?: { conditions?: unknown[] } }>(['-n', ns, 'get', 'certificate', 'app-tls']);
  t.is(now.status?.conditions, undefined, 'the Certificate is left to cert-manager');
  t.false(await challengeRouteExists(), 'no challenge route');
  t.deepEqual(await challengeRouters(), []);
});

test.serial('in middleware mode the plugin hands challenges to the responder, and the controller creates no challenge route', async (t) => {
  traefikChanged = true;
  await traefikMiddlewareMode();
  await runController(['--wiring=middleware'], { withoutChallengeRoute: true });
  const probe = await viaWeb('no-router.example.test', `${CHALLENGE_PATH}unknown-token`);
  t.true(answeredByResponder(probe), 'a challenge for a host with no router reaches the responder through the fallback router and the plugin');

  const ns = await freshNamespace('middleware');
  const host = uniqueHost('middleware');
  await applyAnnotatedRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port });
  const served = await waitForServed(host);
  t.true(await verifiesAgainstPebble(served));
  t.false(await challengeRouteExists(), 'no challenge route after an issuance');
  t.deepEqual(await challengeRouters(), []);
});

test.serial('behind the web→websecure entrypoint redirect, middleware mode still issues the certificate Traefik serves', async (t) => {
  traefikChanged = true;
  await traefikMiddlewareMode({ redirectWebToWebsecure: true });
  await runController(['--wiring=middleware'], { withoutChallengeRoute: true });
  const ns = await freshNamespace('mwredirect');
  const host = uniqueHost('mwredirect');
  const page = await viaWeb(host, '/');
  t.true([301, 308].includes(page.status), `web redirects (${page.status})`);
  t.is(page.headers.location, `https://${host}:${env.traefik.websecure}/`);
  t.true(answeredByResponder(await viaWeb(host, `${CHALLENGE_PATH}unknown-token`)), 'the plugin answers the challenge path before the redirect');

  await applyAnnotatedRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port });
  const served = await waitForServed(host);
  t.true(await verifiesAgainstPebble(served));
  t.false(await challengeRouteExists());
});

test.serial('behind the web→websecure entrypoint redirect, route mode still issues the certificate Traefik serves', async (t) => {
  traefikChanged = true;
  await restart('traefik', { redirectWebToWebsecure: true });
  await runController();
  await waitFor('the challenge routers', async () => (await challengeRouters()).length === 2, 30_000);
  const ns = await freshNamespace('redirect');
  const host = uniqueHost('redirect');
  const challengePath = await viaWeb(host, `${CHALLENGE_PATH}unknown-token`);
  t.true([301, 308].includes(challengePath.status), 'the redirect takes even the challenge path to websecure');
  t.is(challengePath.headers.location, `https://${host}:${env.traefik.websecure}${CHALLENGE_PATH}unknown-token`);

  await applyAnnotatedRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port });
  const served = await waitForServed(host);
  t.true(await verifiesAgainstPebble(served));
  t.is(served.subjectAltName, `DNS:${host}`);
});
