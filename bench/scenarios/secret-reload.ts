/**
 * Scenario 6: a TLS Secret is replaced (one PUT, as the controller writes
 * it) → Traefik serves the new serial on websecure. Polled with a fresh TLS
 * handshake every 20 ms. This is Traefik's reload path, which every renewal
 * goes through; no controller runs.
 */
import { p50, p95, round } from '../lib/stats.ts';
import { secretRoute, waitServed } from '../lib/traefik.ts';
import { atMost, figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

export const secretReload: Scenario = {
  id: 'secret-reload',
  title: 'Secret updated → Traefik serves the new serial',
  async run(ctx: BenchContext): Promise<Result[]> {
    const route = await secretRoute(ctx, 'reload');
    try {
      const runs: number[] = [];
      const n = ctx.scale(10, 3);
      for (let i = 0; i < n; i++) {
        const { serial, sentAt } = await route.swap();
        runs.push((await waitServed(ctx.env.traefik.websecure, route.host, (s) => s.serial === serial, 15_000)) - sentAt);
      }
      return [
        atMost(`Secret updated → Traefik serves the new serial: p50 (${n} updates)`, round(p50(runs)), 3000, 'ms'),
        figure(`Secret updated → Traefik serves the new serial: p95 (${n} updates)`, round(p95(runs)), 'ms'),
      ];
    } finally {
      await route.close();
    }
  },
};
