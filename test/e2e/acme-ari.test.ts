/**
 * ACME Renewal Information (RFC 9773) on the real stack: Pebble's renewalInfo window sets
 * status.renewalTime, an earlier renewBefore still wins, and a certificate revoked through ACME
 * is renewed at the next check and served by Traefik. The controller checks every 2 s here
 * (--ari-poll-interval), where production waits for the CA's Retry-After (Pebble: 6 h).
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { exposeLocalPort, loadKubeConfig, readEnv } from '../env/stack.ts';
import {
  annotatedIngressRoute, applyYaml, certroute, cleanUpFile, CONTROLLER_NAMESPACE, freshNamespace, kubectlJson, secretPem, startController, waitFor,
  waitForCertificateRevision, type SecretView,
} from '../helpers/controller.ts';
import { certificateYaml, deleteIssuers, newIssuer } from '../helpers/issuance.ts';
import { describeRequest, requestsOn } from '../helpers/audit.ts';
import { pebbleRenewalInfo, revokeWithAccountKey, setPebbleRenewalWindow } from '../helpers/pebble.ts';
import { servedCertificate, serveLocal, type LocalServer } from '../helpers/tls.ts';
import { ariCertificateId } from '../../src/pki/ari.ts';
import { x509 } from '../../src/pki/x509.ts';

interface AriView {
  metadata: { name: string };
  status?: {
    revision?: number;
    notAfter?: string;
    renewalTime?: string;
    acme?: { profile?: string; ari?: { certID: string; suggestedWindow: { start: string; end: string }; selectedTime: string; nextCheck?: string } };
  };
}

const env = readEnv();
let issuer = '';
let backend: LocalServer;

test.before(async () => {
  backend = await serveLocal((_req, res) => res.end('backend\n'));
  await startController(['--ari-poll-interval=2s']);
  issuer = await newIssuer('pebble-ari');
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
  await backend?.close();
});

async function leafOf(ns: string, secret: string): Promise<{ pem: string; cert: X509Certificate; id: string }> {
  const pem = secretPem(await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', secret]), 'tls.crt');
  const cert = new X509Certificate(pem);
  return { pem, cert, id: ariCertificateId(akiOf(cert), cert.serialNumber) };
}

/** The Authority Key Identifier's keyIdentifier, as hex. */
function akiOf(cert: X509Certificate): string {
  const parsed = new x509.X509Certificate(cert.raw);
  const keyId = parsed.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  if (!keyId) throw new Error('the certificate has no Authority Key Identifier');
  return keyId;
}

async function ariOf(ns: string, name: string, id: string): Promise<AriView> {
  return waitFor(`Certificate ${ns}/${name} to carry ARI for ${id}`, async () => {
    const c = await kubectlJson<AriView>(['-n', ns, 'get', 'certificate', name]);
    return c.status?.acme?.ari?.certID === id ? c : undefined;
  }, 60_000);
}

const within = (time: string, w: { start: string; end: string }) => Date.parse(time) >= Date.parse(w.start) - 999 && Date.parse(time) <= Date.parse(w.end);

test("Pebble's ARI window drives renewalTime, and a window the CA moves moves it", async (t) => {
  const ns = await freshNamespace('ari-window');
  const since = new Date();
  await applyYaml(certificateYaml(ns, 'web', ['web.ari-window.test'], issuer));
  await waitForCertificateRevision(ns, 'web', 1, 90_000);
  const leaf = await leafOf(ns, 'web-tls');
  const first = await ariOf(ns, 'web', leaf.id);
  const pebble = await pebbleRenewalInfo(env, leaf.id);
  const ari = first.status!.acme!.ari!;
  t.is(Date.parse(ari.suggestedWindow.start), Math.floor(Date.parse(pebble.suggestedWindow.start) / 1000) * 1000);
  t.is(Date.parse(ari.suggestedWindow.end), Math.floor(Date.parse(pebble.suggestedWindow.end) / 1000) * 1000);
  t.true(within(ari.selectedTime, ari.suggestedWindow), `${ari.selectedTime} is inside the window`);
  t.is(first.status?.renewalTime, ari.selectedTime);
  // The API server's record of the issuance: one status write starts it (Issuing, the next key's
  // name), one ends it, and that one carries the ARI window already; none is refused with a 409.
  const statusWrites = requestsOn('certificates', ns, 'web', since).filter((e) => e.objectRef?.subresource === 'status' && e.verb !== 'get');
  t.deepEqual(statusWrites.map((e) => `${e.verb} ${e.responseStatus?.code}`), ['update 200', 'update 200'], statusWrites.map(describeRequest).join('\n'));

  // Pebble now suggests a window 10 days from now: the next check moves renewalTime into it.
  const start = new Date(Date.now() + 10 * 86_400_000);
  const end = new Date(start.getTime() + 86_400_000);
  await setPebbleRenewalWindow(env, leaf.pem, start, end);
  const moved = await waitFor('renewalTime inside the window Pebble now suggests', async () => {
    const c = await kubectlJson<AriView>(['-n', ns, 'get', 'certificate', 'web']);
    const w = c.status?.acme?.ari?.suggestedWindow;
    return w && Math.abs(Date.parse(w.start) - start.getTime()) < 1000 && c.status?.renewalTime === c.status?.acme?.ari?.selectedTime ? c : undefined;
  }, 60_000);
  t.true(within(moved.status!.renewalTime!, { start: start.toISOString(), end: end.toISOString() }));

  const shown = await certroute(['status', 'web', '-n', ns]);
  t.regex(shown.stdout, /ARI window \S+ – \S+, picked \S+ \(the renewal time\)/);
});

