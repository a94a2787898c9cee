/**
 * Faults (issue 6 §2): the controller SIGKILLed at each ACME step of a renewal, then started
 * again. An ACME proxy in front of Pebble stops the step deterministically: it holds the step's
 * request either before Pebble sees it, or after Pebble has acted on it but before the answer
 * reaches the controller (the crash that loses an answer). Afterwards:
 * - the renewal completes, on the order the first controller created (Pebble holds no order the
 *   Orders in the cluster do not account for);
 * - the Secret was never deleted, and no version of it was worse than the one before (watched,
 *   not polled: key match, expiry, names, notAfter never earlier, chain to Pebble).
 */
import test, { type ExecutionContext } from 'ava';
import { kubectl, readEnv } from '../env/stack.ts';
import { PebblePaths, startAcmeProxy, type AcmeProxy, type Match } from '../helpers/acme-proxy.ts';
import {
  applyYaml, freshNamespace, kubectlJson, cleanUpFile, startController, waitFor, waitForCertificateRevision,
  type ControllerProcess, type SecretView,
} from '../helpers/controller.ts';
import {
  certificateYaml, controllerFlags, deleteIssuers, leafOf, newIssuer, orderLedger, ordersIn,
  deactivateAuthorizations, pebbleStatus, SecretHistory, secretProblems, triggerRenewal, within,
} from '../helpers/issuance.ts';

const env = readEnv();
let proxy: AcmeProxy;

/** A controller that is stopped when the test ends, however it ends: only one may lead at a time. */
async function controller(t: ExecutionContext): Promise<ControllerProcess> {
  const c = await startController(controllerFlags);
  t.teardown(() => c.stop());
  return c;
}

test.before(async () => {
  proxy = await startAcmeProxy(env);
});

test.after.always(async () => {
  await cleanUpFile();
  await proxy?.close();
  await deleteIssuers();
});

interface Step {
  title: string;
  match: Match;
  when: 'before' | 'after';
  /** Waits until Pebble has acted on the held request (its answer is what gets lost). */
  settled?: (issuer: string, heldPath: string) => Promise<unknown>;
}

const steps: Step[] = [
  { title: 'right after the new ACME order is recorded', match: PebblePaths.order, when: 'before' },
  { title: 'with the challenge presented and self-checked, before the CA is told', match: PebblePaths.challenge, when: 'before' },
  {
    title: 'after the CA accepted and validated the challenge, before the answer arrived',
    match: PebblePaths.challenge,
    when: 'after',
    settled: (issuer, path) => waitFor('Pebble to validate the challenge', async () => (await pebbleStatus(issuer, proxy.origin + path)) === 'valid', 30_000, 100),
  },
  {
    title: 'after the CA finalized the order, before the answer arrived',
    match: PebblePaths.finalize,
    when: 'after',
    settled: (issuer, path) => waitFor('Pebble to issue the certificate', async () => (await pebbleStatus(issuer, proxy.origin + path.replace('/finalize-order/', '/my-order/'))) === 'valid', 30_000, 100),
  },
];

for (const step of steps) {
  test.serial(`a controller SIGKILLed ${step.title} renews on the same order and never makes the Secret worse`, async (t) => {
    const first = await controller(t);
    const issuer = await newIssuer('crash-step', proxy.directory);
    const ns = await freshNamespace('crash-step');
    const dnsNames = [`app.${ns}.test`];
    await applyYaml(certificateYaml(ns, 'app', dnsNames, issuer));
    await waitForCertificateRevision(ns, 'app', 1, 60_000);
    const before = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'app-tls']);
    // The first revision's Order is pruned with its request once the renewal is stored.
    const firstOrders = (await ordersIn(ns)).flatMap((o) => (o.status?.url ? [new URL(o.status.url).pathname] : []));
    const history = await SecretHistory.start(ns, 'app-tls');
    t.teardown(() => history.stop());

    // The renewal must present a challenge, or the steps held at /chalZ/ are never reached.
    t.true(await deactivateAuthorizations(issuer, ns) > 0, 'the first order\'s authorizations were deactivated at Pebble');
    const hold = proxy.hold(step.match, step.when);
    await triggerRenewal(ns, 'app');
    const held = await within(hold.reached, 60_000, `the controller to reach ${step.match.pathPrefix}`);
    await step.settled?.(issuer, held.path);
    const ordersBefore = await ordersIn(ns);
    await first.kill();
    hold.drop();

    const second = await controller(t);
    const renewed = await waitForCertificateRevision(ns, 'app', 2, 90_000);
    t.falsy(renewed.status?.failedIssuanceAttempts, 'the renewal never failed');
    const after = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'app-tls']);
    t.deepEqual(secretProblems(after, dnsNames), [], 'the renewed Secret serves the names with a matching, valid chain');
    t.not(leafOf(after).serialNumber, leafOf(before).serialNumber, 'a new certificate was stored');
    t.true(Date.parse(leafOf(after).validTo) >= Date.parse(leafOf(before).validTo), 'the new certificate expires no earlier');
    await history.reached(after.metadata.resourceVersion);
    t.deepEqual(history.problems(dnsNames), [], 'no version of the Secret was worse than the one it replaced');

    const { atPebble, inCluster } = await orderLedger(issuer, [ns]);
    // Pebble lists an account's orders but the invalid ones, and deactivating the first order's
    // authorizations made it invalid: what it lists is what the renewal opened.
    t.is(atPebble.length, 1, `one order for the renewal at Pebble, found ${atPebble.join(' ')}`);
    t.deepEqual(atPebble, [...new Set(inCluster)].filter((p) => !firstOrders.includes(p)).sort(), 'the order Pebble holds is the one an Order in the cluster records');
    for (const o of ordersBefore.filter((o) => o.status?.url && !firstOrders.includes(new URL(o.status.url).pathname))) {
      t.true(inCluster.includes(new URL(o.status!.url!).pathname), `Order ${o.metadata.name} kept its ACME order across the crash`);
    }
    await second.stop();
    await kubectl(['-n', ns, 'delete', 'certificate', 'app', '--wait=false']);
  });
}
