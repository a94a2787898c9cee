/**
 * Scenario 7: an IngressRoute annotated with cert-manager.io/cluster-issuer
 * → Traefik serves the certificate certroute got for it, the whole path a
 * user cares about (shim → Certificate → ACME → Secret → Traefik reload), in
 * both wiring modes. The measurement is bench/traefik-latency.ts's, which
 * starts its own controller per mode (with leader election, as deployed) and,
 * for middleware mode, restarts Traefik with the plugin and restores it.
 */
import { measureIngressRouteToServed, type Wiring } from '../traefik-latency.ts';
import { p50, p95, round } from '../lib/stats.ts';
import { atMost, figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

const MODES: Wiring[] = ['route', 'middleware'];

export const ingressRoute: Scenario = {
  id: 'ingressroute',
  title: 'IngressRoute annotated → Traefik serves the issued certificate',
  async run(ctx: BenchContext): Promise<Result[]> {
    const runs = ctx.scale(10, 3);
    const results: Result[] = [];
    for (const wiring of MODES) {
      const ms = await measureIngressRouteToServed({ runs, wiring });
      ctx.log(`  ${wiring} mode runs (ms): ${ms.join(', ')}`);
      results.push(
        atMost(`IngressRoute annotated → served, ${wiring} mode: p50 (${ms.length} runs)`, round(p50(ms)), 3000, 'ms'),
        figure(`IngressRoute annotated → served, ${wiring} mode: p95 (${ms.length} runs)`, round(p95(ms)), 'ms'),
      );
    }
    return results;
  },
};
