/**
 * What the README promises, each on the real stack, with one controller started with its default
 * flags (only this file's responder port, responder Service and Lease are its own):
 * - `preferredChain` picks Pebble's alternate chain (Pebble runs here with an alternate root);
 * - `skipTLSVerify` reaches a CA whose certificate nothing trusts, and without it the issuer says why not;
 * - `privateKey.rotationPolicy: Never` keeps the key across a renewal, `Always` replaces it;
 * - `revisionHistoryLimit: 2` keeps exactly two CertificateRequests, and each renewal writes the
 *   Secret in exactly one update (counted through a watch);
 * - `certroute renew` retries a failed Certificate at once, and `renew --all -A` renews them all;
 * - an IngressRoute rule the shim cannot parse gets a Warning Event, and nothing else;
 * - the default flags: a 15 s Lease, and a failure back-off of 1 h doubling to 32 h.
 */
import test from 'ava';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { kubectl, readEnv, restart } from '../env/stack.ts';
import {
  annotatedIngressRoute, applyYaml, certroute, cleanUpFile, freshNamespace, kubectlJson, readLease, readLog, secretPem, startController,
  waitFor, waitForCertificateRevision, waitForLeader, type CertificateView, type ControllerProcess, type SecretView,
} from '../helpers/controller.ts';
import {
  applyIssuer, certificateYaml, deleteIssuer, deleteIssuers, freshIssuerName, leafOf, newIssuer, SecretHistory, triggerRenewal, waitIssuerReady,
} from '../helpers/issuance.ts';
import { pebbleRoot } from '../helpers/pebble.ts';
import { shimCaughtUp } from '../helpers/wiring.ts';

const env = readEnv();
const HOUR = 3_600_000;
let controller: ControllerProcess;
let issuer = '';
const untrusting = freshIssuerName('pebble-untrusted');

test.before(async () => {
  // One alternate chain, to a second root: the default chain is unchanged for everything else.
  await restart('pebble', { env: { PEBBLE_ALTERNATE_ROOTS: '1' } });
  controller = await startController();
  await waitForLeader(controller);
  issuer = await newIssuer('pebble-readme');
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
  await deleteIssuer(untrusting);
  // Pebble as every other file expects it: its defaults (it forgets every account either way).
  await restart('pebble');
});

const secret = (ns: string, name: string) => kubectlJson<SecretView>(['-n', ns, 'get', 'secret', name]);
const pems = (text: string) => text.split(/(?<=-----END CERTIFICATE-----)\s*/).filter((p) => p.includes('BEGIN CERTIFICATE')).map((p) => new X509Certificate(p));
const commonName = (dn: string) => dn.split('\n').find((part) => part.startsWith('CN='))?.slice(3);
const publicKeyOf = (s: SecretView) => createPublicKey(secretPem(s, 'tls.key')).export({ type: 'spki', format: 'der' }).toString('base64');

test.serial('preferredChain selects the CA\'s alternate chain by the common name of its top issuer', async (t) => {
  const [root0, root1] = [new X509Certificate(await pebbleRoot(env, 0)), new X509Certificate(await pebbleRoot(env, 1))];
  const preferred = commonName(root1.subject)!;
  const preferring = await newIssuer('pebble-chain', undefined, { acme: { preferredChain: preferred } });
  const ns = await freshNamespace('chain');
  await applyYaml(certificateYaml(ns, 'alternate', [`alternate.${ns}.test`], preferring) + '---\n' + certificateYaml(ns, 'default', [`default.${ns}.test`], issuer));
  await waitForCertificateRevision(ns, 'alternate', 1);
  await waitForCertificateRevision(ns, 'default', 1);

  const alternate = pems(secretPem(await secret(ns, 'alternate-tls'), 'tls.crt'));
  t.is(commonName(alternate.at(-1)!.issuer), preferred, 'the stored chain ends below the preferred root');
  t.true(alternate.at(-1)!.verify(root1.publicKey), 'and is signed by Pebble\'s alternate root');
  const standard = pems(secretPem(await secret(ns, 'default-tls'), 'tls.crt'));
  t.not(commonName(standard.at(-1)!.issuer), preferred, 'without preferredChain, the default chain');
  t.true(standard.at(-1)!.verify(root0.publicKey));
});

