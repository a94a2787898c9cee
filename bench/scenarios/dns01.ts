/**
 * DNS-01: one wildcard Certificate at a time (`*.x` and `x`, two authorizations whose TXT values
 * share one name), create → Ready, through RFC 2136 against the stack's BIND, which Pebble asks.
 * It adds to the HTTP-01 path the DNS update, the propagation check (SOA, NS and a TXT query to
 * each authoritative nameserver) and the removal of both values.
 */
import { readFileSync } from 'node:fs';
import type { Issuer, Secret } from '../../src/api/types.ts';
import { Resources } from '../../src/api/types.ts';
import { dns01Flags } from '../../test/helpers/dns01.ts';
import { BenchController } from '../lib/controller.ts';
import { cleanIssuance, freshNamespace, ReadyTracker } from '../lib/kube.ts';
import { p50, p95, round } from '../lib/stats.ts';
import { figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

const TIMEOUT_MS = 60_000;
/** Where a ClusterIssuer's Secrets live: the controller's cluster resource namespace. */
const SECRET_NAMESPACE = 'certroute';

function dns01Issuer(ctx: BenchContext, name: string, secretName: string): Issuer {
  const { bind, pebble } = ctx.env;
  return {
    metadata: { name },
    spec: {
      acme: {
        server: pebble.directory,
        email: 'bench@example.com',
        caBundle: readFileSync(pebble.tlsCa).toString('base64'),
        privateKeySecretRef: { name: `${name}-account` },
        solvers: [{ dns01: { rfc2136: { nameserver: bind.address, tsigKeyName: bind.tsigKeyName, tsigAlgorithm: bind.tsigAlgorithm, tsigSecretSecretRef: { name: secretName, key: 'tsig-secret-key' } } } }],
      },
    },
  };
}

export const dns01: Scenario = {
  id: 'dns01',
  title: 'DNS-01 wildcard Certificate (*.x and x), create → Ready, sequential',
  async run(ctx: BenchContext): Promise<Result[]> {
    const issuer = `${ctx.issuer}-dns01`;
    const secretName = `${issuer}-tsig`;
    const secret: Secret = { metadata: { name: secretName, namespace: SECRET_NAMESPACE }, type: 'Opaque', data: { 'tsig-secret-key': Buffer.from(ctx.env.bind.tsigSecret).toString('base64') } };
    await ctx.client.create(Resources.secrets, secret);
    await ctx.client.create(Resources.clusterissuers, dns01Issuer(ctx, issuer, secretName));
    const ns = await freshNamespace(ctx.client, 'dns01');
    const tracker = new ReadyTracker(ctx.client, ns);
    await tracker.start();
    const ctl = await BenchController.start('dns01', [`--workers=${ctx.concurrency}`, ...dns01Flags(ctx.env)]);
    try {
      const issue = async (name: string): Promise<number> => {
        const base = `${name}.${ns}.${ctx.env.bind.zone}`;
        const start = performance.now();
        await ctx.client.create(Resources.certificates, {
          metadata: { name, namespace: ns },
          spec: { secretName: `${name}-tls`, dnsNames: [`*.${base}`, base], issuerRef: { name: issuer, kind: 'ClusterIssuer', group: 'cert-manager.io' } },
        });
        return (await tracker.ready(name, TIMEOUT_MS)) - start;
      };
      // Untimed: the account registration happens once per issuer.
      await issue('warmup');
      const runs: number[] = [];
      const n = ctx.scale(20, 5);
      for (let i = 0; i < n; i++) runs.push(await issue(`wild-${i}`));
      return [
        figure(`DNS-01 wildcard create → Ready p50 (${n} runs, RFC 2136, check period 1 s)`, round(p50(runs)), 'ms'),
        figure(`DNS-01 wildcard create → Ready p95 (${n} runs)`, round(p95(runs)), 'ms'),
      ];
    } finally {
      await tracker.stop();
      await cleanIssuance(ctx.client, ns);
      await ctl.stop();
      await ctx.client.delete(Resources.clusterissuers, undefined, issuer).catch(() => undefined);
      for (const name of [secretName, `${issuer}-account`]) await ctx.client.delete(Resources.secrets, SECRET_NAMESPACE, name).catch(() => undefined);
    }
  },
};
