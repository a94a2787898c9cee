/**
 * Observability (issue 5 §4 and §6): what Prometheus scrapes from `/metrics`
 * under cert-manager's names and labels, the health endpoints a kubelet
 * probes, the JSON log a log pipeline reads, and the Events `kubectl
 * describe` shows, all after one real issuance through Traefik and Pebble.
 */
import test from 'ava';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { exposeLocalPort, kubectl, loadKubeConfig, readEnv, type StackEnv } from '../env/stack.ts';
import { freePorts } from '../env/ports.ts';
import { PebblePaths, requestsTo, startAcmeProxy } from '../helpers/acme-proxy.ts';
import {
  annotatedIngressRoute,
  applyYaml, cleanUpFile, CONTROLLER_NAMESPACE, freshNamespace, kubectlJson, readLog, secretPem, startController, waitFor,
  waitForCertificateRevision, type CertificateView, type ControllerProcess, type SecretView,
} from '../helpers/controller.ts';
import { certificateYaml, createCertificates, deleteIssuers, newIssuer } from '../helpers/issuance.ts';
import { servedCertificate, serveLocal, type LocalServer, type Served } from '../helpers/tls.ts';
import { CHALLENGE_PATH, routeTakingChallenges, viaWeb } from '../helpers/wiring.ts';

const env: StackEnv = readEnv();
let issuer = '';
const host = `app-${Date.now().toString(36)}.metrics.test`; // Traefik must not pick an earlier run's route
let controller: ControllerProcess;
let backend: LocalServer;
let metricsPort: number;
let healthPort: number;
let ns: string;
let served: Served;
let secret: SecretView;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, enough of it for assertions: samples, and the names that have a TYPE line. */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, types };
}

async function scrape(): Promise<{ samples: Sample[]; types: Map<string, string>; contentType: string }> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return { ...parseMetrics(await res.text()), contentType: res.headers.get('content-type') ?? '' };
}

const find = (samples: Sample[], name: string, labels: Record<string, string>): Sample[] =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

const one = (samples: Sample[], name: string, labels: Record<string, string>): number | undefined => {
  const found = find(samples, name, labels);
  return found.length === 1 ? found[0]!.value : undefined;
};

test.before(async () => {
  [metricsPort, healthPort] = (await freePorts(2)) as [number, number];
  backend = await serveLocal((_req, res) => res.end('hello from the backend\n'));
  // Later flags override the helper's --metrics-port=0 --health-port=0.
  controller = await startController([`--metrics-port=${metricsPort}`, `--health-port=${healthPort}`], { name: `metrics-${process.pid}` });
  issuer = await newIssuer('pebble-metrics');
  ns = await freshNamespace('metrics');
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: backend.port });
  await applyYaml(annotatedIngressRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port }));
  await waitForCertificateRevision(ns, 'app-tls', 1, 90_000);
  secret = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'app-tls']);
  served = await waitFor('Traefik to serve the issued certificate', async () => {
    const s = await servedCertificate(env.traefik.websecure, host);
    return s.subjectAltName.includes(`DNS:${host}`) ? s : undefined;
  }, 60_000);
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
  await backend?.close();
});

test('the health port answers /livez and, once the caches are synced, /readyz', async (t) => {
  const livez = await fetch(`http://127.0.0.1:${healthPort}/livez`);
  t.is(livez.status, 200);
  const readyz = await waitFor('/readyz 200', async () => {
    const r = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
    return r.status === 200 ? r : undefined;
  }, 10_000);
  t.is(await readyz.text(), 'ok\n');
  t.is((await fetch(`http://127.0.0.1:${healthPort}/metrics`)).status, 404, 'the health port serves nothing else');
});

