/**
 * High availability (issue 5 §3): two controller processes share one Lease.
 * Only the holder reconciles, both serve presented challenge tokens, and when
 * the leader is SIGKILLed in the middle of an order the other takes the Lease
 * within leaseDuration + retryPeriod and completes that same ACME order, with
 * no second order at Pebble.
 *
 * On one machine the two "pods" cannot share a port, so each gets its own
 * responder port and its own responder Service (`--responder-service`); the
 * leader points the challenge route at its own Service, as a real Deployment's
 * one Service would reach whichever pod is alive.
 */
import test from 'ava';
import http from 'node:http';
import { hostname } from 'node:os';
import { exposeLocalPort, kubectl, loadKubeConfig, readEnv, responderPort } from '../env/stack.ts';
import { freePorts } from '../env/ports.ts';
import {
  applyYaml, freshNamespace, kubectlJson, pebbleClusterIssuer, readLog, secretPem, startController, waitFor,
  waitForCertificateRevision, type ControllerProcess, type SecretView,
} from '../helpers/controller.ts';
import { accountOrders } from '../helpers/pebble.ts';

const env = readEnv();
const LEASE_MS = 4_000;
const RETRY_MS = 500;
const electionFlags = [`--lease-duration=${LEASE_MS / 1000}s`, `--retry-period=${RETRY_MS}ms`];
const issuer = `pebble-ha-${Date.now().toString(36)}`; // a fresh ACME account per run
const followerService = 'certroute-ha-follower';

let leader: ControllerProcess | undefined;
let follower: ControllerProcess | undefined;

interface LeaseView {
  spec: { holderIdentity?: string; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}
interface OrderView {
  metadata: { name: string };
  status?: { url?: string; state?: string };
}
interface ChallengeView {
  metadata: { name: string };
  spec: { token: string; key: string; dnsName: string };
  status?: { presented?: boolean; state?: string; reason?: string };
}
interface LogLine {
  level?: number;
  msg?: string;
  key?: string;
  controller?: string;
}

const identityOf = (p: ControllerProcess): string => `${hostname()}_${p.child.pid}`;
const lease = () => kubectlJson<LeaseView>(['-n', 'certroute', 'get', 'lease', 'certroute-controller']);

function logLines(p: ControllerProcess): LogLine[] {
  return readLog(p).split('\n').filter(Boolean).flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}
const reconcileLines = (p: ControllerProcess) => logLines(p).filter((l) => l.msg === 'reconciled' || l.msg === 'reconcile failed; will retry');

/** GET a challenge path on one process's responder, with the Host a validator sends. */
function askResponder(port: number, token: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/.well-known/acme-challenge/${token}`, headers: { host }, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

test.after.always(async () => {
  await leader?.kill().catch(() => {});
  await follower?.stop();
  // The follower pointed the challenge route at its own Service: let the next
  // controller create the route afresh rather than keep a dangling target.
  const route = await kubectl(['-n', 'certroute', 'get', 'ingressroute', 'certroute-acme-challenge', '-o', 'jsonpath={.spec.routes[0].services[0].name}']).catch(() => ({ stdout: '' }));
  if (route.stdout === followerService) await kubectl(['-n', 'certroute', 'delete', 'ingressroute', 'certroute-acme-challenge', '--wait=false']);
  await kubectl(['-n', 'certroute', 'delete', 'service', followerService, '--ignore-not-found', '--wait=false']);
  await kubectl(['delete', 'clusterissuer', issuer, '--ignore-not-found', '--wait=false']);
  await kubectl(['-n', 'certroute', 'delete', 'secret', `${issuer}-account`, '--ignore-not-found', '--wait=false']);
});

test('two replicas: only the leader reconciles, both answer challenges, and a SIGKILLed leader\'s order is finished by the other within the lease duration', async (t) => {
  const [followerPort] = (await freePorts(1)) as [number];
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: 'certroute', name: followerService, port: followerPort });
  await applyYaml(pebbleClusterIssuer(issuer));
  const ns = await freshNamespace('ha');

  // The leader's self-check goes to a closed port, so its order stops at "presented".
  leader = startController(['--self-check-address=http://127.0.0.1:9', ...electionFlags], { name: `ha-leader-${process.pid}` });
  const leaderId = identityOf(leader);
  await waitFor('the first process to hold the Lease', async () => (await lease()).spec.holderIdentity === leaderId, 60_000, 100);
  follower = startController([`--responder-port=${followerPort}`, `--responder-service=${followerService}`, ...electionFlags], { name: `ha-follower-${process.pid}` });
  const followerId = identityOf(follower);
  await waitFor('the second process to sync its caches', async () => logLines(follower!).some((l) => l.msg === 'caches synced'), 30_000);

  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: ha, namespace: ${ns}}
spec:
  secretName: ha-tls
  dnsNames: [ha.ha.test]
  issuerRef: {name: ${issuer}, kind: ClusterIssuer}
`);
  const challenge = await waitFor('a presented Challenge held by the failing self-check', async () => {
    const list = await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges']);
    return list.items.find((c) => c.status?.presented && /127\.0\.0\.1:9/.test(c.status.reason ?? ''));
  }, 60_000, 100);
  const order = await waitFor('the Order to carry its ACME URL', async () => {
    const list = await kubectlJson<{ items: OrderView[] }>(['-n', ns, 'get', 'orders']);
    return list.items.find((o) => o.status?.url);
  });
  t.is(challenge.status?.state, 'pending', 'the leader has not accepted the challenge');

