/**
 * Crash resume: the Order's URLs live in its status, so a controller killed
 * with SIGKILL right after the ACME order was created resumes that same
 * order when it starts again, and Pebble never sees a second one.
 */
import test from 'ava';
import { readEnv } from '../env/stack.ts';
import {
  applyYaml, cleanUpFile, CONTROLLER_NAMESPACE, freshNamespace, kubectlJson, startController, waitFor, waitForCertificateRevision,
  secretPem, type SecretView,
} from '../helpers/controller.ts';
import { certificateYaml, deleteIssuers, newIssuer, quickHandover } from '../helpers/issuance.ts';
import { accountOrders } from '../helpers/pebble.ts';

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
});

interface OrderView {
  metadata: { name: string };
  status?: { url?: string; state?: string; authorizations?: unknown[] };
}

test('a controller killed right after creating the ACME order resumes the same order and Pebble holds no duplicate', async (t) => {
  const env = readEnv();
  const ns = await freshNamespace('crash');
  // The first controller self-checks against a closed port, so the order
  // cannot progress past "pending" before it is killed.
  const first = await startController(['--self-check-address=http://127.0.0.1:9', ...quickHandover]);
  const issuer = await newIssuer('pebble-crash'); // a fresh ACME account
  await applyYaml(certificateYaml(ns, 'resume', ['resume.crash.test'], issuer));
  const order = await waitFor('the Order to carry its ACME URL', async () => {
    const list = await kubectlJson<{ items: OrderView[] }>(['-n', ns, 'get', 'orders']);
    return list.items.find((o) => o.status?.url);
  }, 60_000, 20);
  await first.kill();
  t.is(order.status?.state, 'pending');

  await startController(quickHandover);
  await waitForCertificateRevision(ns, 'resume', 1, 60_000);
  const after = await kubectlJson<OrderView>(['-n', ns, 'get', 'order', order.metadata.name]);
  t.is(after.status?.url, order.status?.url, 'the same ACME order was completed');
  t.is(after.status?.state, 'valid');
  const orders = (await kubectlJson<{ items: OrderView[] }>(['-n', ns, 'get', 'orders'])).items;
  t.is(orders.length, 1, 'one Order object');
  const account = await kubectlJson<SecretView>(['-n', CONTROLLER_NAMESPACE, 'get', 'secret', `${issuer}-account`]);
  const atPebble = await accountOrders(env, secretPem(account, 'tls.key'));
  t.deepEqual(atPebble, [order.status!.url!], 'Pebble holds exactly this one order for the account');
});