test('the expiration gauge equals the notAfter Traefik serves and the Secret holds, under cert-manager\'s name and labels', async (t) => {
  const labels = { name: 'app-tls', namespace: ns, issuer_name: issuer, issuer_kind: 'ClusterIssuer', issuer_group: 'cert-manager.io' };
  // The series are read from the cache at scrape time, and the ARI check may still move the
  // renewal time after issuance: a scrape counts only between two equal reads of the status.
  const { samples, contentType, renewalTime } = await waitFor('the Ready certificate in /metrics, with the status settled around the scrape', async () => {
    const before = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'app-tls']);
    const m = await scrape();
    const after = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'app-tls']);
    const settled = before.metadata.resourceVersion === after.metadata.resourceVersion;
    return settled && one(m.samples, 'certmanager_certificate_ready_status', { ...labels, condition: 'True' }) === 1 ? { ...m, renewalTime: after.status?.renewalTime } : undefined;
  }, 30_000);
  t.regex(contentType, /^text\/plain; version=0\.0\.4/);
  const servedNotAfter = Date.parse(served.cert.validTo) / 1000;
  const secretNotAfter = Date.parse(new X509Certificate(secretPem(secret, 'tls.crt')).validTo) / 1000;
  t.is(secretNotAfter, servedNotAfter, 'Traefik serves the Secret\'s certificate');
  t.is(one(samples, 'certmanager_certificate_expiration_timestamp_seconds', labels), servedNotAfter);
  t.is(one(samples, 'certmanager_certificate_not_after_timestamp_seconds', labels), servedNotAfter);
  t.is(one(samples, 'certmanager_certificate_not_before_timestamp_seconds', labels), Date.parse(served.cert.validFrom) / 1000);
  t.is(one(samples, 'certmanager_certificate_renewal_timestamp_seconds', labels), Date.parse(renewalTime!) / 1000);
  t.is(one(samples, 'certmanager_certificate_ready_status', { ...labels, condition: 'False' }), 0);
  t.is(one(samples, 'certmanager_certificate_ready_status', { ...labels, condition: 'Unknown' }), 0);
});

test('ACME client, controller sync, issuer and responder metrics count what the issuance did', async (t) => {
  const { samples, types } = await scrape();
  const pebbleHost = new URL(env.pebble.directory).host;
  const acme = find(samples, 'certmanager_http_acme_client_request_count', { host: pebbleHost, scheme: 'https' });
  t.true(acme.reduce((n, s) => n + s.value, 0) > 0, `ACME requests to ${pebbleHost} are counted`);
  t.true(acme.some((s) => s.labels.method === 'POST' && s.labels.status === '201'), 'the order Pebble created (201) is counted');
  // The action label is a path segment, never an order or authorization ID: the series stay few.
  const actions = new Set(acme.map((s) => s.labels.action ?? ''));
  t.true([...actions].every((a) => /^[\w-]{1,32}$/.test(a)) && actions.size <= 16, `bounded action labels: ${[...actions].join(', ')}`);
  t.true(find(samples, 'certmanager_http_acme_client_request_duration_seconds_count', { host: pebbleHost }).length > 0, 'ACME latencies are observed');
  for (const controller of ['certificates', 'certificaterequests', 'orders', 'challenges', 'clusterissuers']) {
    t.true((one(samples, 'certmanager_controller_sync_call_count', { controller }) ?? 0) > 0, `sync calls of ${controller}`);
  }
  t.is(types.get('certmanager_controller_sync_error_count'), 'counter');
  t.is(one(samples, 'certmanager_clusterissuer_ready_status', { name: issuer, condition: 'True' }), 1);
  t.is(one(samples, 'certmanager_clusterissuer_ready_status', { name: issuer, condition: 'False' }), 0);
  t.is(types.get('certmanager_issuer_ready_status'), 'gauge');
  t.is(types.get('certmanager_certificate_challenge_status'), 'gauge');
  t.true((one(samples, 'certroute_responder_requests_total', { outcome: 'served' }) ?? 0) > 0, 'the responder served the token to Pebble');
});

interface ChallengeView {
  metadata: { name: string };
  spec: { dnsName: string };
  status?: { presented?: boolean; state?: string; reason?: string };
}

