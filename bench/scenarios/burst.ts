/**
 * Scenario 3: 1,000 ACME Certificates created at once (32 POSTs in flight),
 * until the last is Ready. Besides the rate, what it cost the controller:
 * peak RSS and CPU from /proc, API requests by verb from its /metrics.
 */
import { Resources } from '../../src/api/types.ts';
import { BenchController, cpuPerCert, requestFigures, stackCpu } from '../lib/controller.ts';
import { certificate, cleanIssuance, createAll, freshNamespace, ReadyTracker } from '../lib/kube.ts';
import { round } from '../lib/stats.ts';
import { atLeast, figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

export const burst: Scenario = {
  id: 'burst',
  title: '1000 ACME Certificates at once',
  async run(ctx: BenchContext): Promise<Result[]> {
    const n = ctx.scale(1000, 50);
    const ns = await freshNamespace(ctx.client, 'burst');
    const tracker = new ReadyTracker(ctx.client, ns);
    await tracker.start();
    const ctl = await BenchController.start('burst', [`--workers=${ctx.concurrency}`]);
    const issuerRef = { name: ctx.issuer, kind: 'ClusterIssuer' as const };
    try {
      await ctx.client.create(Resources.certificates, certificate(ns, 'warmup', `warmup.${ns}.bench.test`, issuerRef));
      await tracker.ready('warmup', 60_000);
      const requestsBefore = await ctl.kubeRequests();
      const syncsBefore = await ctl.metrics();
      const cpuBefore = { controller: ctl.stats().cpuSeconds, ...stackCpu() };

      const start = performance.now();
      const createMs = await createAll(ctx.client, Resources.certificates, (i) => certificate(ns, `burst-${i}`, `burst-${i}.${ns}.bench.test`, issuerRef), n);
      const last = await tracker.count(n + 1, 120_000 + n * 400);
      const seconds = (last - start) / 1000;

      const stats = ctl.stats();
      const cpu = cpuPerCert(cpuBefore, { controller: stats.cpuSeconds, ...stackCpu() }, n);
      const requests = await ctl.kubeRequests();
      const syncs = [...(await ctl.metrics())].filter(([k]) => k.startsWith('certmanager_controller_sync_call_count{'));
      ctx.log(`  reconciles per certificate: ${syncs.map(([k, v]) => `${/controller="([^"]+)"/.exec(k)?.[1]} ${round((v - (syncsBefore.get(k) ?? 0)) / n)}`).join(', ')}`);
      ctx.setup[`burst: creating ${n} Certificates (s)`] = round(createMs / 1000);
      const rate = n / seconds;
      const results: Result[] = [
        figure(`${n} ACME certificates at once: total time`, round(seconds), 's'),
        figure(`${n} ACME certificates at once: rate`, round(rate), 'certs/s'),
      ];
      if (ctx.floor.ratePerSecond) {
        results.push(atLeast(`${n} ACME certificates at once: rate / raw floor rate (C=${ctx.concurrency})`, round((100 * rate) / ctx.floor.ratePerSecond), 75, '%'));
      }
      results.push(
        figure(`${n} ACME certificates at once: controller peak RSS (VmHWM)`, round(stats.peakRssMB), 'MB'),
        figure(`${n} ACME certificates at once: controller CPU`, round((cpu.controller! * n) / 1000), 's'),
        ...Object.entries(cpu).map(([proc, ms]) => figure(`${n} ACME certificates at once: CPU per certificate, ${proc}`, round(ms), 'ms')),
        ...requestFigures(`${n} ACME certificates at once`, n, requestsBefore, requests, ctx.log, 15),
      );
      return results;
    } finally {
      await tracker.stop();
      await cleanIssuance(ctx.client, ns);
      await ctl.stop();
    }
  },
};
