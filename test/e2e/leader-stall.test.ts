/**
 * A leader that cannot go stale. The leader's connection to the kube-apiserver stalls (a proxy
 * stops every byte, as a hung node network would) while its ACME traffic still flows, in the
 * middle of an issuance: its new-order request is held at the ACME proxy and then cut off, as a
 * network error would. A leader that kept acting would retry it from its stale cache while the
 * standby, which took the Lease, opens the same order again: two orders at the CA, one of them
 * abandoned. certroute's leader stops at its renew deadline (below the lease duration), before
 * the standby can take over, and acts no more: Pebble sees exactly one order, the standby's.
 */
import test from 'ava';
import { join } from 'node:path';
import { stackDir } from '../env/paths.ts';
import { freePorts } from '../env/ports.ts';
import { kubectl, readEnv } from '../env/stack.ts';
import { PebblePaths, startAcmeProxy, type AcmeProxy } from '../helpers/acme-proxy.ts';
import { cleanUpFile, applyYaml, freshNamespace, kubectlJson, leaseIdentity, readLease, readLog, startController, waitFor, waitForCertificateRevision, type ControllerProcess } from '../helpers/controller.ts';
import { applyIssuer, certificateYaml, deleteIssuer, freshIssuerName, waitIssuerReady } from '../helpers/issuance.ts';
import { kubeconfigVia, startStallProxy, type StallProxy } from '../helpers/stall-proxy.ts';

const env = readEnv();
// Shorter than the defaults (15 s, 10 s, 2 s) to keep the test short, long enough that the new
// leader's first reconcile of everything in the stack, on a loaded machine, does not outlast it.
const flags = ['--lease-duration=8s', '--renew-deadline=5s', '--retry-period=1s'];

let proxy: AcmeProxy | undefined;
let stall: StallProxy | undefined;
let stale: ControllerProcess | undefined;
let standby: ControllerProcess | undefined;
let issuer = '';

interface LogLine { msg?: string; time?: number; key?: string; controller?: string; err?: string }
const lines = (p: ControllerProcess): LogLine[] => readLog(p).split('\n').filter(Boolean).flatMap((l) => {
  try {
    return [JSON.parse(l) as LogLine];
  } catch {
    return [];
  }
});
const holder = async () => (await readLease()).spec;
const identityOf = leaseIdentity;

test.after.always(async () => {
  await stale?.kill().catch(() => undefined);
  await cleanUpFile();
  await stall?.close();
  await proxy?.close();
  if (issuer) await deleteIssuer(issuer);
});

test('a leader cut off from the API server stops acting before the standby can take the Lease, so Pebble sees one order', async (t) => {
  proxy = await startAcmeProxy(env);
  issuer = freshIssuerName('stale-leader');
  const ns = await freshNamespace('stale-leader');

  stall = await startStallProxy(env.apiserver);
  const kubeconfig = kubeconfigVia(env.kubeconfig, stall.server, join(stackDir, `stale-leader-${process.pid}.kubeconfig`));
  const [port] = (await freePorts(1)) as [number];
  stale = await startController([`--responder-port=${port}`, ...flags], { name: `stale-leader-${process.pid}`, env: { KUBECONFIG: kubeconfig } });
  await waitFor('the first process to lead', async () => (await holder()).holderIdentity === identityOf(stale!), 60_000, 100);
  standby = await startController(flags, { name: `stale-standby-${process.pid}` });
  // A safety net, not a bound: on a machine shared by many test runs a Node process can take half a
  // minute just to load its modules before it lists anything.
  await waitFor('the standby to sync its caches', async () => lines(standby!).some((l) => l.msg === 'caches synced'), 120_000);
  await applyIssuer(issuer, proxy.directory);
  await waitIssuerReady(issuer);

  // The leader's new-order request reaches the ACME proxy and waits there; Pebble has not seen it.
  const held = proxy.hold(PebblePaths.newOrder, 'before');
  await applyYaml(certificateYaml(ns, 'stale', [`stale.${ns}.test`], issuer));
  await held.reached;
  stall.stall();

  const taken = await waitFor('the standby to take the Lease', async () => {
    const spec = await holder();
    return spec.holderIdentity === identityOf(standby!) ? spec : undefined;
  }, 60_000, 100);
  // Now the held request fails as a cut connection would. A leader still acting retries it.
  held.drop();
  const [orderKey] = await waitFor('the stalled process to see its request fail', async () => {
    const failed = lines(stale!).filter((l) => l.msg === 'reconcile failed; will retry' && l.controller === 'orders');
    return failed.length > 0 ? failed.map((l) => l.key) : undefined;
  }, 30_000);
  t.truthy(orderKey);

  await waitForCertificateRevision(ns, 'stale', 1, 90_000);
  // Long enough for several back-off retries of the failed step, had the stalled process kept leading.
  await new Promise((resolve) => setTimeout(resolve, 3_000));

  const log = lines(stale);
  const stopped = log.find((l) => l.msg === 'stopped leading');
  t.truthy(stopped, 'the stalled process stopped leading on its own');
  t.true(log.some((l) => l.msg === 'could not renew the Lease within the renew deadline'));
  t.true((stopped?.time ?? Infinity) < Date.parse(taken.acquireTime ?? ''), 'it stopped before the standby acquired the Lease');

  // Every ACME request of this issuer goes through the proxy, so what it forwarded is all Pebble saw.
  const newOrders = proxy.requests.filter((r) => r.method === 'POST' && r.path.startsWith(PebblePaths.newOrder.pathPrefix));
  t.is(newOrders.length, 2, 'the stalled leader\'s cut request and the new leader\'s: no retry from the stale one');
  t.is(newOrders.filter((r) => r.status === 201).length, 1, 'Pebble created one order');
  const { items } = await kubectlJson<{ items: Array<{ status?: { url?: string; state?: string } }> }>(['-n', ns, 'get', 'orders']);
  t.is(items.length, 1);
  t.is(items[0]?.status?.state, 'valid', 'and it is the one the cluster records, completed');
  await kubectl(['-n', ns, 'delete', 'certificate', 'stale', '--wait=false']);
});
