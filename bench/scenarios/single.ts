/**
 * Scenario 2: one ACME Certificate at a time, create → Ready, with the real
 * controller running: what a user waits for after `kubectl apply`. Timed from
 * just before the POST to the watch event that shows Ready=True.
 */
import { Resources } from '../../src/api/types.ts';
import { BenchController } from '../lib/controller.ts';
import { certificate, cleanIssuance, freshNamespace, ReadyTracker } from '../lib/kube.ts';
import { p50, p95, round } from '../lib/stats.ts';
import { atMost, figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

const TIMEOUT_MS = 60_000;

export const single: Scenario = {
  id: 'single',
  title: 'single ACME Certificate, create → Ready, sequential',
  async run(ctx: BenchContext): Promise<Result[]> {
    const ns = await freshNamespace(ctx.client, 'single');
    const tracker = new ReadyTracker(ctx.client, ns);
    await tracker.start();
    const ctl = await BenchController.start('single', [`--workers=${ctx.concurrency}`]);
    try {
      const issue = async (name: string): Promise<number> => {
        const start = performance.now();
        await ctx.client.create(Resources.certificates, certificate(ns, name, `${name}.${ns}.bench.test`, { name: ctx.issuer, kind: 'ClusterIssuer' }));
        return (await tracker.ready(name, TIMEOUT_MS)) - start;
      };
      // Untimed: the account lookup and the challenge route reaching Traefik happen once per controller.
      await issue('warmup');
      const runs: number[] = [];
      const n = ctx.scale(20, 5);
      for (let i = 0; i < n; i++) runs.push(await issue(`single-${i}`));
      const results = [
        figure(`single ACME certificate: create → Ready p50 (${n} runs)`, round(p50(runs)), 'ms'),
        figure(`single ACME certificate: create → Ready p95 (${n} runs)`, round(p95(runs)), 'ms'),
      ];
      // The target is relative: the raw floor measured in the same run, on the same Pebble.
      if (ctx.floor.p50Ms) results.push(atMost('single ACME certificate: p50 / raw floor p50', round(p50(runs) / ctx.floor.p50Ms), 1.5, '×'));
      return results;
    } finally {
      await tracker.stop();
      await cleanIssuance(ctx.client, ns);
      await ctl.stop();
    }
  },
};