  // Both replicas serve the presented token for its host, and only for its host.
  const host = challenge.spec.dnsName;
  for (const [who, port] of [['leader', responderPort], ['follower', followerPort]] as const) {
    const answer = await waitFor(`the ${who}'s responder to serve the token`, async () => {
      const r = await askResponder(port, challenge.spec.token, host);
      return r.status === 200 ? r : undefined;
    }, 10_000);
    t.is(answer.body, challenge.spec.key, `the ${who} answers with the key authorization`);
    t.is((await askResponder(port, challenge.spec.token, 'other.ha.test')).status, 404, `the ${who} refuses another Host`);
  }

  // Only the Lease holder reconciles.
  t.is((await lease()).spec.holderIdentity, leaderId);
  t.true(reconcileLines(leader).some((l) => l.key === `${ns}/${challenge.metadata.name}` && l.controller === 'challenges'), 'the leader logs its reconciles with the object key');
  t.deepEqual(reconcileLines(follower), [], 'the follower has reconciled nothing');
  t.false(logLines(follower).some((l) => l.msg === 'became leader'));

  const killedAt = Date.now();
  await leader.kill();
  const taken = await waitFor('the follower to take the Lease', async () => {
    const l = await lease();
    return l.spec.holderIdentity === followerId ? l : undefined;
  }, 30_000, 20);
  const takeoverMs = Date.parse(taken.spec.acquireTime!) - killedAt;
  t.log(`Lease taken over ${takeoverMs} ms after SIGKILL (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)`);
  t.true(takeoverMs <= LEASE_MS + RETRY_MS, `takeover took ${takeoverMs} ms`);

  await waitForCertificateRevision(ns, 'ha', 1, 60_000);
  const after = await kubectlJson<OrderView>(['-n', ns, 'get', 'order', order.metadata.name]);
  t.is(after.status?.url, order.status?.url, 'the follower completed the same ACME order');
  t.is(after.status?.state, 'valid');
  t.is((await kubectlJson<{ items: OrderView[] }>(['-n', ns, 'get', 'orders'])).items.length, 1, 'one Order object');
  const account = await kubectlJson<SecretView>(['-n', 'certroute', 'get', 'secret', `${issuer}-account`]);
  t.deepEqual(await accountOrders(env, secretPem(account, 'tls.key')), [order.status!.url!], 'Pebble holds exactly this one order for the account');
  t.true(reconcileLines(follower).some((l) => l.key === `${ns}/${order.metadata.name}` && l.controller === 'orders'), 'the new leader reconciled the order');
});
