/**
 * Certificate metrics under cert-manager's names and labels (docs/ARCHITECTURE.md, decision 1), so existing
 * dashboards and alerts keep working: ready_status is one-hot over True/False/Unknown, the
 * timestamps are Unix seconds, and a deleted Certificate leaves no series behind. The series are
 * read from the Certificate cache at each scrape; here the cache is a Map the test edits.
 */
import test from 'ava';
import { Metrics } from '../../src/metrics/metrics.ts';
import type { Certificate } from '../../src/api/types.ts';
import { certificate, inNamespace, ready, withCertificateStatus, withIssuer } from '../helpers/builders.ts';

const NOT_AFTER = '2030-03-31T12:00:00Z';
const NOT_BEFORE = '2030-01-01T12:00:00Z';
const RENEWAL = '2030-03-01T12:00:00Z';
const secs = (iso: string) => Date.parse(iso) / 1000;

const issued = withCertificateStatus({ notAfter: NOT_AFTER, notBefore: NOT_BEFORE, renewalTime: RENEWAL });

/** Metrics over a stand-in for the Certificate cache: `put` is a watch event's add or update, `drop` its delete. */
function overCache(...certs: Certificate[]): { m: Metrics; put(c: Certificate): void; drop(c: Certificate): void } {
  const cache = new Map<string, Certificate>();
  const put = (c: Certificate): void => void cache.set(`${c.metadata.namespace}/${c.metadata.name}`, c);
  for (const c of certs) put(c);
  return { m: new Metrics({ defaultMetrics: false, certificates: () => cache.values() }), put, drop: (c) => void cache.delete(`${c.metadata.namespace}/${c.metadata.name}`) };
}

/** The samples of one metric, read back from the exposition as Prometheus would read it. */
async function series(m: Metrics, name: string): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  const text = await m.text();
  if (!new RegExp(`^# TYPE ${name} `, 'm').test(text)) throw new Error(`no metric ${name}`);
  return text.split('\n').flatMap((line) => {
    const sample = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample || sample[1] !== name) return [];
    const labels = Object.fromEntries([...(sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k!, v!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))]));
    return [{ labels, value: Number(sample[3]) }];
  });
}

/** condition → value for one Certificate's ready_status. */
async function readiness(m: Metrics, name = 'web'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await series(m, 'certmanager_certificate_ready_status')) if (s.labels.name === name) out[String(s.labels.condition)] = s.value;
  return out;
}

test('ready_status is one-hot over True, False and Unknown', async (t) => {
  const table: Array<{ name: string; cert: Certificate; want: Record<string, number> }> = [
    { name: 'Ready=True', cert: certificate('web', ready('True')), want: { True: 1, False: 0, Unknown: 0 } },
    { name: 'Ready=False', cert: certificate('web', ready('False')), want: { True: 0, False: 1, Unknown: 0 } },
    { name: 'Ready=Unknown', cert: certificate('web', ready('Unknown')), want: { True: 0, False: 0, Unknown: 1 } },
    { name: 'no Ready condition yet', cert: certificate('web'), want: { True: 0, False: 0, Unknown: 1 } },
  ];
  for (const row of table) {
    const { m } = overCache(row.cert);
    t.deepEqual(await readiness(m), row.want, row.name);
  }
});

test('a status flip moves the one hot value; it never leaves two conditions at 1', async (t) => {
  const { m, put } = overCache(certificate('web', ready('False')));
  t.deepEqual(await readiness(m), { True: 0, False: 1, Unknown: 0 });
  put(certificate('web', ready('True')));
  t.deepEqual(await readiness(m), { True: 1, False: 0, Unknown: 0 });
});

test('ready_status carries cert-manager’s labels, with issuer kind and group defaulted', async (t) => {
  const { m } = overCache(certificate('web', inNamespace('shop'), withIssuer('ca'), ready('True')));
  const trueSeries = (await series(m, 'certmanager_certificate_ready_status')).find((s) => s.labels.condition === 'True');
  t.deepEqual(trueSeries?.labels, { name: 'web', namespace: 'shop', condition: 'True', issuer_name: 'ca', issuer_kind: 'Issuer', issuer_group: 'cert-manager.io' });
});

