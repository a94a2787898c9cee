/**
 * The Helm chart on a real single-node cluster, installed as a user would: only the image values
 * and a ClusterIssuer pointing at Pebble. What a bare kube-apiserver cannot show: pods admitted
 * under the restricted pod security standard and Ready through their probes, the image built from
 * the repository's Dockerfile, RBAC through the chart's ServiceAccount token, failover between
 * pods, a rolling upgrade under load, the middleware plugin mounted from the chart's ConfigMap,
 * the garbage collector, and the PodDisruptionBudget.
 *
 * The tests run in order on one installation; each leaves the release as it found it.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../helpers/controller.ts';
import { accountOrders } from '../helpers/pebble.ts';
import { traefikManifests } from './addons.ts';
import { auditLog } from './specs.ts';
import {
  APP_NS, ISSUER, NS, applyManifests, applyRoute, chartDir, chartValues, controllerPods, deployBackend, env, getVerified, helm, isReady, k, kjson,
  leaderPod, pebbleChain, waitForCertificateReady, waitForReadyControllers, waitForServed, type PodView,
} from './helpers.ts';

const serviceAccountUser = `system:serviceaccount:${NS}:certroute`;

test.before(async () => {
  // The namespace a careful user prepares: Pods that are not "restricted" are refused.
  await k(['create', 'namespace', NS]).catch(() => {});
  await k(['label', '--overwrite', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
  await helm(['install', 'certroute', chartDir, '-n', NS, '--create-namespace', ...chartValues(), '--wait', '--timeout', '5m']);
  await deployBackend();
  await waitFor(`ClusterIssuer ${ISSUER} Ready`, async () => {
    const issuer = await kjson<{ status?: { conditions?: { type: string; status: string }[] } }>(['get', 'clusterissuer', ISSUER]).catch(() => undefined);
    return issuer?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  }, 120_000, 500);
});

test.serial('the two controller pods become Ready through their probes in a namespace that enforces the restricted pod security standard', async (t) => {
  const namespace = await kjson<{ metadata: { labels: Record<string, string> } }>(['get', 'namespace', NS]);
  t.is(namespace.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
  const pods = await waitForReadyControllers();
  t.is(pods.length, 2);
  for (const pod of pods) {
    t.truthy(pod.spec.containers[0]?.readinessProbe, `${pod.metadata.name} has a readiness probe`);
    t.truthy(pod.spec.containers[0]?.livenessProbe, `${pod.metadata.name} has a liveness probe`);
  }
  // The admission is real: a pod without the restricted securityContext is refused there.
  const unrestricted = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'unrestricted', namespace: NS }, spec: { containers: [{ name: 'c', image: env.images.backend }] } };
  const refused = await k(['create', '-f', '-'], JSON.stringify(unrestricted)).then(() => '', (error: Error) => error.message);
  t.regex(refused, /violates PodSecurity "restricted:latest"/);
});

test.serial("an annotated IngressRoute gets a certificate that Traefik's pod serves on the websecure host port, chaining to Pebble's root", async (t) => {
  const host = 'shop.cluster.test';
  await applyRoute('shop', host);
  const served = await waitForServed(host);
  const { root, intermediate } = await pebbleChain();
  t.true(served.cert.checkIssued(intermediate) && served.cert.verify(intermediate.publicKey), 'the leaf is signed by Pebble\'s intermediate');
  t.true(intermediate.checkIssued(root) && intermediate.verify(root.publicKey), 'the intermediate is signed by Pebble\'s root');
  const reply = await getVerified(host, root.toString());
  t.is(reply.status, 200);
  t.regex(reply.body, new RegExp(`Host: ${host.replaceAll('.', '\\.')}`));
  t.regex(reply.body, /Hostname: backend-/, 'the backend pod answered');
});

test.serial("deleting an annotated IngressRoute makes the garbage collector remove its Certificate and CertificateRequests, and the Secret Traefik serves stays", async (t) => {
  const host = 'gc.cluster.test';
  await applyRoute('gc', host);
  const cert = await waitForCertificateReady(APP_NS, 'gc-tls');
  const requests = (await kjson<{ items: { metadata: { name: string; ownerReferences?: { uid: string }[] } }[] }>(['-n', APP_NS, 'get', 'certificaterequests'])).items
    .filter((r) => r.metadata.ownerReferences?.some((o) => o.uid === cert.metadata.uid));
  t.true(requests.length > 0, 'the Certificate has CertificateRequests');
  await k(['-n', APP_NS, 'delete', 'ingressroute', 'gc']);
  await waitFor('the Certificate collected', async () => (await k(['-n', APP_NS, 'get', 'certificate', 'gc-tls', '--ignore-not-found', '-o', 'name'])).stdout.trim() === '', 120_000, 500);
  for (const r of requests) {
    await waitFor(`CertificateRequest ${r.metadata.name} collected`, async () =>
      (await k(['-n', APP_NS, 'get', 'certificaterequest', r.metadata.name, '--ignore-not-found', '-o', 'name'])).stdout.trim() === '', 120_000, 500);
  }
  const secret = await kjson<{ data: Record<string, string> }>(['-n', APP_NS, 'get', 'secret', 'gc-tls']);
  t.truthy(secret.data['tls.crt'], 'the Secret keeps its certificate');
  t.truthy(secret.data['tls.key'], 'the Secret keeps its key');
});

test.serial('the PodDisruptionBudget refuses evicting the second controller pod while the first is gone', async (t) => {
  const pods = await waitForReadyControllers();
  const evict = (pod: PodView) => k(['create', '--raw', `/api/v1/namespaces/${NS}/pods/${pod.metadata.name}/eviction`, '-f', '-'],
    JSON.stringify({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.metadata.name, namespace: NS } }));
  await evict(pods[0]!);
  const refused = await evict(pods[1]!).then(() => '', (error: Error) => error.message);
  t.regex(refused, /disruption budget/);
  const still = await kjson<PodView>(['-n', NS, 'get', 'pod', pods[1]!.metadata.name]);
  t.falsy(still.metadata.deletionTimestamp, 'the second pod was not evicted');
  await waitForReadyControllers();
});

interface OrderView {
  metadata: { name: string; ownerReferences?: { name: string }[] };
  status?: { url?: string; state?: string };
}

test.serial('when the leader pod is force-deleted in the middle of an order, the other pod completes that same order and Pebble holds no second one', async (t) => {
  await waitForReadyControllers();
  const accountKey = Buffer.from((await kjson<{ data: Record<string, string> }>(['-n', NS, 'get', 'secret', `${ISSUER}-account-key`])).data['tls.key'] ?? '', 'base64').toString();
  const ordersBefore = await accountOrders(env, accountKey);
  const leader = await leaderPod();
  const host = 'failover.cluster.test';
  // Without Traefik the leader's self-check cannot pass: the order waits at Pebble, pending, for
  // as long as the test needs to act in its middle.
  await k(['-n', 'traefik', 'scale', 'deployment/traefik', '--replicas=0']);
  await waitFor('Traefik stopped', async () => (await kjson<{ items: PodView[] }>(['-n', 'traefik', 'get', 'pods'])).items.length === 0, 120_000, 500);
  let order: OrderView;
  try {
    await applyRoute('failover', host);
    order = await waitFor('an Order with its Pebble URL', async () => {
      const orders = (await kjson<{ items: OrderView[] }>(['-n', APP_NS, 'get', 'orders'])).items.filter((o) => o.metadata.name.startsWith('failover-tls-'));
      return orders.find((o) => o.status?.url);
    }, 120_000, 250);
    await k(['-n', NS, 'delete', 'pod', leader, '--grace-period=0', '--force']);
    const during = await kjson<OrderView>(['-n', APP_NS, 'get', 'order', order.metadata.name]);
    t.not(during.status?.state, 'valid', 'the order was still in progress when the leader went');
  } finally {
    await k(['-n', 'traefik', 'scale', 'deployment/traefik', '--replicas=1']);
    await k(['-n', 'traefik', 'rollout', 'status', 'deployment/traefik', '--timeout=180s']);
  }
  await waitForServed(host);
  const after = await kjson<OrderView>(['-n', APP_NS, 'get', 'order', order.metadata.name]);
  t.is(after.status?.url, order.status?.url, 'the same ACME order completed');
  t.is(after.status?.state, 'valid');
  const newLeader = await leaderPod();
  t.not(newLeader, leader, 'another pod leads');
  const ordersAfter = await accountOrders(env, accountKey);
  t.deepEqual(ordersAfter.filter((url) => !ordersBefore.includes(url)), [order.status?.url], 'Pebble holds exactly one new order');
  await waitForReadyControllers();
});

/** TLS handshakes against Traefik's websecure host port, as fast as `perSecond` allows. */
function handshakeLoop(host: string, perSecond: number): { stop: () => Promise<{ ok: number; failed: string[]; seconds: number }> } {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const started = Date.now();
  const once = () => new Promise<void>((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: env.traefik.websecure, servername: host, rejectUnauthorized: false, timeout: 5000 }, () => {
      const names = socket.getPeerX509Certificate()?.subjectAltName ?? '';
      if (names.includes(`DNS:${host}`)) ok++;
      else failed.push(`served ${names}`);
      socket.destroy();
      resolve();
    });
    socket.on('timeout', () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', (error) => {
      failed.push(error.message);
      resolve();
    });
  });
  const loop = (async () => {
    while (running) {
      const tick = Date.now();
      await Promise.all(Array.from({ length: perSecond / 10 }, once));
      await sleep(Math.max(0, 100 - (Date.now() - tick)));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { ok, failed, seconds: (Date.now() - started) / 1000 };
    },
  };
}