test.serial('skipTLSVerify reaches a CA whose certificate is not trusted; without it the issuer says why it is not Ready', async (t) => {
  const skipping = await newIssuer('pebble-skip-tls', undefined, { caBundle: false, acme: { skipTLSVerify: true } });
  await applyIssuer(untrusting, undefined, { caBundle: false });
  const refused = await waitIssuerReady(untrusting, { want: 'False' });
  const ready = refused.status?.conditions?.find((c) => c.type === 'Ready');
  t.regex(ready?.message ?? '', /certificate|TLS|self[- ]signed|verify/i, `the issuer names the TLS problem: ${ready?.message}`);

  const ns = await freshNamespace('skiptls');
  await applyYaml(certificateYaml(ns, 'app', [`app.${ns}.test`], skipping));
  const cert = await waitForCertificateRevision(ns, 'app', 1);
  t.is(cert.status?.revision, 1, 'issued through the unverified connection');
  t.regex(leafOf(await secret(ns, 'app-tls')).issuer, /Pebble/);
});

test.serial('privateKey.rotationPolicy Never keeps the key across a renewal; Always makes a new one', async (t) => {
  const ns = await freshNamespace('rotation');
  await applyYaml(certificateYaml(ns, 'kept', [`kept.${ns}.test`], issuer, { privateKey: { rotationPolicy: 'Never' } })
    + '---\n' + certificateYaml(ns, 'rotated', [`rotated.${ns}.test`], issuer, { privateKey: { rotationPolicy: 'Always' } }));
  for (const name of ['kept', 'rotated']) await waitForCertificateRevision(ns, name, 1);
  const [kept1, rotated1] = [await secret(ns, 'kept-tls'), await secret(ns, 'rotated-tls')];
  for (const name of ['kept', 'rotated']) await triggerRenewal(ns, name);
  for (const name of ['kept', 'rotated']) await waitForCertificateRevision(ns, name, 2);
  const [kept2, rotated2] = [await secret(ns, 'kept-tls'), await secret(ns, 'rotated-tls')];

  t.not(leafOf(kept2).serialNumber, leafOf(kept1).serialNumber, 'Never: a new certificate…');
  t.is(publicKeyOf(kept2), publicKeyOf(kept1), '…for the same key');
  t.not(leafOf(rotated2).serialNumber, leafOf(rotated1).serialNumber, 'Always: a new certificate…');
  t.not(publicKeyOf(rotated2), publicKeyOf(rotated1), '…for a new key');
});

interface RequestView {
  metadata: { name: string; annotations?: Record<string, string> };
}

test.serial('revisionHistoryLimit 2 keeps exactly the two newest CertificateRequests, and each renewal writes the Secret in one update', async (t) => {
  const ns = await freshNamespace('history');
  await applyYaml(certificateYaml(ns, 'app', [`app.${ns}.test`], issuer, { revisionHistoryLimit: 2 }));
  await waitForCertificateRevision(ns, 'app', 1);
  const history = await SecretHistory.start(ns, 'app-tls');
  t.teardown(() => history.stop());
  const serials = [leafOf(await secret(ns, 'app-tls')).serialNumber];
  for (const revision of [2, 3, 4]) {
    await triggerRenewal(ns, 'app');
    await waitForCertificateRevision(ns, 'app', revision);
    const now = await secret(ns, 'app-tls');
    await history.reached(now.metadata.resourceVersion);
    serials.push(leafOf(now).serialNumber);
  }
  const updates = history.versions.filter((v) => v.type === 'MODIFIED');
  t.deepEqual(updates.map((v) => leafOf(v.object).serialNumber), serials.slice(1), 'one update per renewal, each with the new certificate');
  t.deepEqual(history.problems([`app.${ns}.test`]), [], 'and no version a reader could have met was bad');

  const revisions = await waitFor('the history to be pruned to two', async () => {
    const { items } = await kubectlJson<{ items: RequestView[] }>(['-n', ns, 'get', 'certificaterequests']);
    return items.length <= 2 ? items.map((r) => r.metadata.annotations?.['cert-manager.io/certificate-revision']).sort() : undefined;
  }, 30_000);
  t.deepEqual(revisions, ['3', '4']);
});

test.serial('certroute renew retries a failed Certificate at once, despite its back-off', async (t) => {
  const ns = await freshNamespace('renewfailed');
  // Pebble refuses orders for blocked.test, so every attempt fails.
  await applyYaml(certificateYaml(ns, 'refused', ['blocked.test'], issuer));
  const failed = await waitFor('the first failed attempt', async () => {
    const c = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'refused']);
    return c.status?.failedIssuanceAttempts === 1 ? c : undefined;
  }, 60_000);
  const r = await certroute(['renew', 'refused', '-n', ns]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`Manually triggered issuance of Certificate ${ns}/refused`));
  // The default back-off would hold the next attempt for an hour; the renewal makes it now.
  const again = await waitFor('a second attempt', async () => {
    const c = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'refused']);
    return (c.status?.failedIssuanceAttempts ?? 0) >= 2 ? c : undefined;
  }, 120_000);
  t.true(Date.parse(again.status!.lastFailureTime!) >= Date.parse(failed.status!.lastFailureTime!));
  t.log(`second attempt ${Date.parse(again.status!.lastFailureTime!) - Date.parse(failed.status!.lastFailureTime!)} ms after the first`);
});

