/**
 * Scenario: the CA revokes a served certificate (through ACME, with the account key, reason
 * keyCompromise) → Traefik serves its replacement. The whole ARI path: the next renewalInfo
 * check finds the window in the past, the renewal orders a new certificate naming the old one in
 * `replaces`, the Secret is written, Traefik reloads. The controller checks every second
 * (--ari-poll-interval=1s), so about half a second of each figure is the wait for that check;
 * in production the wait is the CA's Retry-After, at most 6 hours.
 */
import type { IngressRoute, Secret } from '../../src/api/types.ts';
import { Resources } from '../../src/api/types.ts';
import { decodeB64 } from '../../src/base/objects.ts';
import { parseCertificateChain } from '../../src/pki/cert.ts';
import { exposeLocalPort, loadKubeConfig } from '../../test/env/stack.ts';
import { revokeWithAccountKey } from '../../test/helpers/pebble.ts';
import { BenchController } from '../lib/controller.ts';
import { cleanIssuance, freshNamespace } from '../lib/kube.ts';
import { p50, p95, round } from '../lib/stats.ts';
import { startBackend, waitServed } from '../lib/traefik.ts';
import { figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

const ACCOUNT_NAMESPACE = 'certroute';

export const ariRevocation: Scenario = {
  id: 'ari-revocation',
  title: 'ARI revocation → new serial served',
  async run(ctx: BenchContext): Promise<Result[]> {
    const ns = await freshNamespace(ctx.client, 'ari');
    const host = `shop.${ns}.bench.test`;
    const secretName = 'shop-tls';
    const backend = await startBackend();
    await BenchController.start('ari', [`--workers=${ctx.concurrency}`, '--ari-poll-interval=1s']);
    try {
      await exposeLocalPort(loadKubeConfig(), { namespace: ns, name: 'backend', port: backend.port });
      await ctx.client.create<IngressRoute>(Resources.ingressroutes, {
        metadata: { name: 'shop', namespace: ns, annotations: { 'cert-manager.io/cluster-issuer': ctx.issuer } },
        spec: { entryPoints: ['websecure'], routes: [{ kind: 'Rule', match: `Host(\`${host}\`)`, services: [{ name: 'backend', port: backend.port }] }], tls: { secretName } },
      });
      const account = decodeB64((await ctx.client.get<Secret>(Resources.secrets, ACCOUNT_NAMESPACE, `${ctx.issuer}-account`)).data?.['tls.key']);
      const served = async (): Promise<{ serial: string; pem: string } | undefined> => {
        const secret = await ctx.client.find<Secret>(Resources.secrets, ns, secretName);
        const pem = decodeB64(secret?.data?.['tls.crt']);
        return pem ? { serial: parseCertificateChain(pem).leaf.serialNumber, pem } : undefined;
      };
      const sameSerial = (a: string, b: string) => a.toLowerCase().replace(/^0+/, '') === b.toLowerCase().replace(/^0+/, '');
      let current: { serial: string; pem: string } | undefined;
      const firstBy = Date.now() + 120_000;
      while (!(current = await served()) && Date.now() < firstBy) await new Promise((r) => setTimeout(r, 100));
      if (!current) throw new Error(`no certificate for ${host} within 120 s`);
      const first = current;
      await waitServed(ctx.env.traefik.websecure, host, (s) => sameSerial(s.serial, first.serial), 60_000);
      const runs: number[] = [];
      const n = ctx.scale(10, 3);
      for (let i = 0; i < n; i++) {
        const old = current;
        // Let the controller take up the certificate's ARI window first, as it would in production.
        await new Promise((r) => setTimeout(r, 1_500));
        const revokedAt = performance.now();
        await revokeWithAccountKey(ctx.env, account, old.pem, 1);
        const at = await waitServed(ctx.env.traefik.websecure, host, (s) => !sameSerial(s.serial, old.serial), 120_000);
        runs.push(at - revokedAt);
        current = await served();
        if (!current || sameSerial(current.serial, old.serial)) throw new Error('Traefik serves a new serial the Secret does not hold');
      }
      ctx.log(`  runs (ms): ${runs.map((r) => round(r)).join(', ')}`);
      return [
        figure(`ARI revocation → new serial served p50 (${n} revocations)`, round(p50(runs)), 'ms'),
        figure(`ARI revocation → new serial served p95 (${n} revocations)`, round(p95(runs)), 'ms'),
      ];
    } finally {
      await ctx.client.delete(Resources.ingressroutes, ns, 'shop').catch(() => undefined);
      await cleanIssuance(ctx.client, ns);
      await backend.close();
    }
  },
};
