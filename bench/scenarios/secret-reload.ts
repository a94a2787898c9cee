/**
 * Scenario 6: a TLS Secret is replaced (one PUT, as the controller writes
 * it) → Traefik serves the new serial on websecure. Polled with a fresh TLS
 * handshake every 20 ms. This is Traefik's reload path, which every renewal
 * goes through; no controller runs.
 */
import type { IngressRoute, Secret } from '../../src/api/types.ts';
import { Resources } from '../../src/api/types.ts';
import { exposeLocalPort, loadKubeConfig } from '../../test/env/stack.ts';
import { freshNamespace } from '../lib/kube.ts';
import { makeCa, signLeaf, tlsSecret } from '../lib/pki.ts';
import { p50, p95, round } from '../lib/stats.ts';
import { startBackend, waitServed } from '../lib/traefik.ts';
import { atMost, figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

export const secretReload: Scenario = {
  id: 'secret-reload',
  title: 'Secret updated → Traefik serves the new serial',
  async run(ctx: BenchContext): Promise<Result[]> {
    const ns = await freshNamespace(ctx.client, 'reload');
    const host = `reload.${ns}.bench.test`;
    const backend = await startBackend();
    try {
      await exposeLocalPort(loadKubeConfig(), { namespace: ns, name: 'backend', port: backend.port });
      const ca = await makeCa('certroute bench reload CA');
      const first = await signLeaf(ca, [host]);
      await ctx.client.create(Resources.secrets, tlsSecret(ns, 'reload-tls', first));
      await ctx.client.create<IngressRoute>(Resources.ingressroutes, {
        metadata: { name: 'reload', namespace: ns },
        spec: {
          entryPoints: ['websecure'],
          routes: [{ kind: 'Rule', match: `Host(\`${host}\`)`, services: [{ name: 'backend', port: backend.port }] }],
          tls: { secretName: 'reload-tls' },
        },
      });
      await waitServed(ctx.env.traefik.websecure, host, (s) => s.serial === first.serial, 30_000);

      const runs: number[] = [];
      const n = ctx.scale(10, 3);
      for (let i = 0; i < n; i++) {
        const next = await signLeaf(ca, [host]);
        const current = await ctx.client.get<Secret>(Resources.secrets, ns, 'reload-tls');
        const start = performance.now();
        await ctx.client.replace<Secret>(Resources.secrets, { ...tlsSecret(ns, 'reload-tls', next), metadata: { ...current.metadata } });
        runs.push((await waitServed(ctx.env.traefik.websecure, host, (s) => s.serial === next.serial, 15_000)) - start);
      }
      return [
        atMost(`Secret updated → Traefik serves the new serial: p50 (${n} updates)`, round(p50(runs)), 3000, 'ms'),
        figure(`Secret updated → Traefik serves the new serial: p95 (${n} updates)`, round(p95(runs)), 'ms'),
      ];
    } finally {
      await ctx.client.delete(Resources.ingressroutes, ns, 'reload').catch(() => undefined);
      await ctx.client.delete(Resources.secrets, ns, 'reload-tls').catch(() => undefined);
      await backend.close();
    }
  },
};