test('expiration, not_after, not_before and renewal are the status timestamps in Unix seconds', async (t) => {
  const { m } = overCache(certificate('web', ready('True'), issued));
  const table: Array<[string, number]> = [
    ['certmanager_certificate_expiration_timestamp_seconds', secs(NOT_AFTER)],
    ['certmanager_certificate_not_after_timestamp_seconds', secs(NOT_AFTER)],
    ['certmanager_certificate_not_before_timestamp_seconds', secs(NOT_BEFORE)],
    ['certmanager_certificate_renewal_timestamp_seconds', secs(RENEWAL)],
  ];
  for (const [name, value] of table) {
    const s = await series(m, name);
    t.is(s.length, 1, name);
    t.is(s[0]?.value, value, name);
    t.deepEqual(s[0]?.labels, { name: 'web', namespace: 'apps', issuer_name: 'letsencrypt', issuer_kind: 'ClusterIssuer', issuer_group: 'cert-manager.io' }, name);
  }
});

test('a Certificate not issued yet reports 0 for its timestamps, as cert-manager does', async (t) => {
  const { m } = overCache(certificate('web'));
  t.is((await series(m, 'certmanager_certificate_expiration_timestamp_seconds'))[0]?.value, 0);
  t.is((await series(m, 'certmanager_certificate_renewal_timestamp_seconds'))[0]?.value, 0);
});

test('a deleted Certificate leaves no series, and the others keep theirs', async (t) => {
  const web = certificate('web', ready('True'), issued);
  const { m, drop } = overCache(web, certificate('api', ready('False'), issued));
  t.true((await series(m, 'certmanager_certificate_ready_status')).some((s) => s.labels.name === 'web'), 'web is exported before the delete');
  drop(web);
  const names = [
    'certmanager_certificate_ready_status',
    'certmanager_certificate_expiration_timestamp_seconds',
    'certmanager_certificate_not_after_timestamp_seconds',
    'certmanager_certificate_not_before_timestamp_seconds',
    'certmanager_certificate_renewal_timestamp_seconds',
  ];
  for (const name of names) {
    const left = (await series(m, name)).map((s) => s.labels.name);
    t.false(left.includes('web'), `${name} still has web`);
    t.true(left.includes('api'), `${name} lost api`);
  }
});

test('changing a Certificate’s issuerRef leaves no series for the old issuer', async (t) => {
  // Otherwise `sum by (name) (certmanager_certificate_ready_status{condition="True"})` counts the
  // Certificate twice.
  const { m, put, drop } = overCache(certificate('web', withIssuer('staging', 'ClusterIssuer'), ready('True'), issued));
  put(certificate('web', withIssuer('production', 'ClusterIssuer'), ready('True'), issued));
  const issuers = new Set((await series(m, 'certmanager_certificate_ready_status')).map((s) => s.labels.issuer_name));
  t.deepEqual([...issuers], ['production']);
  drop(certificate('web', withIssuer('production', 'ClusterIssuer')));
  t.deepEqual(await series(m, 'certmanager_certificate_ready_status'), [], 'deleting the Certificate leaves nothing');
});

test('issuer ready_status is one-hot per Issuer and per ClusterIssuer', async (t) => {
  const m = new Metrics({ defaultMetrics: false });
  m.observeIssuer('ClusterIssuer', undefined, 'le', [{ type: 'Ready', status: 'True' }]);
  m.observeIssuer('Issuer', 'shop', 'ca', [{ type: 'Ready', status: 'False' }]);
  const cluster = Object.fromEntries((await series(m, 'certmanager_clusterissuer_ready_status')).map((s) => [s.labels.condition, s.value]));
  const ns = Object.fromEntries((await series(m, 'certmanager_issuer_ready_status')).map((s) => [s.labels.condition, s.value]));
  t.deepEqual(cluster, { True: 1, False: 0, Unknown: 0 });
  t.deepEqual(ns, { True: 0, False: 1, Unknown: 0 });
});

