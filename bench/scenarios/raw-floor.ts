/**
 * Scenario 1, the raw floor: how fast this machine's Pebble issues when
 * nothing but acme-client stands between the two, so every other figure can
 * be read as a ratio to it.
 *
 * - acme-client's step methods, polling every 20 ms (auto() backs off 5–30 s).
 * - The HTTP-01 responder runs in this process and Pebble reaches it through
 *   Traefik's web entrypoint, as it reaches the controller's responder: an
 *   ExternalName Service and an IngressRoute for the `*.raw.bench.test` hosts.
 * - The same key and CSR code the controller uses (RSA 2048, cert-manager's
 *   default), so both sides do the same cryptography and the ratio isolates
 *   the controller's orchestration: API writes, the self-check, queues.
 * - No Kubernetes objects per certificate: that is exactly the controller's cost.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import acme from 'acme-client';
import { Resources } from '../../src/api/types.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { exposeLocalPort, loadKubeConfig } from '../../test/env/stack.ts';
import { cpuPerCert, stackCpu } from '../lib/controller.ts';
import { freshNamespace, pool } from '../lib/kube.ts';
import { p50, p95, round } from '../lib/stats.ts';
import { figure, type BenchContext, type Result, type Scenario } from '../lib/types.ts';

const POLL_MS = 20;
const PER_CERT_TIMEOUT_MS = 60_000;
const HOST_SUFFIX = 'raw.bench.test';

interface Responder {
  port: number;
  tokens: Map<string, string>;
  close(): Promise<void>;
}

function startResponder(): Promise<Responder> {
  const tokens = new Map<string, string>();
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.setHeader('x-bench-responder', '1');
      const token = /^\/\.well-known\/acme-challenge\/([\w-]+)$/.exec(req.url ?? '')?.[1];
      const keyAuth = token === undefined ? undefined : tokens.get(token);
      if (keyAuth === undefined) return void res.writeHead(404).end();
      res.setHeader('content-type', 'application/octet-stream');
      res.end(keyAuth);
    });
    server.keepAliveTimeout = 30_000;
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ port, tokens, close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }) });
    });
  });
}

/** GET through Traefik's web entrypoint with a bench Host, until the responder answers. */
async function waitRouted(webPort: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const routed = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: webPort, path: '/.well-known/acme-challenge/probe', headers: { host: `probe.${HOST_SUFFIX}` }, timeout: 2_000 }, (res) => {
        res.resume();
        resolve(res.headers['x-bench-responder'] === '1');
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
    if (routed) return;
    await sleep(50);
  }
  throw new Error(`Traefik did not route *.${HOST_SUFFIX} challenge paths to the bench responder within ${timeoutMs} ms`);
}

type Client = InstanceType<typeof acme.Client>;