test('an earlier renewBefore wins over the ARI window, which stays shown', async (t) => {
  const ns = await freshNamespace('ari-early');
  // 2000 h before the 90-day expiry is day 7, long before Pebble's window around day 60.
  await applyYaml(certificateYaml(ns, 'early', ['early.ari-early.test'], issuer, { renewBefore: '2000h' }));
  await waitForCertificateRevision(ns, 'early', 1, 90_000);
  const leaf = await leafOf(ns, 'early-tls');
  const cert = await ariOf(ns, 'early', leaf.id);
  t.is(Date.parse(cert.status!.renewalTime!), Date.parse(cert.status!.notAfter!) - 2000 * 3600_000);
  t.true(Date.parse(cert.status!.renewalTime!) < Date.parse(cert.status!.acme!.ari!.suggestedWindow.start));
  const shown = await certroute(['status', 'early', '-n', ns]);
  t.regex(shown.stdout, /renewBefore gives an earlier renewal time/);
});

test('a certificate revoked through ACME for keyCompromise is renewed at the next ARI check, replacing it, and Traefik serves the new serial', async (t) => {
  const ns = await freshNamespace('ari-revoke');
  const host = 'shop.ari-revoke.test';
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: backend.port });
  await applyYaml(annotatedIngressRoute({ namespace: ns, name: 'shop', host, issuer, backendPort: backend.port, tls: { secretName: 'shop-tls' } }));
  await waitForCertificateRevision(ns, 'shop-tls', 1, 90_000);
  const old = await leafOf(ns, 'shop-tls');
  await waitFor('Traefik to serve the first certificate', async () => (await servedCertificate(env.traefik.websecure, host)).serial === old.cert.serialNumber, 60_000);
  await ariOf(ns, 'shop-tls', old.id);

  const account = await kubectlJson<SecretView>(['-n', CONTROLLER_NAMESPACE, 'get', 'secret', `${issuer}-account`]);
  await revokeWithAccountKey(env, secretPem(account, 'tls.key'), old.pem, 1);
  const window = (await pebbleRenewalInfo(env, old.id)).suggestedWindow;
  t.true(Date.parse(window.end) < Date.now(), 'Pebble moved the window of the revoked certificate into the past');

  const renewed = await waitForCertificateRevision(ns, 'shop-tls', 2, 90_000);
  t.truthy(renewed.status?.renewalTime);
  const fresh = await leafOf(ns, 'shop-tls');
  t.not(fresh.cert.serialNumber, old.cert.serialNumber);
  await waitFor('Traefik to serve the new serial', async () => (await servedCertificate(env.traefik.websecure, host)).serial === fresh.cert.serialNumber, 60_000);
  const orders = await kubectlJson<{ items: Array<{ status?: { replaces?: string; state?: string } }> }>(['-n', ns, 'get', 'orders']);
  t.true(orders.items.some((o) => o.status?.replaces === old.id && o.status.state === 'valid'), 'the renewal\'s order named the revoked certificate in replaces');
  const events = await kubectlJson<{ items: Array<{ reason: string; message: string }> }>(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.name=shop-tls']);
  t.true(events.items.some((e) => e.reason === 'Issuing' && /renewal was scheduled at/.test(e.message)), 'the renewal was started by the renewal time ARI set');
});