test.serial('challenge_status is 1 for a pending challenge, labelled with its state and domain, and its series goes with the Challenge', async (t) => {
  const ns = await freshNamespace('metrics-pending');
  const host = `pending.${ns}.test`;
  // A user route that outranks certroute's challenge route takes this host's challenge path,
  // so the self-check fails and the challenge stays pending until the route goes.
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: backend.port });
  await applyYaml(routeTakingChallenges(ns, host, backend.port));
  await waitFor('Traefik to route the host\'s challenge path to the backend', async () => (await viaWeb(host, `${CHALLENGE_PATH}x`)).body.includes('hello'), 30_000);
  await applyYaml(certificateYaml(ns, 'pending', [host], issuer));
  const challenge = await waitFor('a presented Challenge whose self-check fails', async () => {
    const { items } = await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges']);
    return items.find((c) => c.status?.presented && /self-check/.test(c.status.reason ?? ''));
  }, 60_000);
  const pending = await waitFor('the pending challenge in /metrics', async () => {
    const series = find((await scrape()).samples, 'certmanager_certificate_challenge_status', { domain: host, id: challenge.metadata.name });
    return series.length === 1 && series[0]!.labels.status === 'pending' ? series[0] : undefined;
  }, 30_000);
  t.is(pending.value, 1);
  t.like(pending.labels, { status: 'pending', domain: host, type: 'HTTP-01', id: challenge.metadata.name });
  t.regex(pending.labels.reason ?? '', /self-check/, 'the reason says why it waits');

  // Let the challenge through: it is validated, the certificate issued, the Challenge deleted.
  await kubectl(['-n', ns, 'delete', 'ingressroute', 'takes-challenges']);
  await waitForCertificateRevision(ns, 'pending', 1, 90_000);
  await waitFor('the Challenge to be deleted', async () => (await kubectlJson<{ items: unknown[] }>(['-n', ns, 'get', 'challenges'])).items.length === 0, 60_000);
  const left = await waitFor('the challenge series to go', async () => {
    const series = find((await scrape()).samples, 'certmanager_certificate_challenge_status', { domain: host });
    return series.length === 0 ? series : undefined;
  }, 30_000);
  t.deepEqual(left, [], 'no series for the deleted Challenge, in any state');
});

test.serial('sync_error_count counts a reconcile that failed for real: the CA answering 500 to a new order', async (t) => {
  const proxy = await startAcmeProxy(env);
  t.teardown(() => proxy.close());
  const proxied = await newIssuer('pebble-metrics-500', proxy.directory);
  const ns = await freshNamespace('metrics-500');
  const errors = (samples: Sample[]) => new Map(find(samples, 'certmanager_controller_sync_error_count', {}).map((s) => [s.labels.controller!, s.value]));
  const before = errors((await scrape()).samples);
  const logFrom = readLog(controller).length;
  proxy.failNext(PebblePaths.newOrder, 1, { status: 500 });
  const since = Date.now();
  await createCertificates(ns, proxied, ['flaky']);
  await waitFor('the injected 500', async () => requestsTo(proxy, PebblePaths.newOrder).some((r) => r.at >= since && r.injected), 60_000);
  const failure = await waitFor('the failed reconcile in the log', async () => readLog(controller).slice(logFrom).split('\n').flatMap((l) => {
    try {
      const line = JSON.parse(l) as { msg?: string; key?: string; controller?: string };
      return line.msg === 'reconcile failed; will retry' && line.key?.startsWith(`${ns}/`) ? [line] : [];
    } catch {
      return [];
    }
  })[0], 30_000);
  const rose = await waitFor(`sync_error_count of ${failure.controller} to rise`, async () => {
    const now = errors((await scrape()).samples).get(failure.controller!) ?? 0;
    return now > (before.get(failure.controller!) ?? 0) ? now : undefined;
  }, 30_000);
  t.true(rose >= (before.get(failure.controller!) ?? 0) + 1, `certmanager_controller_sync_error_count{controller="${failure.controller}"} went from ${before.get(failure.controller!) ?? 0} to ${rose}`);
  await waitForCertificateRevision(ns, 'flaky', 1, 90_000);
});