async function pollOrder(client: Client, order: acme.Order, until: string, deadline: number): Promise<acme.Order> {
  for (;;) {
    const fresh = await client.getOrder(order);
    if (fresh.status === until) return fresh;
    if (fresh.status === 'invalid') throw new Error(`order ${order.url} became invalid: ${JSON.stringify((fresh as { error?: unknown }).error ?? {})}`);
    if (Date.now() > deadline) throw new Error(`order ${order.url} still ${fresh.status} after ${PER_CERT_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

/** One certificate, the way a tight hand-written client would get it. Resolves to its duration in ms. */
async function issueOne(client: Client, responder: Responder, host: string): Promise<number> {
  const start = performance.now();
  const deadline = Date.now() + PER_CERT_TIMEOUT_MS;
  const keyPem = await generatePrivateKey({});
  const csr = await createCsr({ keyPem, dnsNames: [host] });
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: host }] });
  const authzs = await client.getAuthorizations(order);
  const tokens: string[] = [];
  for (const authz of authzs) {
    const challenge = authz.challenges.find((c) => c.type === 'http-01');
    if (!challenge || !('token' in challenge)) throw new Error(`Pebble offered no http-01 challenge for ${host}`);
    responder.tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    tokens.push(challenge.token);
    await client.completeChallenge(challenge);
  }
  try {
    const ready = await pollOrder(client, order, 'ready', deadline);
    let final = await client.finalizeOrder(ready, csr);
    if (final.status !== 'valid') final = await pollOrder(client, final, 'valid', deadline);
    const pem = await client.getCertificate(final);
    if (!pem.includes('BEGIN CERTIFICATE')) throw new Error(`Pebble returned no certificate for ${host}`);
  } finally {
    for (const t of tokens) responder.tokens.delete(t);
  }
  return performance.now() - start;
}

export const rawFloor: Scenario = {
  id: 'raw-floor',
  title: 'raw floor: acme-client against the same Pebble, responder in process, 20 ms polling',
  async run(ctx: BenchContext): Promise<Result[]> {
    const ns = await freshNamespace(ctx.client, 'raw');
    const responder = await startResponder();
    const ca = readFileSync(ctx.env.pebble.tlsCa);
    acme.axios.defaults.httpsAgent = new https.Agent({ ca, keepAlive: true });
    (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
    try {
      await exposeLocalPort(loadKubeConfig(), { namespace: ns, name: 'raw-responder', port: responder.port });
      await ctx.client.create(Resources.ingressroutes, {
        metadata: { name: 'raw-responder', namespace: ns },
        spec: {
          entryPoints: ['web'],
          routes: [{
            kind: 'Rule',
            match: `HostRegexp(\`^[a-z0-9.-]+\\.${HOST_SUFFIX.replaceAll('.', '\\.')}$\`) && PathPrefix(\`/.well-known/acme-challenge/\`)`,
            // Above certroute's challenge route (2^30), which stays in Traefik after a controller stops.
            priority: 2 ** 31,
            services: [{ name: 'raw-responder', port: responder.port }],
          }],
        },
      });
      // Generous: right after the bench restarts kube-apiserver, Traefik's watches come back with
      // client-go's back-off, which after two restarts in a row outlasted 30 s.
      await waitRouted(ctx.env.traefik.web, 120_000);

      const client = new acme.Client({ directoryUrl: ctx.env.pebble.directory, accountKey: await acme.crypto.createPrivateKey(), backoffAttempts: 1, backoffMin: 0, backoffMax: 0 });
      await client.createAccount({ termsOfServiceAgreed: true });
      await issueOne(client, responder, `warmup.${ns}.${HOST_SUFFIX}`);

      const singles: number[] = [];
      const n = ctx.scale(20, 5);
      for (let i = 0; i < n; i++) singles.push(await issueOne(client, responder, `single-${i}.${ns}.${HOST_SUFFIX}`));

      const total = ctx.scale(1000, 50);
      const selfCpu = (): number => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      };
      const cpuBefore = { 'acme-client (this process)': selfCpu(), ...stackCpu() };
      const start = performance.now();
      await pool(total, ctx.concurrency, async (i) => {
        await issueOne(client, responder, `burst-${i}.${ns}.${HOST_SUFFIX}`);
      });
      const seconds = (performance.now() - start) / 1000;
      const cpu = cpuPerCert(cpuBefore, { 'acme-client (this process)': selfCpu(), ...stackCpu() }, total);
      ctx.floor.p50Ms = p50(singles);
      ctx.floor.ratePerSecond = total / seconds;
      return [
        figure(`raw floor: single certificate p50 (${n} runs)`, round(p50(singles)), 'ms'),
        figure(`raw floor: single certificate p95 (${n} runs)`, round(p95(singles)), 'ms'),
        figure(`raw floor: ${total} certificates at concurrency ${ctx.concurrency}, total`, round(seconds), 's'),
        figure(`raw floor: ${total} certificates at concurrency ${ctx.concurrency}, rate`, round(total / seconds), 'certs/s'),
        ...Object.entries(cpu).map(([proc, ms]) => figure(`raw floor: CPU per certificate, ${proc}`, round(ms), 'ms')),
      ];
    } finally {
      await ctx.client.delete(Resources.ingressroutes, ns, 'raw-responder').catch(() => undefined);
      await responder.close();
    }
  },
};
