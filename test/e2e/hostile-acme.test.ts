/**
 * A tenant points namespaced Issuers at an ACME server of its own (a local stand-in here):
 * - one answers its directory with 503 and `Retry-After: 3000000` (35 days: longer than a Node
 *   timer holds, which once fired after 1 ms and turned the leader into a hot loop);
 * - one redirects its directory to a loopback address (an internal service, say);
 * - one answers with a 50 MB directory.
 * The leader's CPU stays idle, nothing follows the redirect, the 50 MB are never read, memory
 * stays bounded, each Issuer says what is wrong, and a Certificate from the cluster's own
 * ClusterIssuer is issued all the while.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pkiDir } from '../env/paths.ts';
import { readEnv } from '../env/stack.ts';
import {
  cleanUpFile, applyYaml, freshNamespace, kubectlJson, secretPem, startController, waitFor, waitForCertificateRevision,
  type ControllerProcess, type SecretView,
} from '../helpers/controller.ts';
import { applyIssuer, certificateYaml, deleteIssuer, freshIssuerName, secretProblems, waitIssuerReady } from '../helpers/issuance.ts';

const env = readEnv();
const BIG = 50 * 1024 * 1024;
let controller: ControllerProcess | undefined;
let hostile: Server | undefined;
let internal: HttpServer | undefined;
let clusterIssuer = '';

test.after.always(async () => {
  await cleanUpFile();
  hostile?.closeAllConnections();
  hostile?.close();
  internal?.closeAllConnections();
  internal?.close();
  if (clusterIssuer) await deleteIssuer(clusterIssuer);
});

/** CPU seconds (user + system) the process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function listen<T extends HttpServer | Server>(server: T): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

interface IssuerView { status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } }

test('hostile ACME servers neither spin the leader, nor lead it to a loopback address, nor fill its memory, and other issuers keep issuing', async (t) => {
  // What the redirect points at: an internal endpoint that must never be asked.
  const internalHits: string[] = [];
  internal = createHttpServer((req, res) => {
    internalHits.push(`${req.method} ${req.url}`);
    res.end('{"newNonce":"https://127.0.0.1/n","newAccount":"https://127.0.0.1/a","newOrder":"https://127.0.0.1/o"}');
  });
  const internalPort = await listen(internal);

  const hits = new Map<string, number>();
  let bigSent = 0;
  let bigRequests = 0;
  let bigClosedEarly = false;
  hostile = createServer({ cert: readFileSync(join(pkiDir, 'pebble.crt')), key: readFileSync(join(pkiDir, 'pebble.key')) }, (req, res) => {
    const path = req.url ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path.startsWith('/retry/')) {
      res.writeHead(503, { 'retry-after': '3000000', 'content-type': 'application/problem+json' });
      res.end('{"type":"urn:ietf:params:acme:error:serverInternal","detail":"come back in 35 days"}');
    } else if (path.startsWith('/redirect/')) {
      res.writeHead(302, { location: `http://127.0.0.1:${internalPort}/admin/directory` });
      res.end();
    } else if (path.startsWith('/big/')) {
      bigRequests++;
      bigSent = 0;
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      res.on('close', () => (bigClosedEarly ||= !res.writableFinished));
      const pump = () => {
        while (bigSent < BIG) {
          bigSent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const hostilePort = await listen(hostile);
  const ca = readFileSync(join(pkiDir, 'ca.crt')).toString('base64');

  controller = await startController();
  const pid = controller.child.pid!;
  clusterIssuer = freshIssuerName('friendly');
  await applyIssuer(clusterIssuer);
  await waitIssuerReady(clusterIssuer);

  const tenant = await freshNamespace('hostile');
  await applyYaml(['retry', 'redirect', 'big'].map((kind) => `apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: ${kind}, namespace: ${tenant}}
spec:
  acme:
    server: https://127.0.0.1:${hostilePort}/${kind}/directory
    caBundle: ${ca}
    privateKeySecretRef: {name: ${kind}-account}
    solvers: [{http01: {ingress: {}}}]
`).join('---\n'));

  // Each Issuer reports its failure: positive evidence the leader has met all three servers.
  const failed = async (name: string) => {
    const i = await kubectlJson<IssuerView>(['-n', tenant, 'get', 'issuer', name]);
    const ready = i.status?.conditions?.find((c) => c.type === 'Ready');
    return ready?.status === 'False' ? ready : undefined;
  };
  const retry = await waitFor('the Retry-After Issuer to report', () => failed('retry'), 60_000);
  const redirect = await waitFor('the redirecting Issuer to report', () => failed('redirect'), 60_000);
  const big = await waitFor('the 50 MB Issuer to report', () => failed('big'), 60_000);
  t.log(retry.message, '|', redirect.message, '|', big.message);
  // The first pass meets the 503 (its wait capped at a day), a later one the wait itself.
  t.regex(retry.message ?? '', /the CA answered 503, retry after 86400s|waiting for the CA's Retry-After/);
  t.regex(redirect.message ?? '', /answered 302 with a redirect to http:\/\/127\.0\.0\.1:\d+\/admin\/directory, and certroute follows no redirect/);
  t.regex(big.message ?? '', /answered with more than 1048576 bytes, which certroute does not read/);

  // The leader, meanwhile, with a Retry-After it must honour for a day: idle, not a 1 ms loop.
  const cpuBefore = cpuSeconds(pid);
  const rssBefore = rssMiB(pid);
  const ns = await freshNamespace('friendly');
  await applyYaml(certificateYaml(ns, 'still-works', [`still-works.${ns}.test`], clusterIssuer));
  await waitForCertificateRevision(ns, 'still-works', 1, 90_000);
  const secret = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'still-works-tls']);
  t.deepEqual(secretProblems(secret, [`still-works.${ns}.test`]), [], 'the cluster\'s own issuer kept issuing');
  t.truthy(secretPem(secret, 'tls.crt'));
  const windowStart = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const cpu = cpuSeconds(pid) - cpuBefore;
  const wall = (Date.now() - windowStart) / 1000 + 0.001;
  t.log(`leader CPU ${cpu.toFixed(2)} s over the issuance and ${wall.toFixed(1)} s idle; RSS ${rssBefore.toFixed(0)} → ${rssMiB(pid).toFixed(0)} MiB; big directory: ${(bigSent / 1048576).toFixed(1)} MiB sent`);
  const idleStart = cpuSeconds(pid);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const idleCpu = cpuSeconds(pid) - idleStart;
  t.true(idleCpu < 1.5, `the leader used ${idleCpu.toFixed(2)} CPU seconds in 5 s with nothing to do (a hot loop uses ~5)`);
  t.is(hits.get('/retry/directory'), 1, 'asked once, then the Retry-After was honoured');

  t.deepEqual(internalHits, [], 'no request followed the redirect');
  t.true(bigClosedEarly, 'the 50 MB answer was cut off');
  t.true(bigSent < 16 * 1024 * 1024, `${(bigSent / 1048576).toFixed(1)} MiB left the server before the cut`);
  // Permanent, so not retried with back-off; the Issuer's own status write may wake one more look.
  t.true(bigRequests <= 2, `the 50 MB directory was asked for ${bigRequests} times`);
  t.true(rssMiB(pid) - rssBefore < 100, 'resident memory did not grow by the size of the answer');
});