test.serial('a helm upgrade that rolls the pods, under 20 TLS handshakes a second and with an issuance in flight, fails no handshake and completes the issuance', async (t) => {
  await waitForReadyControllers();
  const before = new Set((await controllerPods()).map((p) => p.metadata.name));
  const loop = handshakeLoop('shop.cluster.test', 30);
  await applyRoute('rolling', 'rolling.cluster.test');
  await helm(['upgrade', 'certroute', chartDir, '-n', NS, ...chartValues(), '--set', `podAnnotations.rolled=r${Date.now()}`, '--wait', '--timeout', '5m']);
  const pods = await waitForReadyControllers();
  await waitForServed('rolling.cluster.test');
  const result = await loop.stop();
  t.true(pods.every((p) => !before.has(p.metadata.name)), 'every pod was replaced');
  t.deepEqual(result.failed, [], 'no handshake failed');
  // A rate is the bench's to measure, not a test's to assert: this only says that handshakes ran.
  t.true(result.ok > 0, 'handshakes kept succeeding through the rollout');
  t.log(`${result.ok} handshakes in ${result.seconds.toFixed(1)} s`);
});

test.serial("in middleware mode, Traefik's pod loads the plugin from the chart's ConfigMap and issuance works through it", async (t) => {
  await helm(['upgrade', 'certroute', chartDir, '-n', NS, ...chartValues(), '--set', 'wiring=middleware', '--wait', '--timeout', '5m']);
  const plugin = {
    configMap: 'certroute-challenge-plugin',
    moduleName: 'github.com/certroute/certroute-challenge',
    pluginName: 'certroute',
    middlewareRef: 'traefik-certroute-challenge@kubernetescrd',
  };
  await applyManifests(traefikManifests({ image: env.images.traefik, web: env.traefik.web, websecure: env.traefik.websecure, plugin }));
  await k(['-n', 'traefik', 'rollout', 'status', 'deployment/traefik', '--timeout=180s']);
  try {
    const traefikPod = (await kjson<{ items: PodView[] }>(['-n', 'traefik', 'get', 'pods'])).items.find(isReady);
    t.truthy(traefikPod, 'Traefik runs with the plugin');
    // Middleware mode has no challenge IngressRoute: the plugin answers.
    await waitFor('the challenge IngressRoute removed', async () =>
      (await k(['-n', NS, 'get', 'ingressroute', 'certroute-acme-challenge', '--ignore-not-found', '-o', 'name'])).stdout.trim() === '', 60_000, 500);
    const host = 'plugin.cluster.test';
    await applyRoute('plugin', host);
    const served = await waitForServed(host);
    t.regex(served.issuer, /Pebble/);
    const logs = (await k(['-n', 'traefik', 'logs', traefikPod!.metadata.name])).stdout;
    t.notRegex(logs, /plugin.*(error|failed)/i, 'Traefik loaded the plugin without error');
  } finally {
    await helm(['upgrade', 'certroute', chartDir, '-n', NS, ...chartValues(), '--wait', '--timeout', '5m']);
    await applyManifests(traefikManifests({ image: env.images.traefik, web: env.traefik.web, websecure: env.traefik.websecure }));
    await k(['-n', 'traefik', 'rollout', 'status', 'deployment/traefik', '--timeout=180s']);
  }
});

interface AuditEvent {
  user?: { username?: string };
  verb?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
}

test.serial("no request the controller made with the chart's ServiceAccount token was refused with 403 during the whole run", (t) => {
  const events = readFileSync(auditLog, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditEvent)
    .filter((e) => e.user?.username === serviceAccountUser);
  t.true(events.some((e) => ['create', 'update', 'patch'].includes(e.verb ?? '') && e.objectRef?.resource === 'secrets'), 'the audit log holds the controller\'s requests, Secret writes among them');
  const refused = events.filter((e) => e.responseStatus?.code === 403)
    .map((e) => `${e.verb} ${e.objectRef?.resource ?? ''} ${e.objectRef?.namespace ?? ''}/${e.objectRef?.name ?? ''}`);
  t.deepEqual(refused, []);
});
