/**
 * High availability (issue 5 §3): two controller processes share one Lease.
 * Only the holder reconciles, both serve presented challenge tokens, and when
 * the leader is SIGKILLed in the middle of an order the other takes the Lease
 * and completes that same ACME order, with no second order at Pebble.
 *
 * Safety is checked, not only liveness: the new holder's acquireTime is no
 * earlier than the old holder's last renewTime (as a watch on the Lease saw it)
 * plus leaseDuration, and the apiserver's audit log, where each process writes
 * as its own user, shows that no two processes ever wrote as leader at once.
 *
 * On one machine the two "pods" cannot share a port, so each gets its own
 * responder port and its own responder Service (`--responder-service`); the
 * leader points the challenge route at its own Service, as a real Deployment's
 * one Service would reach whichever pod is alive.
 */
import test from 'ava';
import http from 'node:http';
import { exposeLocalPort, loadKubeConfig, readEnv } from '../env/stack.ts';
import { freePorts } from '../env/ports.ts';
import { auditedRequests, describeRequest, succeeded } from '../helpers/audit.ts';
import {
  applyYaml, cleanUpFile, CONTROLLER_NAMESPACE, freshNamespace, kubectlJson, leaseIdentity, own, readLease, readLog, secretPem, startController, waitFor,
  waitForCertificateRevision, waitForLeader, type ControllerProcess, type LeaseView, type SecretView,
} from '../helpers/controller.ts';
import { certificateYaml, deleteIssuers, History, newIssuer } from '../helpers/issuance.ts';
import { accountOrders } from '../helpers/pebble.ts';

const env = readEnv();
const LEASE_MS = 4_000;
const RETRY_MS = 500;
const electionFlags = [`--lease-duration=${LEASE_MS / 1000}s`, `--retry-period=${RETRY_MS}ms`];
const followerService = `${own.responderService}-b`;
const users = { leader: `ha-a-${process.pid}`, follower: `ha-b-${process.pid}` };

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
  /** `initial pass done`: how many objects the controller looked at. */
  keys?: number;
}

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
  await cleanUpFile([followerService]);
  await deleteIssuers();
});

