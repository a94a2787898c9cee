/**
 * Scenario 5: the controller at rest in a big cluster: 10,000 Ready
 * Certificates with their Secrets, and 30,000 unrelated Secrets it must not
 * cache. Targets: RSS ≤ 200 MB once synced and idle, every Certificate
 * evaluated ≤ 20 s after start, ≤ 10 s of CPU from start to idle.
 *
 * The state is built cheaply: 1,024 distinct leaves sharing one RSA 2048 key
 * (cert-manager's default; ca.crt included, so each Secret is full-sized),
 * used in turn by the Secrets, each named and annotated for its Certificate
 * as cert-manager writes it. More distinct leaves than certroute's parse memo
 * holds (512), cycled, so no sync is cheaper than it would be with 10,000
 * different certificates.
 *
 * Two starts. The first finds Certificates with no status beside valid
 * Secrets (a migration from cert-manager, or a first install over existing
 * Secrets): it accepts every Secret and writes each Ready status; its figures
 * are reported, without targets. The second is the steady state the targets
 * are for: a controller restarted over Certificates that are all Ready (a
 * rollout, a new leader), which must find nothing to do and write nothing.
 * Runs last: 50,000 objects slow everything after them, and are deleted at
 * the end.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Issuer, ResourceDef } from '../../src/api/types.ts';
import { MANAGED_LABEL, Resources, SecretAnnotations as SA } from '../../src/api/types.ts';
import { resourcePath, type KubeClient } from '../../src/kube/client.ts';
import { BenchController, sumOf } from '../lib/controller.ts';
import { certificate, createAll, deleteCollection, freshNamespace, ReadyTracker } from '../lib/kube.ts';
import { makeCa, signLeaves, tlsSecret } from '../lib/pki.ts';
import { round } from '../lib/stats.ts';
import { atMost, figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

const DNS_NAME = 'steady.bench.test';
const ISSUER = 'steady-ca';
const DISTINCT_LEAVES = 1024;

/** Collection deletes of 30,000 objects can outlast the apiserver's request timeout: repeat until empty. */
async function emptyCollection(client: KubeClient, def: ResourceDef, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await deleteCollection(client, def, namespace).catch(() => undefined);
    const left = (await client.raw('GET', `${resourcePath(def, namespace)}?limit=1`)) as { items: unknown[] };
    if (left.items.length === 0) return;
    await sleep(1_000);
  }
  throw new Error(`${def.plural} in ${namespace} were not all deleted within ${timeoutMs} ms`);
}