test.serial('certroute renew --all -A renews the Certificates of every namespace', async (t) => {
  const [a, b] = [await freshNamespace('renewall-a'), await freshNamespace('renewall-b')];
  await applyYaml(certificateYaml(a, 'one', [`one.${a}.test`], issuer) + '---\n' + certificateYaml(b, 'two', [`two.${b}.test`], issuer));
  await waitForCertificateRevision(a, 'one', 1);
  await waitForCertificateRevision(b, 'two', 1);
  const r = await certroute(['renew', '--all', '-A']);
  t.is(r.code, 0, r.stderr);
  for (const id of [`${a}/one`, `${b}/two`]) t.regex(r.stdout, new RegExp(`Certificate ${id}\\b`), `renew -A names ${id}`);
  await waitForCertificateRevision(a, 'one', 2);
  await waitForCertificateRevision(b, 'two', 2);
});

interface EventView {
  type: string;
  reason: string;
  message: string;
}

test.serial('an IngressRoute rule the shim cannot parse gets a Warning Event, and no Certificate', async (t) => {
  const ns = await freshNamespace('badrule');
  await applyYaml(annotatedIngressRoute({ namespace: ns, name: 'broken', matches: ['Host(`broken.test`) && (PathPrefix(`/`)'], issuer, backendPort: 9 }));
  const warning = await waitFor('a Warning Event on the IngressRoute', async () => {
    const { items } = await kubectlJson<{ items: EventView[] }>(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.name=broken,involvedObject.kind=IngressRoute,type=Warning']);
    return items.find((e) => e.reason === 'InvalidRule');
  }, 30_000);
  t.regex(warning.message, /spec\.routes\[0\]\.match: cannot parse the rule at column \d+/, `the Event says where the rule breaks: ${warning.message}`);
  await shimCaughtUp(controller, ns, 'broken');
  t.deepEqual((await kubectlJson<{ items: unknown[] }>(['-n', ns, 'get', 'certificates'])).items, [], 'no Certificate');
  const { stdout } = await kubectl(['-n', ns, 'get', 'ingressroute', 'broken', '-o', 'jsonpath={.spec.tls.secretName}']);
  t.is(stdout, '', 'the route is not edited');
});

/** The last back-off the controller chose for a Certificate, from its log: ms until the retry. */
function lastRequeue(key: string, from: number): number | undefined {
  const lines = readLog(controller).slice(from).split('\n').flatMap((l) => {
    try {
      const line = JSON.parse(l) as { controller?: string; key?: string; requeueAfterMs?: number };
      return line.controller === 'certificates' && line.key === key && line.requeueAfterMs !== undefined ? [line.requeueAfterMs] : [];
    } catch {
      return [];
    }
  });
  return lines.at(-1);
}

test.serial('the default flags: a 15 s Lease, and a failure back-off of 1 h that doubles up to 32 h', async (t) => {
  t.is((await readLease()).spec.leaseDurationSeconds, 15);

  const ns = await freshNamespace('backoff');
  await applyYaml(certificateYaml(ns, 'refused', ['blocked.test'], issuer));
  const key = `${ns}/refused`;
  await waitFor('the first failed attempt', async () => (await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', 'refused'])).status?.failedIssuanceAttempts === 1, 60_000);
  const first = await waitFor('the back-off after one failure', async () => lastRequeue(key, 0), 30_000);
  t.true(first > HOUR - 5 * 60_000 && first <= HOUR, `one failure: retry in ${first} ms, about an hour`);

  // As if more attempts had failed just now: 3 failures wait 4 h, 7 would wait 64 h but are capped at 32 h.
  let previous = first;
  for (const [attempts, want] of [[3, 4 * HOUR], [7, 32 * HOUR]] as const) {
    const from = readLog(controller).length;
    const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await kubectl(['-n', ns, 'patch', 'certificate', 'refused', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { failedIssuanceAttempts: attempts, lastFailureTime: at } })]);
    // A pass that started before the informer saw the patch still logs the previous wait: the
    // evidence that the patch was processed is a requeue that no longer counts down the old one.
    const wait = await waitFor(`the back-off after ${attempts} failures`, async () => {
      const latest = lastRequeue(key, from);
      return latest !== undefined && latest > previous ? latest : undefined;
    }, 30_000);
    t.true(wait > want - 5 * 60_000 && wait <= want, `${attempts} failures: retry in ${wait} ms, want about ${want / HOUR} h`);
    previous = wait;
  }
});