test('two replicas: only the leader reconciles, both answer challenges, a SIGKILLed leader\'s order is finished by the other, and the two never lead at once', async (t) => {
  const since = new Date();
  const [followerPort] = (await freePorts(1)) as [number];
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: CONTROLLER_NAMESPACE, name: followerService, port: followerPort });
  const ns = await freshNamespace('ha');

  // The leader's self-check goes to a closed port, so its order stops at "presented".
  const leader = await startController(['--self-check-address=http://127.0.0.1:9', ...electionFlags], { name: `ha-leader-${process.pid}`, user: users.leader });
  const leaderId = leaseIdentity(leader);
  await waitForLeader(leader);
  const issuer = await newIssuer('pebble-ha');
  const follower = await startController([`--responder-port=${followerPort}`, `--responder-service=${followerService}`, ...electionFlags], { name: `ha-follower-${process.pid}`, user: users.follower });
  const followerId = leaseIdentity(follower);
  await waitFor('the second process to sync its caches', async () => logLines(follower).some((l) => l.msg === 'caches synced'), 30_000);
  const leases = await History.watch<LeaseView>(`/apis/coordination.k8s.io/v1/namespaces/${CONTROLLER_NAMESPACE}/leases`, own.leaseName);
  t.teardown(() => leases.stop());

  await applyYaml(certificateYaml(ns, 'ha', ['ha.ha.test'], issuer));
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
  for (const [who, port] of [['leader', own.responderPort], ['follower', followerPort]] as const) {
    const answer = await waitFor(`the ${who}'s responder to serve the token`, async () => {
      const r = await askResponder(port, challenge.spec.token, host);
      return r.status === 200 ? r : undefined;
    }, 10_000);
    t.is(answer.body, challenge.spec.key, `the ${who} answers with the key authorization`);
    t.is((await askResponder(port, challenge.spec.token, 'other.ha.test')).status, 404, `the ${who} refuses another Host`);
  }

  // Only the Lease holder reconciles.
  t.is((await readLease()).spec.holderIdentity, leaderId);
  t.true(reconcileLines(leader).some((l) => l.key === `${ns}/${challenge.metadata.name}` && l.controller === 'challenges'), 'the leader logs its reconciles with the object key');
  t.deepEqual(reconcileLines(follower), [], 'the follower has reconciled nothing');
  t.false(logLines(follower).some((l) => l.msg === 'became leader'));

  const killedAt = Date.now();
  await leader.kill();
  const taken = await waitFor('the follower to take the Lease', async () => {
    const l = await readLease();
    return l.spec.holderIdentity === followerId ? l : undefined;
  }, 60_000, 20);
  t.log(`Lease taken over ${Date.parse(taken.spec.acquireTime!) - killedAt} ms after SIGKILL (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)`);

  // Not too soon: the old holder's last renewal, as the watch saw it, had expired.
  await leases.reached(taken.metadata.resourceVersion);
  const seen = leases.versions.map((v) => v.object.spec);
  const lastRenew = Math.max(...seen.filter((l) => l.holderIdentity === leaderId).map((l) => Date.parse(l.renewTime!)));
  const leaseSeconds = seen.find((l) => l.holderIdentity === leaderId)?.leaseDurationSeconds;
  t.is(leaseSeconds, LEASE_MS / 1000, 'the Lease carries the leader\'s lease duration');
  const acquired = Date.parse(seen.find((l) => l.holderIdentity === followerId)!.acquireTime!);
  t.true(acquired >= lastRenew + leaseSeconds! * 1000,
    `the follower acquired at ${new Date(acquired).toISOString()}, the leader last renewed at ${new Date(lastRenew).toISOString()} for ${leaseSeconds} s`);

  await waitForCertificateRevision(ns, 'ha', 1, 60_000);
  const after = await kubectlJson<OrderView>(['-n', ns, 'get', 'order', order.metadata.name]);
  t.is(after.status?.url, order.status?.url, 'the follower completed the same ACME order');
  t.is(after.status?.state, 'valid');
  t.is((await kubectlJson<{ items: OrderView[] }>(['-n', ns, 'get', 'orders'])).items.length, 1, 'one Order object');
  const account = await kubectlJson<SecretView>(['-n', CONTROLLER_NAMESPACE, 'get', 'secret', `${issuer}-account`]);
  t.deepEqual(await accountOrders(env, secretPem(account, 'tls.key')), [order.status!.url!], 'Pebble holds exactly this one order for the account');
  t.true(reconcileLines(follower).some((l) => l.key === `${ns}/${order.metadata.name}` && l.controller === 'orders'), 'the new leader reconciled the order');
  const firstPass = await waitFor('the new leader to log its initial pass over the Certificates', async () => logLines(follower).find((l) => l.msg === 'initial pass done' && l.controller === 'certificates'), 30_000);
  t.true(Number(firstPass.keys) >= 1, `on taking over it says when it has looked at every Certificate once: ${JSON.stringify(firstPass)}`);

  // Never two leaders: as the apiserver saw it, every write either process made outside the
  // Lease falls inside that process's own term, and the terms do not overlap.
  const writes = auditedRequests([users.leader, users.follower], since).filter((e) => succeeded(e) && e.verb !== 'get' && e.verb !== 'list' && e.verb !== 'watch');
  const isLease = (e: (typeof writes)[number]) => e.objectRef?.resource === 'leases' && e.objectRef.name === own.leaseName;
  const work = (user: string) => writes.filter((e) => e.user.username === user && !isLease(e));
  const leaderWork = work(users.leader);
  const followerWork = work(users.follower);
  t.true(leaderWork.length > 0 && followerWork.length > 0, `the audit log shows both terms' writes: ${leaderWork.length} and ${followerWork.length}`);
  const leaderLast = Math.max(...leaderWork.map((e) => Date.parse(e.stageTimestamp)));
  const beforeTerm = followerWork.filter((e) => Date.parse(e.requestReceivedTimestamp) < acquired);
  t.deepEqual(beforeTerm.map(describeRequest), [], 'the follower wrote nothing before it acquired the Lease');
  t.true(leaderLast < acquired, `the leader's last write (${new Date(leaderLast).toISOString()}) came before the follower's term began`);
  const leaderLeaseWrites = writes.filter((e) => e.user.username === users.leader && isLease(e));
  t.true(leaderLeaseWrites.length > 0, 'the leader\'s Lease renewals are in the audit log');
});