test('the exposition carries cert-manager’s metric names, so dashboards and alerts work unchanged', async (t) => {
  const { m } = overCache(certificate('web', ready('True'), issued));
  m.observeIssuer('ClusterIssuer', undefined, 'le', [{ type: 'Ready', status: 'True' }]);
  m.acmeRequests.inc({ scheme: 'https', host: 'acme.test', action: 'new-order', method: 'POST', status: '201' });
  m.acmeDuration.observe({ scheme: 'https', host: 'acme.test', action: 'new-order', method: 'POST', status: '201' }, 0.1);
  m.syncCount.inc({ controller: 'certificates' });
  const text = await m.text();
  for (const name of [
    'certmanager_certificate_ready_status',
    'certmanager_certificate_expiration_timestamp_seconds',
    'certmanager_certificate_not_after_timestamp_seconds',
    'certmanager_certificate_not_before_timestamp_seconds',
    'certmanager_certificate_renewal_timestamp_seconds',
    'certmanager_clusterissuer_ready_status',
    'certmanager_issuer_ready_status',
    'certmanager_http_acme_client_request_count',
    'certmanager_http_acme_client_request_duration_seconds',
    'certmanager_controller_sync_call_count',
    'certmanager_controller_sync_error_count',
  ]) {
    t.regex(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  const line = `certmanager_certificate_expiration_timestamp_seconds{name="web",namespace="apps",issuer_name="letsencrypt",issuer_kind="ClusterIssuer",issuer_group="cert-manager.io"} ${secs(NOT_AFTER)}`;
  t.true(text.split('\n').includes(line), line);
});

test('default process metrics are on unless turned off', async (t) => {
  t.regex(await new Metrics().registry.metrics(), /^process_cpu_user_seconds_total/m);
  t.notRegex(await new Metrics({ defaultMetrics: false }).registry.metrics(), /^process_cpu_user_seconds_total/m);
});

test('a deleted Issuer or ClusterIssuer leaves no series behind, and the others stay', async (t) => {
  // Without it, a tenant creating and deleting Issuers in a loop grows the exposition for ever.
  const m = new Metrics({ defaultMetrics: false });
  for (let i = 0; i < 50; i++) m.observeIssuer('Issuer', 'team', `churn-${i}`, [{ type: 'Ready', status: 'True', reason: 'x', message: '' }]);
  m.observeIssuer('Issuer', 'team', 'kept', undefined);
  m.observeIssuer('ClusterIssuer', undefined, 'le', undefined);
  for (let i = 0; i < 50; i++) m.forgetIssuer('Issuer', 'team', `churn-${i}`);
  m.forgetIssuer('ClusterIssuer', undefined, 'le');
  t.deepEqual([...new Set((await series(m, 'certmanager_issuer_ready_status')).map((s) => s.labels.name))], ['kept']);
  t.deepEqual(await series(m, 'certmanager_clusterissuer_ready_status'), []);
});

test('label values are escaped as the text format requires, and read back unchanged', async (t) => {
  const odd = 'le "prod" \\ backslash';
  const { m } = overCache(certificate('web', ready('True'), issued, (c) => void (c.spec.issuerRef = { name: odd, kind: 'ClusterIssuer' })));
  const [sample] = await series(m, 'certmanager_certificate_expiration_timestamp_seconds');
  t.is(sample?.labels.issuer_name, odd);
  t.is(sample?.value, secs(NOT_AFTER));
});

test('each Certificate family is one block, with one HELP and TYPE, however many pieces its samples come in', async (t) => {
  const certs = Array.from({ length: 1000 }, (_, i) => certificate(`web-${i}`, ready('True'), issued));
  const { m } = overCache(...certs);
  const pieces: string[] = [];
  for await (const piece of m.exposition()) pieces.push(piece);
  t.true(pieces.length > 5, 'served in pieces');
  const lines = pieces.join('').split('\n');
  const family = 'certmanager_certificate_ready_status';
  t.is(lines.filter((l) => l === `# TYPE ${family} gauge`).length, 1);
  const first = lines.indexOf(`# TYPE ${family} gauge`);
  const block = lines.slice(first + 1, first + 1 + 3000);
  t.true(block.every((l) => l.startsWith(`${family}{`)), 'its 3,000 samples follow its TYPE line, with nothing between');
  t.is(new Set(block).size, 3000);
});
