/**
 * Scenario 7: an IngressRoute annotated with cert-manager.io/cluster-issuer
 * → Traefik serves the certificate certroute got for it, the whole path a
 * user cares about (shim → Certificate → ACME → Secret → Traefik reload), in
 * both wiring modes. The measurement is bench/traefik-latency.ts's, which
 * starts its own controller per mode (with leader election, as deployed) and,
 * for middleware mode, restarts Traefik with the plugin and restores it.
 * Beside them, the peer: Traefik's own ACME resolver on a second Traefik and
 * a second Pebble (bench/lib/traefik-resolver.ts), one of its runs after each
 * of ours; certroute's p50 in each mode must be below the peer's.
 */
import type { IngressRoute, Issuer } from '../../src/api/types.ts';
import { Resources } from '../../src/api/types.ts';
import { measureIngressRouteToServed, type Wiring } from '../traefik-latency.ts';
import { cleanIssuance } from '../lib/kube.ts';
import { startPeerResolver } from '../lib/traefik-resolver.ts';
import { p50, p95, round } from '../lib/stats.ts';
import { figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

const MODES: Wiring[] = ['route', 'middleware'];
const ISSUER_PREFIX = 'bench-latency-';
const issuerOf = (r: IngressRoute): string => r.metadata.annotations?.['cert-manager.io/cluster-issuer'] ?? '';

/**
 * measureIngressRouteToServed leaves its IngressRoutes, their Certificates
 * and its ClusterIssuers behind; the shim of every later controller would
 * keep them (and re-create their Certificates), so they go here: only those
 * that appeared during this scenario and name one of its issuers.
 */
async function cleanUp(ctx: BenchContext, routesBefore: Set<string>, issuersBefore: Set<string>): Promise<void> {
  const routes = (await ctx.client.list<IngressRoute>(Resources.ingressroutes)).items
    .filter((r) => !routesBefore.has(r.metadata.uid ?? '') && issuerOf(r).startsWith(ISSUER_PREFIX));
  const namespaces = new Set<string>();
  for (const r of routes) {
    await ctx.client.delete(Resources.ingressroutes, r.metadata.namespace, r.metadata.name);
    namespaces.add(r.metadata.namespace ?? '');
  }
  for (const ns of namespaces) await cleanIssuance(ctx.client, ns);
  for (const i of (await ctx.client.list<Issuer>(Resources.clusterissuers)).items) {
    if (issuersBefore.has(i.metadata.uid ?? '') || !i.metadata.name.startsWith(ISSUER_PREFIX)) continue;
    await ctx.client.delete(Resources.clusterissuers, undefined, i.metadata.name);
    await ctx.client.delete(Resources.secrets, 'certroute', `${i.metadata.name}-account`);
  }
}

/** A figure that must stay under one measured in the same run. */
function below(scenario: string, value: number, limit: number, unit: string, what: string): Result {
  return { scenario, value, unit, target: `< ${limit} ${unit} (${what})`, met: value < limit };
}

export const ingressRoute: Scenario = {
  id: 'ingressroute',
  title: 'IngressRoute annotated → Traefik serves the issued certificate',
  async run(ctx: BenchContext): Promise<Result[]> {
    const runs = ctx.scale(10, 3);
    const uids = (items: Array<{ metadata: { uid?: string } }>) => new Set(items.map((o) => o.metadata.uid ?? ''));
    const routesBefore = uids((await ctx.client.list<IngressRoute>(Resources.ingressroutes)).items);
    const issuersBefore = uids((await ctx.client.list<Issuer>(Resources.clusterissuers)).items);
    const results: Result[] = [];
    // The peer's runs alternate with ours, so that a machine whose load changes (and a shared
    // one does) weighs on both figures alike.
    const peer = await startPeerResolver(Date.now().toString(36));
    try {
      await peer.once('warmup');
      const peerMs: number[] = [];
      const ours = new Map<Wiring, number[]>();
      for (const wiring of MODES) {
        const ms = await measureIngressRouteToServed({ runs, wiring, afterEach: async () => void peerMs.push(await peer.once(`run-${peerMs.length}`)) });
        ctx.log(`  ${wiring} mode runs (ms): ${ms.join(', ')}`);
        ours.set(wiring, ms);
      }
      ctx.log(`  Traefik's own ACME resolver runs (ms): ${peerMs.join(', ')}`);
      const peerP50 = round(p50(peerMs));
      results.push(
        figure(`router with tls.certResolver → served, Traefik's own ACME resolver: p50 (${peerMs.length} runs)`, peerP50, 'ms'),
        figure(`router with tls.certResolver → served, Traefik's own ACME resolver: p95 (${peerMs.length} runs)`, round(p95(peerMs)), 'ms'),
      );
      for (const [wiring, ms] of ours) {
        results.push(
          below(`IngressRoute annotated → served, ${wiring} mode: p50 (${ms.length} runs)`, round(p50(ms)), peerP50, 'ms', "Traefik's own resolver's p50"),
          figure(`IngressRoute annotated → served, ${wiring} mode: p95 (${ms.length} runs)`, round(p95(ms)), 'ms'),
        );
      }
      return results;
    } finally {
      await peer.close();
      await cleanUp(ctx, routesBefore, issuersBefore);
    }
  },
};
