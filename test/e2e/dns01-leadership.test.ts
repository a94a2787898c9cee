/**
 * DNS-01 and leadership: only the Lease holder writes DNS, and a record written by a controller
 * that dies before its clean-up is removed by the next one, which finishes the same ACME order.
 * The controllers run in this file alone, as they share its Lease.
 */
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exposeLocalPort, kubectl, loadKubeConfig, readEnv } from '../env/stack.ts';
import { freePorts } from '../env/ports.ts';
import {
  applyYaml, cleanUpFile, CONTROLLER_NAMESPACE, freshNamespace, kubectlJson, own, readLog, startController, waitFor,
  waitForCertificateRevision, waitForLeader,
} from '../helpers/controller.ts';
import { deleteIssuer } from '../helpers/issuance.ts';
import { catchUp, challengeRecords, dns01Flags, dns01Issuer, txtAt } from '../helpers/dns01.ts';

const env = readEnv();
// Generous for a loaded machine: a leader that misses its renew deadline steps down mid-test.
const electionFlags = ['--lease-duration=8s', '--renew-deadline=6s', '--retry-period=1s'];
const followerService = `${own.responderService}-b`;

/** The ClusterIssuers this file makes, deleted with their Secrets at the end. */
const issuers: string[] = [];

test.after.always(async () => {
  await cleanUpFile([followerService]);
  for (const name of issuers) {
    await deleteIssuer(name);
    await kubectl(['-n', CONTROLLER_NAMESPACE, 'delete', 'secret', `${name}-dns`, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  }
});

interface OrderView {
  metadata: { name: string };
  status?: { url?: string; state?: string };
}
interface ChallengeView {
  metadata: { name: string };
  spec: { dnsName: string; key: string };
  status?: { presented?: boolean; state?: string; reason?: string; presentedRecord?: { fqdn?: string; zone?: string } };
}

function wildcardCertificate(ns: string, issuer: string, base: string): string {
  return `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: { name: site, namespace: ${ns} }
spec:
  secretName: site-tls
  dnsNames: ['*.${base}']
  issuerRef: { name: ${issuer}, kind: ClusterIssuer }
`;
}

async function heldChallenge(ns: string, because: string): Promise<ChallengeView> {
  return waitFor(`a presented Challenge not yet accepted because ${because}`, async () => {
    const list = await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges']);
    return list.items.find((c) => c.status?.presented && (c.status.reason ?? '').includes(because));
  }, 60_000);
}

async function theOrder(ns: string): Promise<OrderView[]> {
  return (await kubectlJson<{ items: OrderView[] }>(['-n', ns, 'get', 'orders'])).items;
}

test.serial('a controller SIGKILLed between presenting the record and removing it: restarted, it finishes the same order, and the record it wrote is removed', async (t) => {
  const first = await startController([...dns01Flags(env), ...electionFlags]);
  await waitForLeader(first);
  const ns = await freshNamespace('dns01-crash');
  const issuer = `dns01-${ns}`;
  issuers.push(issuer);
  await applyYaml(await dns01Issuer(issuer, env, 'rfc2136-lagging'));
  const base = `crash-${ns}.${env.bind.laggingZone}`;
  const fqdn = `_acme-challenge.${base}`;
  await applyYaml(wildcardCertificate(ns, issuer, base));
  // The lagging nameserver holds the challenge between present and accept.
  const challenge = await heldChallenge(ns, `nameserver ${env.bind.address} does not return the challenge value`);
  t.deepEqual(challenge.status?.presentedRecord, { fqdn, zone: env.bind.laggingZone }, 'what was written is on the Challenge');
  t.deepEqual(await txtAt(env.bind.laggingPrimary, fqdn), [challenge.spec.key]);
  const [order] = await theOrder(ns);
  t.truthy(order?.status?.url);
  await first.kill();

  const second = await startController([...dns01Flags(env), ...electionFlags]);
  t.teardown(() => second.stop());
  await catchUp(env);
  await waitForCertificateRevision(ns, 'site', 1, 120_000);
  const orders = await theOrder(ns);
  t.deepEqual(orders.map((o) => [o.metadata.name, o.status?.url, o.status?.state]), [[order!.metadata.name, order!.status!.url, 'valid']], 'the same Order and ACME order, not abandoned');
  await waitFor('the record gone from the primary', async () => (await txtAt(env.bind.laggingPrimary, fqdn)).length === 0, 30_000);
  await catchUp(env);
  for (const server of [env.bind.laggingPrimary, env.bind.address]) {
    t.deepEqual((await challengeRecords(env, env.bind.laggingZone, server)).filter((r) => r.includes(base)), [], `AXFR from ${server} holds no challenge record`);
  }
});

/** An HTTP proxy in front of the Cloudflare stand-in that records what passes through it. */
async function recordingProxy(api: string): Promise<{ url: string; requests: Array<{ method: string; path: string }>; close(): void }> {
  const upstream = new URL(api);
  const requests: Array<{ method: string; path: string }> = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '' });
    const forwarded = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}${upstream.pathname}`, requests, close: () => server.close() };
}

test.serial('only the leader writes DNS: the standby sends Cloudflare nothing while the leader presents, and removes the record once it leads', async (t) => {
  const [followerPort] = (await freePorts(1)) as [number];
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: CONTROLLER_NAMESPACE, name: followerService, port: followerPort });
  // The leader asks the authoritative nameservers on a closed port, so its check never passes.
  const leader = await startController([...dns01Flags(env), '--dns01-authoritative-port=9', ...electionFlags]);
  await waitForLeader(leader);
  const proxy = await recordingProxy(env.cloudflare.api);
  t.teardown(() => proxy.close());
  const follower = await startController([...dns01Flags(env), `--dns01-cloudflare-api-url=${proxy.url}`, `--responder-port=${followerPort}`, `--responder-service=${followerService}`, ...electionFlags]);
  await waitFor('the standby to sync its caches', async () => readLog(follower).includes('caches synced'), 30_000);

  const ns = await freshNamespace('dns01-leader');
  const issuer = `dns01-${ns}`;
  issuers.push(issuer);
  await applyYaml(await dns01Issuer(issuer, env, 'cloudflare'));
  const base = `leader-${ns}.${env.cloudflare.zone}`;
  await applyYaml(wildcardCertificate(ns, issuer, base));
  const challenge = await heldChallenge(ns, '127.0.0.1:9');
  const written = await challengeRecords(env, env.cloudflare.zone);
  t.true(written.some((r) => r.includes(base) && r.includes(challenge.spec.key)), 'the leader wrote the record');
  t.deepEqual(proxy.requests, [], 'the standby sent the Cloudflare API nothing');

  await leader.kill();
  await waitForLeader(follower);
  await waitForCertificateRevision(ns, 'site', 1, 120_000);
  t.is(follower.child.exitCode, null, `the new leader is still running; see ${follower.logFile}`);
  await waitFor('the record gone from the zone', async () => (await challengeRecords(env, env.cloudflare.zone)).every((r) => !r.includes(base)), 30_000);
  const methods = proxy.requests.filter((r) => r.path.includes('/dns_records')).map((r) => r.method);
  t.true(methods.includes('DELETE'), `the new leader removed the record: ${methods.join(', ')}`);
  t.false(methods.includes('POST'), 'and did not write it again');
});
