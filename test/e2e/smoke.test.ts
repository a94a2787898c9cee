/**
 * Proof that the local stack is real: the real kubectl configures the real Traefik, and Pebble
 * validates HTTP-01 by calling Traefik's web entrypoint, which routes to a responder in this
 * process. Nothing here is certroute code; if this fails, every other e2e test would too.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import acme from 'acme-client';
import { stringify } from 'yaml';
import { kubectl, localPortService, readEnv } from '../env/stack.ts';

const env = readEnv();
// Per run, so that a second run against the same long-lived stack does not trip over this one.
// A bare apiserver never finishes deleting a namespace, so it is left behind, empty.
const namespace = `smoke-${process.pid}`;
const host = 'whoami.test';

interface Local {
  port: number;
  close: () => Promise<void>;
}

function serve(handler: http.RequestListener): Promise<Local> {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ port, close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request to Traefik's web entrypoint, as a client that resolved `hostHeader` would send it. */
function viaTraefik(hostHeader: string, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: env.traefik.web, path, headers: { host: hostHeader }, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Polls until `check` returns a value; Traefik applies Kubernetes changes asynchronously. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(100);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`, { cause: last });
}

function ingressRoute(name: string, match: string, service: string, port: number, priority?: number) {
  return {
    apiVersion: 'traefik.io/v1alpha1',
    kind: 'IngressRoute',
    metadata: { namespace, name },
    spec: {
      entryPoints: ['web'],
      routes: [{ match, kind: 'Rule', ...(priority ? { priority } : {}), services: [{ name: service, port }] }],
    },
  };
}

async function applyYaml(objects: unknown[]): Promise<void> {
  await kubectl(['apply', '-f', '-'], { input: objects.map((o) => stringify(o)).join('---\n') });
}

const backend = await serve((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`whoami backend; host=${req.headers.host ?? ''}\n`);
});

/** HTTP-01 key authorizations by token, and the requests Pebble made for them. */
const challenges = new Map<string, string>();
const validations: http.IncomingHttpHeaders[] = [];
const responder = await serve((req, res) => {
  res.setHeader('x-smoke-responder', '1');
  const token = /^\/\.well-known\/acme-challenge\/([\w-]+)$/.exec(req.url ?? '')?.[1];
  const keyAuthorization = token === undefined ? undefined : challenges.get(token);
  if (keyAuthorization === undefined) {
    res.writeHead(404).end();
    return;
  }
  validations.push(req.headers);
  res.setHeader('content-type', 'application/octet-stream');
  res.end(keyAuthorization);
});

test.before(async () => {
  await applyYaml([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }]);
});

test.after.always(async () => {
  await kubectl(['delete', '-n', namespace, 'ingressroute,service', '--all', '--ignore-not-found']).catch(() => {});
  await Promise.all([backend.close(), responder.close()]);
});

test.serial('Traefik serves a local backend for Host whoami.test once kubectl applies a Service and an IngressRoute', async (t) => {
  await applyYaml([
    localPortService({ namespace, name: 'whoami', port: backend.port }),
    ingressRoute('whoami', `Host(\`${host}\`)`, 'whoami', backend.port),
  ]);

  const reply = await eventually('Traefik routes whoami.test', async () => {
    const r = await viaTraefik(host, '/');
    return r.status === 200 ? r : undefined;
  });
  t.is(reply.body, `whoami backend; host=${host}\n`);

  const routers = (await (await fetch(`${env.traefik.api}/api/http/routers`)).json()) as { name: string; rule: string; status: string }[];
  const router = routers.find((r) => r.name.startsWith(`${namespace}-whoami-`) && r.name.endsWith('@kubernetescrd'));
  t.truthy(router, `no router for IngressRoute ${namespace}/whoami in ${JSON.stringify(routers.map((r) => r.name))}`);
  t.is(router?.rule, `Host(\`${host}\`)`);
  t.is(router?.status, 'enabled');
});

test.serial('acme-client gets a whoami.test certificate from Pebble, validated over HTTP-01 through Traefik, chaining to Pebble\'s root', async (t) => {
  await applyYaml([
    localPortService({ namespace, name: 'acme-responder', port: responder.port }),
    // Above certroute's own challenge route (2^30), which outlives the e2e tests that create it.
    ingressRoute('acme-responder', `Host(\`${host}\`) && PathPrefix(\`/.well-known/acme-challenge/\`)`, 'acme-responder', responder.port, 2 ** 31),
  ]);
  await eventually('Traefik routes challenge paths to the responder', async () => {
    const r = await viaTraefik(host, '/.well-known/acme-challenge/not-a-token');
    return r.headers['x-smoke-responder'] === '1' ? r : undefined;
  });

  const ca = readFileSync(env.pebble.tlsCa);
  // acme-client sends everything through one global axios instance; Pebble's TLS is ours.
  acme.axios.defaults.httpsAgent = new https.Agent({ ca });
  (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 1;

  const client = new acme.Client({
    directoryUrl: env.pebble.directory,
    accountKey: await acme.crypto.createPrivateKey(),
    backoffMin: 20,
    backoffMax: 200,
  });
  const [, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] });
  const chainPem = await client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    // Pebble is the one to verify; acme-client's own check would look `whoami.test` up in real DNS.
    skipChallengeVerification: true,
    challengeCreateFn: async (_authz, challenge, keyAuthorization) => void challenges.set(challenge.token, keyAuthorization),
    challengeRemoveFn: async (_authz, challenge) => void challenges.delete(challenge.token),
  });

  t.true(validations.length > 0, 'Pebble never reached the responder');
  // Pebble names the port in Host because the web entrypoint is not on 80; responders must strip it.
  t.is(validations[0]?.host, `${host}:${env.traefik.web}`);
  t.truthy(validations[0]?.['x-forwarded-server'], 'validation request did not pass through Traefik');

  const chain = chainPem.split(/(?<=-----END CERTIFICATE-----)\s*/).filter((pem) => pem.includes('BEGIN')).map((pem) => new X509Certificate(pem));
  const root = new X509Certificate(await pebbleRoot(ca));
  const [leaf, ...intermediates] = chain;
  t.truthy(leaf?.checkHost(host), 'certificate does not name whoami.test');
  const issuers = [...intermediates, root];
  let child = leaf!;
  for (const issuer of issuers) {
    t.true(child.checkIssued(issuer) && child.verify(issuer.publicKey), `${child.subject} is not signed by ${issuer.subject}`);
    child = issuer;
  }
  t.true(root.verify(root.publicKey), 'Pebble root is not self-signed');
});

/** Pebble's root changes at every start; its management API serves the current one. */
function pebbleRoot(ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(`${env.pebble.management}/roots/0`, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`roots/0: HTTP ${res.statusCode}`))));
    }).on('error', reject);
  });
}