test('every log line is JSON with a level; reconcile lines carry the object key; no private key is ever logged', async (t) => {
  const text = readLog(controller);
  const lines = text.split('\n').filter(Boolean);
  t.true(lines.length > 0);
  const parsed = lines.map((line) => {
    try {
      return JSON.parse(line) as { level?: unknown; msg?: string; key?: string; controller?: string };
    } catch {
      return { notJson: line };
    }
  });
  t.deepEqual(parsed.filter((l) => 'notJson' in l), [], 'every line is JSON');
  t.true(parsed.every((l) => typeof (l as { level?: unknown }).level === 'number'), 'every line has a numeric pino level');
  const reconciles = parsed.filter((l): l is { msg: string; key: string; controller: string } => 'msg' in l && (l.msg === 'reconciled' || l.msg === 'reconcile failed; will retry'));
  t.true(reconciles.length > 0);
  t.true(reconciles.every((l) => typeof l.key === 'string' && /^[^/]*\/[^/]+$/.test(l.key) && typeof l.controller === 'string'), 'every reconcile line has controller and namespace/name key');
  t.true(reconciles.some((l) => l.controller === 'certificates' && l.key === `${ns}/app-tls`));

  const keyPem = secretPem(secret, 'tls.key');
  t.truthy(createPrivateKey(keyPem));
  const keyBody = keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  t.false(text.includes('PRIVATE KEY'), 'no PEM private key');
  t.false(text.includes(secret.data['tls.key']!), 'not the Secret\'s base64 tls.key');
  for (let i = 0; i + 40 <= keyBody.length; i += 40) {
    if (text.includes(keyBody.slice(i, i + 40))) t.fail(`the log contains part of the private key (offset ${i})`);
  }
  const account = await kubectlJson<SecretView>(['-n', CONTROLLER_NAMESPACE, 'get', 'secret', `${issuer}-account`]);
  t.false(text.includes(account.data['tls.key']!), 'not the ACME account key');
});

interface EventView {
  involvedObject: { kind: string; name: string };
  reason: string;
  message: string;
  type: string;
}

test('Events tell the story: kubectl describe certificate, and the Order and Challenge by kind', async (t) => {
  const describe = await waitFor('the success Event', async () => {
    const out = (await kubectl(['-n', ns, 'describe', 'certificate', 'app-tls'])).stdout;
    return /successfully issued/.test(out) ? out : undefined;
  }, 10_000);
  const events = describe.slice(describe.indexOf('Events:'));
  t.regex(events, /Normal\s+Issuing\s+.*Issuing certificate as Secret does not exist/);
  t.regex(events, /Normal\s+Requested\s+.*Created new CertificateRequest resource "app-tls-1"/);
  t.regex(events, /Normal\s+Issuing\s+.*The certificate has been successfully issued/);

  const byKind = async (kind: string) => (await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.kind=${kind}`])).items;
  const reasons = async (kind: string) => (await byKind(kind)).map((e) => e.reason);
  t.deepEqual(new Set(await reasons('CertificateRequest')), new Set(['OrderCreated', 'CertificateIssued']));
  const orderEvents = await byKind('Order');
  const orderReasons = orderEvents.map((e) => e.reason);
  t.true(orderReasons.includes('Created') && orderReasons.includes('Complete'), `Order events: ${orderReasons.join(', ')}`);
  // As cert-manager: "Created" names the Challenge resource made for each name, not the ACME order.
  t.true(orderEvents.some((e) => e.reason === 'Created' && /^Created Challenge resource "[^"]+" for domain "/.test(e.message) && e.message.includes(host)), `Order events: ${orderEvents.map((e) => e.message).join('; ')}`);
  const challengeEvents = await byKind('Challenge');
  const challengeReasons = challengeEvents.map((e) => e.reason);
  for (const r of ['Presented', 'DomainVerified']) t.true(challengeReasons.includes(r), `Challenge events include ${r}: ${challengeReasons.join(', ')}`);
  t.true(challengeEvents.some((e) => e.message.includes(host)));
  t.true((await reasons('IngressRoute')).includes('CreateCertificate'), 'the shim records creating the Certificate on the IngressRoute');
});