export const steadyState: Scenario = {
  id: 'steady-state',
  title: 'steady state: 10,000 Ready Certificates and 30,000 unrelated Secrets',
  async run(ctx: BenchContext): Promise<Result[]> {
    const certs = ctx.scale(10_000, 500);
    const noise = ctx.scale(30_000, 1_500);
    const ns = await freshNamespace(ctx.client, 'steady');
    const noiseNs = await freshNamespace(ctx.client, 'noise');
    const label = `${certs} Ready Certificates + ${noise} unrelated Secrets`;
    let tracker: ReadyTracker | undefined;
    try {
      const ca = await makeCa('certroute bench steady-state CA');
      const signing = performance.now();
      const leaves = await signLeaves(ca, [DNS_NAME], Math.min(certs, DISTINCT_LEAVES));
      ctx.setup[`steady-state: signing ${leaves.length} leaves (s)`] = round((performance.now() - signing) / 1000);
      await ctx.client.create(Resources.secrets, tlsSecret(ns, ISSUER, ca));
      await ctx.client.create<Issuer>(Resources.issuers, { metadata: { name: ISSUER, namespace: ns }, spec: { ca: { secretName: ISSUER } } });

      ctx.log(`  creating ${noise} unrelated Secrets, ${certs} TLS Secrets and ${certs} Certificates (32 POSTs in flight)`);
      const filler = randomBytes(192).toString('base64');
      ctx.setup[`steady-state: creating ${noise} unrelated Secrets (s)`] = round(
        (await createAll(ctx.client, Resources.secrets, (i) => ({ metadata: { name: `noise-${i}`, namespace: noiseNs }, type: 'Opaque', data: { password: filler } }), noise)) / 1000,
      );
      const annotations = (i: number) => ({
        [SA.certificateName]: `steady-${i}`, [SA.issuerName]: ISSUER, [SA.issuerKind]: 'Issuer', [SA.issuerGroup]: 'cert-manager.io',
        [SA.commonName]: '', [SA.altNames]: DNS_NAME, [SA.ipSans]: '', [SA.uriSans]: '',
      });
      ctx.setup[`steady-state: creating ${certs} TLS Secrets (s)`] = round(
        (await createAll(ctx.client, Resources.secrets, (i) => tlsSecret(ns, `steady-${i}-tls`, leaves[i % leaves.length]!, { labels: { [MANAGED_LABEL]: 'true' }, annotations: annotations(i) }), certs)) / 1000,
      );
      ctx.setup[`steady-state: creating ${certs} Certificates (s)`] = round(
        (await createAll(ctx.client, Resources.certificates, (i) => certificate(ns, `steady-${i}`, DNS_NAME, { name: ISSUER, kind: 'Issuer' }), certs)) / 1000,
      );
      tracker = new ReadyTracker(ctx.client, ns);
      await tracker.start();

      // First start: adopt the Secrets and write every Ready status.
      const firstStart = performance.now();
      const first = await BenchController.start('steady-first', [`--workers=${ctx.concurrency}`]);
      const firstReady = await tracker.count(certs, 60_000 + certs * 50);
      await first.waitIdle(5_000, 60_000 + certs * 50);
      const firstStats = first.stats();
      await first.stop();
      ctx.log(`  first start (no status yet): all ${certs} Ready after ${round((firstReady - firstStart) / 1000)} s, ${round(firstStats.cpuSeconds)} s of CPU, peak RSS ${round(firstStats.peakRssMB)} MB`);

      // The steady state: a restart over Certificates that are all Ready.
      const startedAt = Date.now();
      const start = performance.now();
      const ctl = await BenchController.start('steady', [`--workers=${ctx.concurrency}`]);
      const listedMs = performance.now() - start;
      const evaluated = await ctl.waitLog('initial pass done', { controller: 'certificates' }, 60_000 + certs * 50);
      const idleAt = await ctl.waitIdle(5_000, 60_000 + certs * 50);
      // Before any scrape: rendering 70,000 series allocates tens of MB.
      const stats = ctl.stats();
      const metrics = await ctl.metrics();
      const syncs = metrics.get('certmanager_controller_sync_call_count{controller="certificates"}') ?? Number.NaN;
      // Re-issuing means creating CertificateRequests. (Counting the request controller's syncs
      // counted requests other scenarios left in other namespaces, which every start looks at.)
      const issued = metrics.get('certroute_kube_requests_by_resource_total{verb="create",resource="certificaterequests"}') ?? 0;
      const writes = ['create', 'update', 'patch', 'delete'].reduce((n, verb) => n + (metrics.get(`certroute_kube_requests_total{verb="${verb}"}`) ?? 0), 0);
      const writesByResource = [...metrics].filter(([k, v]) => v > 0 && /^certroute_kube_requests_by_resource_total\{verb="(create|update|patch|delete)"/.test(k));
      ctx.log(`  API writes: ${writesByResource.map(([k, v]) => `${k.replace(/^[^{]*\{verb="(\w+)",resource="([^"]+)"\}$/, '$1 $2')} ${v}`).join(', ') || 'none'}`);
      const heapUsedMB = sumOf(metrics, 'nodejs_heap_size_used_bytes') / 1e6;
      ctx.log(`  controller memory: RSS ${round(stats.rssMB)} MB, V8 heap ${round(heapUsedMB)} MB used of ${round(sumOf(metrics, 'nodejs_heap_size_total_bytes') / 1e6)} MB, external ${round(sumOf(metrics, 'nodejs_external_memory_bytes') / 1e6)} MB`);
      // V8 hands freed heap pages back only when its memory reducer sees the process idle for a while.
      const settleS = ctx.quick ? 30 : 60;
      await sleep(settleS * 1000);
      const settled = ctl.stats();
      await ctl.stop();
      if (issued > 0) ctx.log(`  warning: ${issued} CertificateRequests created: the controller re-issued instead of accepting the Secrets`);
      // The targets are for the full 10,000; a --quick run prints the same figures without them.
      const target = (scenario: string, value: number, limit: number, unit: string): Result => (certs === 10_000 ? atMost(scenario, value, limit, unit) : figure(`${scenario} (target ${limit} ${unit} is for 10,000)`, value, unit));
      return [
        target(`steady state, ${label}: controller RSS after sync, idle`, round(stats.rssMB), 200, 'MB'),
        figure(`steady state, ${label}: controller RSS ${settleS} s later`, round(settled.rssMB), 'MB'),
        figure(`steady state, ${label}: controller peak RSS during sync (VmHWM)`, round(stats.peakRssMB), 'MB'),
        figure(`steady state, ${label}: V8 heap used at that moment (live + garbage)`, round(heapUsedMB), 'MB'),
        figure(`steady state, ${label}: controller start → caches listed (/readyz)`, round(listedMs / 1000), 's'),
        target(`steady state, ${label}: controller start → every Certificate evaluated`, round((evaluated.time - startedAt) / 1000), 20, 's'),
        figure(`steady state, ${label}: controller start → queues idle`, round((idleAt - start) / 1000), 's'),
        target(`steady state, ${label}: controller CPU, start to idle`, round(stats.cpuSeconds), 10, 's'),
        figure(`steady state, ${label}: Certificate syncs`, syncs, `syncs (${round(syncs / certs)}/cert)`),
        figure(`steady state, ${label}: API writes (create, update, patch, delete)`, writes, 'requests'),
        figure(`first start over ${label} with no status yet: start → all Ready`, round((firstReady - firstStart) / 1000), 's'),
        figure(`first start over ${label} with no status yet: controller CPU, start to idle`, round(firstStats.cpuSeconds), 's'),
        figure(`first start over ${label} with no status yet: controller peak RSS (VmHWM)`, round(firstStats.peakRssMB), 'MB'),
      ];
    } finally {
      await tracker?.stop();
      await BenchController.stopAll();
      const t = performance.now();
      await emptyCollection(ctx.client, Resources.certificates, ns, 300_000);
      await emptyCollection(ctx.client, Resources.secrets, ns, 300_000);
      await emptyCollection(ctx.client, Resources.secrets, noiseNs, 300_000);
      await deleteCollection(ctx.client, Resources.issuers, ns);
      ctx.setup['steady-state: deleting everything (s)'] = round((performance.now() - t) / 1000);
    }
  },
};
