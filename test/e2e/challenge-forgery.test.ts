/**
 * The critical attack: a Challenge written by hand. Someone runs an ACME client of their own
 * against a CA for a host behind this Traefik, and writes the token and key authorization it gets
 * into a Challenge; if certroute served it, the CA would hand them a certificate for that host.
 *
 * The admission policy keeps namespace users from creating Challenges at all (see
 * test/integration/admission-policy.test.ts); this test plays a cluster without it (the objects
 * are written with the admin's rights) and shows the second wall: a Challenge is presented and
 * served only for an Order of certroute's own. One with no Order, and one hung on a real Order
 * with a token the CA never gave that Order, are never served, by the responder directly or
 * through Traefik, while the genuine Challenge beside them is.
 */
import test from 'ava';
import http from 'node:http';
import { kubectl, readEnv } from '../env/stack.ts';
import { cleanUpFile, applyYaml, freshNamespace, kubectlJson, own, startController, waitFor, type ControllerProcess } from '../helpers/controller.ts';
import { applyIssuer, certificateYaml, deleteIssuer, freshIssuerName, waitIssuerReady } from '../helpers/issuance.ts';

const env = readEnv();
const responderPort = own.responderPort;
let controller: ControllerProcess | undefined;
let issuer = '';
let ns = '';

interface ChallengeView {
  metadata: { name: string; uid: string; ownerReferences?: Array<{ name: string; uid: string; kind: string }> };
  spec: { token: string; key: string; dnsName: string; url: string; authorizationURL: string };
  status?: { presented?: boolean; reason?: string; state?: string };
}

function ask(port: number, token: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/.well-known/acme-challenge/${token}`, headers: { host }, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

test.after.always(async () => {
  await cleanUpFile();
  if (issuer) await deleteIssuer(issuer);
});

test('a hand-made Challenge is never presented or served, with or without a real Order as its owner', async (t) => {
  // The genuine Challenge stays presented: the self-check goes to a closed port.
  controller = await startController(['--self-check-address=http://127.0.0.1:9']);
  issuer = freshIssuerName('forgery');
  await applyIssuer(issuer);
  await waitIssuerReady(issuer);
  ns = await freshNamespace('forgery');
  await applyYaml(certificateYaml(ns, 'shop', [`shop.${ns}.test`], issuer));
  const genuine = await waitFor('the genuine Challenge presented', async () => {
    const { items } = await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges']);
    return items.find((c) => c.status?.presented);
  }, 60_000);
  const order = genuine.metadata.ownerReferences?.find((r) => r.kind === 'Order');
  t.truthy(order);
  await waitFor('the genuine token served through Traefik', async () => (await ask(env.traefik.web, genuine.spec.token, genuine.spec.dnsName)) === 200, 30_000, 200);

  const victim = `victim.${ns}.test`;
  const forged = (name: string, token: string, owner: string) => `apiVersion: acme.cert-manager.io/v1
kind: Challenge
metadata:
  name: ${name}
  namespace: ${ns}
${owner}spec:
  url: https://attacker.example/chall/${token}
  authorizationURL: https://attacker.example/authz/${token}
  dnsName: ${victim}
  type: HTTP-01
  token: ${token}
  key: ${token}.attacker-thumbprint
  solver: {http01: {ingress: {}}}
  issuerRef: {name: ${issuer}, kind: ClusterIssuer}
`;
  const ownedByOrder = `  ownerReferences:
    - {apiVersion: acme.cert-manager.io/v1, kind: Order, name: ${order?.name}, uid: ${order?.uid}, controller: true}
`;
  await applyYaml(forged('orphan', 'forged-orphan-token', '') + '---\n' + forged('hung-on-order', 'forged-owned-token', ownedByOrder));
  // And what a writer of challenges/status could add: "presented" on the orphan.
  await kubectl(['-n', ns, 'patch', 'challenge', 'orphan', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { presented: true, state: 'pending' } })]);

  // Positive evidence: the controller looked at both and refused them.
  for (const name of ['orphan', 'hung-on-order']) {
    const c = await waitFor(`the controller to refuse ${name}`, async () => {
      const ch = await kubectlJson<ChallengeView>(['-n', ns, 'get', 'challenge', name]);
      return ch.status?.reason?.startsWith('not presented:') ? ch : undefined;
    }, 30_000);
    t.false(c.status?.presented ?? false, `${name} is not presented`);
  }
  const hung = await kubectlJson<ChallengeView>(['-n', ns, 'get', 'challenge', 'hung-on-order']);
  t.regex(hung.status?.reason ?? '', /got no such challenge from the CA|does not ask for victim/);

  for (const [token, what] of [['forged-orphan-token', 'the orphan'], ['forged-owned-token', 'the one hung on a real Order']] as const) {
    t.is(await ask(responderPort, token, victim), 404, `${what}: not served by the responder`);
    t.is(await ask(env.traefik.web, token, victim), 404, `${what}: not served through Traefik`);
  }
  t.is(await ask(responderPort, genuine.spec.token, genuine.spec.dnsName), 200, 'the genuine Challenge is still served');
});
