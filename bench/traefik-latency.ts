/**
 * The figure users come for (issue 4): how long from "IngressRoute annotated" to "Traefik serves
 * the issued certificate", per wiring mode, on the local stack's real Traefik and Pebble.
 *
 *   npm run stack -- up
 *   node bench/traefik-latency.ts [--runs=10] [--wiring=route,middleware]
 *
 * Each run creates an IngressRoute for a fresh host on websecure, waits until Traefik routes it,
 * then adds `cert-manager.io/cluster-issuer` (t0) and polls the certificate Traefik serves for
 * the host every 20 ms until it is one issued for it (t1). The whole path is in the figure: the
 * shim, the Certificate, ACME with Pebble validating HTTP-01 through Traefik, the Secret, and
 * Traefik's reload of its TLS store. One unmeasured run first warms the ACME account and caches.
 *
 * Middleware mode restarts Traefik with the plugin attached to `web` and restores the stack's
 * defaults afterwards, so nothing else may use the stack's Traefik meanwhile.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { IngressRoute } from '../src/api/types.ts';
import { Resources } from '../src/api/types.ts';
import { KubeClient } from '../src/kube/client.ts';
import { exposeLocalPort, loadKubeConfig, readEnv } from '../test/env/stack.ts';
import { applyYaml, freshNamespace, pebbleClusterIssuer, startController, waitFor, type ControllerProcess, waitForLeader } from '../test/helpers/controller.ts';
import { waitIssuerReady } from '../test/helpers/issuance.ts';
import { serveLocal } from '../test/helpers/tls.ts';
import { servesName, waitServed } from './lib/traefik.ts';
import { builtEntry } from '../scripts/entry.ts';
import {
  challengeRouters, deleteChallengeRoute, traefikApi, traefikDefaults, traefikMiddlewareMode,
  type ApiObject,
} from '../test/helpers/wiring.ts';

export type Wiring = 'route' | 'middleware';

const TIMEOUT_MS = 60_000;

/**
 * Milliseconds from annotating an IngressRoute to Traefik serving its certificate, `runs` times,
 * with a controller in the given wiring mode that this function starts and stops; `afterEach`
 * runs after each measured run (the bench interleaves the peer's runs with ours there). Needs a
 * running stack and no other controller holding the Lease.
 */
export async function measureIngressRouteToServed(opts: { runs: number; wiring: Wiring; afterEach?: () => Promise<void> }): Promise<number[]> {
  const env = readEnv();
  const client = KubeClient.fromKubeconfig(env.kubeconfig);
  const stamp = Date.now().toString(36);
  const issuer = `bench-latency-${opts.wiring}-${stamp}`;
  const middleware = opts.wiring === 'middleware';
  const backend = await serveLocal((_req, res) => res.end('certroute latency backend\n'));
  let controller: ControllerProcess | undefined;
  try {
    if (middleware) {
      await traefikMiddlewareMode();
      await deleteChallengeRoute();
    }
    await applyYaml(pebbleClusterIssuer(issuer, env));
    controller = await startController(middleware ? ['--wiring=middleware'] : [], { env: { LOG_LEVEL: 'info' }, entry: await builtEntry() });
    await waitForLeader(controller);
    await waitIssuerReady(issuer);
    if (!middleware) await waitFor('the challenge routers', async () => (await challengeRouters()).length === 2, 30_000);
    const ns = await freshNamespace(`latency-${opts.wiring}`);
    await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: backend.port });

    const once = async (name: string): Promise<number> => {
      const host = `${name}.${stamp}.${opts.wiring}.latency.test`;
      await client.create<IngressRoute>(Resources.ingressroutes, {
        apiVersion: 'traefik.io/v1alpha1',
        kind: 'IngressRoute',
        metadata: { name, namespace: ns },
        spec: {
          entryPoints: ['websecure'],
          routes: [{ kind: 'Rule', match: `Host(\`${host}\`)`, services: [{ name: 'backend', port: backend.port }] }],
          tls: {},
        },
      });
      await waitFor(`Traefik to route ${host}`, async () => (await traefikApi<ApiObject[]>('/api/http/routers', env)).some((r) => r.rule === `Host(\`${host}\`)`), 30_000, 20);
      const start = performance.now();
      await client.mergePatch(Resources.ingressroutes, ns, name, { metadata: { annotations: { 'cert-manager.io/cluster-issuer': issuer } } });
      return Math.round((await waitServed(env.traefik.websecure, host, servesName(host), TIMEOUT_MS)) - start);
    };
    await once('warmup');
    const out: number[] = [];
    for (let i = 0; i < opts.runs; i++) {
      out.push(await once(`run-${i}`));
      await opts.afterEach?.();
    }
    return out;
  } finally {
    await controller?.stop();
    await backend.close();
    if (middleware) await traefikDefaults();
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, wiring: { type: 'string' } }, strict: true });
  const runs = Number(values.runs ?? 10);
  const modes = (values.wiring ?? 'route,middleware').split(',').map((s) => s.trim()) as Wiring[];
  for (const wiring of modes) {
    if (wiring !== 'route' && wiring !== 'middleware') throw new Error(`--wiring=${String(wiring)}: use route, middleware or both`);
    const ms = await measureIngressRouteToServed({ runs, wiring });
    console.log(`${wiring} mode: median ${median(ms)} ms over ${ms.length} runs (min ${Math.min(...ms)}, max ${Math.max(...ms)}; ${ms.join(', ')})`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) await main();
