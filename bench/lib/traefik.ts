/**
 * What a browser sees through Traefik, for the latency scenarios: a backend
 * behind an IngressRoute on websecure, and polling the certificate served for
 * an SNI name every 20 ms until it is the one expected.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IngressRoute, Secret } from '../../src/api/types.ts';
import { Resources } from '../../src/api/types.ts';
import { exposeLocalPort, loadKubeConfig } from '../../test/env/stack.ts';
import { servedCertificate, type Served } from '../../test/helpers/tls.ts';
import { freshNamespace } from './kube.ts';
import { makeCa, signLeaf, tlsSecret } from './pki.ts';
import type { BenchContext } from './types.ts';

export const POLL_MS = 20;

export interface Backend {
  port: number;
  close(): Promise<void>;
}

export function startBackend(): Promise<Backend> {
  return new Promise((resolve) => {
    const server = http.createServer((_req, res) => res.end('certroute bench backend\n'));
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ port, close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }) });
    });
  });
}

/** A certificate issued for `host`: Traefik's default certificate and any other host's do not match. */
export const servesName = (host: string) => (s: Served): boolean => s.subjectAltName.split(', ').includes(`DNS:${host}`);

/**
 * Polls the certificate Traefik serves for `host` until `matches` holds.
 * Resolves to the performance.now() of the first matching handshake.
 */
export async function waitServed(websecurePort: number, host: string, matches: (s: Served) => boolean, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const served = await servedCertificate(websecurePort, host, 2_000).catch((err: Error) => err);
    if (!(served instanceof Error) && matches(served)) return performance.now();
    last = served instanceof Error ? served.message : `serial ${served.serial}, ${served.subjectAltName || 'no SANs'}`;
    await sleep(POLL_MS);
  }
  throw new Error(`Traefik did not serve the expected certificate for ${host} within ${timeoutMs} ms (last seen: ${last})`);
}

/**
 * A host Traefik serves on websecure from a TLS Secret the bench writes itself (no controller):
 * `swap()` replaces the Secret with a new certificate in one update and resolves to when that
 * update was sent; `close()` removes it all.
 */
export interface SecretRoute {
  host: string;
  swap(): Promise<{ serial: string; sentAt: number }>;
  close(): Promise<void>;
}

export async function secretRoute(ctx: BenchContext, prefix: string): Promise<SecretRoute> {
  const ns = await freshNamespace(ctx.client, prefix);
  const host = `${prefix}.${ns}.bench.test`;
  const name = `${prefix}-tls`;
  const backend = await startBackend();
  await exposeLocalPort(loadKubeConfig(), { namespace: ns, name: 'backend', port: backend.port });
  const ca = await makeCa(`certroute bench ${prefix} CA`);
  const first = await signLeaf(ca, [host]);
  await ctx.client.create(Resources.secrets, tlsSecret(ns, name, first));
  await ctx.client.create<IngressRoute>(Resources.ingressroutes, {
    metadata: { name: prefix, namespace: ns },
    spec: { entryPoints: ['websecure'], routes: [{ kind: 'Rule', match: `Host(\`${host}\`)`, services: [{ name: 'backend', port: backend.port }] }], tls: { secretName: name } },
  });
  await waitServed(ctx.env.traefik.websecure, host, (s) => s.serial === first.serial, 30_000);
  return {
    host,
    async swap() {
      const next = await signLeaf(ca, [host]);
      const current = await ctx.client.get<Secret>(Resources.secrets, ns, name);
      const sentAt = performance.now();
      await ctx.client.replace<Secret>(Resources.secrets, { ...tlsSecret(ns, name, next), metadata: { ...current.metadata } });
      return { serial: next.serial, sentAt };
    },
    async close() {
      await ctx.client.delete(Resources.ingressroutes, ns, prefix).catch(() => undefined);
      await ctx.client.delete(Resources.secrets, ns, name).catch(() => undefined);
      await backend.close();
    },
  };
}
