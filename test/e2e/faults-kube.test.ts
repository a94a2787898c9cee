/**
 * Faults in Kubernetes (issue 6 §2), against the real kube-apiserver and etcd:
 * - kube-apiserver stopped and started again in the middle of issuance: the informers restart
 *   (the controller says so in its log) and every Certificate is issued, one order each;
 * - an ACME order created while the kube-apiserver is away: its URL cannot be written, and the
 *   controller must resume that order, not open another;
 * - a watch ending with 410 Gone: kube-apiserver runs without its watch cache, so watches are
 *   served by etcd; etcd's history is compacted past the controller's resourceVersions, and the
 *   watches, which the apiserver ends every few seconds (--min-request-timeout=3), resume from a
 *   compacted revision. The controller must relist and carry on, issuing once per Certificate.
 *   (client-node waits longer and longer, up to 30 s, before resuming a watch that ended with no
 *   event, so caches lag here more than in production: a fair test of acting on a stale cache.)
 */
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { stateFile } from '../env/paths.ts';
import { kubectl, readEnv, restart } from '../env/stack.ts';
import { PebblePaths, startAcmeProxy, type AcmeProxy } from '../helpers/acme-proxy.ts';
import { freshNamespace, readLog, cleanUpFile, startController, waitFor, type ControllerProcess } from '../helpers/controller.ts';
import { assertIssued, controllerFlags, createCertificates as create, deleteIssuers, newIssuer, within } from '../helpers/issuance.ts';

const env = readEnv();
let proxy: AcmeProxy;
let apiserverChanged = false;

test.before(async () => {
  proxy = await startAcmeProxy(env);
});

test.after.always(async () => {
  await cleanUpFile();
  await proxy?.close();
  if (apiserverChanged) await restart('kube-apiserver');
  await deleteIssuers();
});

/** A controller stopped when the test ends, however it ends: only one may lead at a time. */
async function controller(t: ExecutionContext, extra: string[] = []): Promise<ControllerProcess> {
  const c = await startController([...controllerFlags, ...extra]);
  t.teardown(() => c.stop());
  return c;
}

/** Whether the kube-apiserver's port refuses connections (it is stopped, not just slow). */
function apiserverRefuses(): Promise<boolean> {
  const { port } = new URL(env.apiserver);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    socket.setTimeout(500, () => { socket.destroy(); resolve(false); });
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(true));
  });
}

test.serial('kube-apiserver stopped and started in the middle of issuance: informers restart and every certificate is issued', async (t) => {
  const c = await controller(t);
  const issuer = await newIssuer('apiserver-restart', proxy.directory);
  const ns = await freshNamespace('apiserver-restart');
  // The first finalize waits at the proxy, so issuance is surely under way when the apiserver goes.
  const hold = proxy.hold(PebblePaths.finalize, 'before');
  const names = ['one', 'two', 'three'];
  await create(ns, issuer, names);
  await within(hold.reached, 60_000, 'the first finalize');
  const logBefore = readLog(c).length;
  await restart('kube-apiserver');
  hold.release();
  await assertIssued(t, ns, issuer, names);
  const log = readLog(c).slice(logBefore);
  t.regex(log, /"resource":"certificates".*"msg":"watch failed; restarting informer"/, 'the controller restarted its informers');
});

test.serial('an ACME order created while the kube-apiserver is away is resumed, not created again', async (t) => {
  await controller(t);
  const issuer = await newIssuer('apiserver-away', proxy.directory);
  const ns = await freshNamespace('apiserver-away');
  // Pebble creates the order; its answer reaches the controller only once the apiserver is gone.
  const hold = proxy.hold(PebblePaths.newOrder, 'after');
  await create(ns, issuer, ['web']);
  await within(hold.reached, 60_000, 'the new-order request');
  const restarting = restart('kube-apiserver');
  await waitFor('the kube-apiserver to stop', apiserverRefuses, 30_000, 20);
  hold.release();
  await restarting;
  await assertIssued(t, ns, issuer, ['web']);
});

/** etcd's v3 JSON gateway on its client port (the stack's etcd serves it over plain HTTP). */
async function etcd(path: string, body: unknown): Promise<{ header?: { revision?: string } }> {
  const { ports } = JSON.parse(readFileSync(stateFile, 'utf8')) as { ports: { etcdClient: number } };
  const res = await fetch(`http://127.0.0.1:${ports.etcdClient}${path}`, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { header?: { revision?: string } };
}

/** LIST requests the kube-apiserver has served for a resource since it started. */
async function lists(resource: string): Promise<number> {
  const { stdout } = await kubectl(['get', '--raw', '/metrics']);
  let n = 0;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('apiserver_request_total{') && line.includes(`resource="${resource}"`) && line.includes('verb="LIST"')) n += Number(line.split(' ').at(-1));
  }
  return n;
}

test.serial('a watch that ends with 410 Gone is relisted and the controller carries on', async (t) => {
  apiserverChanged = true;
  await restart('kube-apiserver', { extraArgs: ['--watch-cache=false'] });
  // Every watch ends after 3 s and resumes from its last version, which compaction takes away.
  const c = await controller(t, ['--watch-timeout=3s']);
  const issuer = await newIssuer('gone');
  const ns = await freshNamespace('gone');
  await create(ns, issuer, ['before']);
  await assertIssued(t, ns, issuer, ['before']);

  // Only the controller lists these two: a rise is its relist.
  const watched = ['certificaterequests', 'challenges'];
  const baseline = await Promise.all(watched.map(lists));
  const logBefore = readLog(c).length;
  await kubectl(['-n', ns, 'create', 'configmap', 'advance-the-revision']);
  // Compacted again and again at the newest revision: other controllers' leftovers may keep a
  // watch busy, and it is the revision a watch resumes from that must be gone.
  await waitFor('the controller to relist after 410 Gone', async () => {
    await compactNow();
    const now = await Promise.all(watched.map(lists));
    return now.every((n, i) => n > baseline[i]!);
  }, 90_000, 300);
  t.notRegex(readLog(c).slice(logBefore), /watch failed; restarting informer/, 'the relist came from 410 Gone, not from a watch that failed');

  const more = ['after', 'again', 'third'];
  await create(ns, issuer, more);
  await assertIssued(t, ns, issuer, ['before', ...more]);
});

async function compactNow(): Promise<void> {
  const revision = Number((await etcd('/v3/kv/range', { key: Buffer.from('/').toString('base64') })).header?.revision);
  await etcd('/v3/kv/compaction', { revision: String(revision), physical: true }).catch((err: Error) => {
    if (!/compacted/.test(err.message)) throw err;
  });
}
