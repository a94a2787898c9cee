/**
 * Behind a Cloudflare Tunnel (issue 4 §6): the ACME server reaches the cluster only through the
 * edge, which redirects plain HTTP to HTTPS and tunnels HTTPS to Traefik's web entrypoint. Pebble
 * is pointed at a local stand-in for that edge (test/helpers/tunnel.ts) and must validate
 * through it, while certroute's self-check goes straight to Traefik in the cluster and never
 * through the edge.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { readEnv, restart } from '../env/stack.ts';
import { cleanUpFile, freshNamespace, startController, waitForLeader } from '../helpers/controller.ts';
import { deleteIssuers, newIssuer } from '../helpers/issuance.ts';
import { pebbleRoot } from '../helpers/pebble.ts';
import { serveLocal, type LocalServer } from '../helpers/tls.ts';
import { startTunnel, type Tunnel } from '../helpers/tunnel.ts';
import { applyAnnotatedRoute, CHALLENGE_PATH, uniqueHost, waitForServed } from '../helpers/wiring.ts';

const env = readEnv();
// Pebble forgets its accounts when it restarts, so this run registers a fresh one.
let issuer = '';
let tunnel: Tunnel | undefined;
let pebbleChanged = false;
let backend: LocalServer;

test.before(async () => {
  tunnel = await startTunnel({ originPort: env.traefik.web });
  pebbleChanged = true;
  await restart('pebble', { httpPort: tunnel.httpPort, tlsPort: tunnel.tlsPort });
  backend = await serveLocal((_req, res) => res.end('hello through the tunnel\n'));
  await waitForLeader(await startController());
  issuer = await newIssuer('pebble-tunnel');
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
  await backend?.close();
  // Pebble as every other file expects it: its defaults (it has forgotten every account again).
  if (pebbleChanged) await restart('pebble');
  await tunnel?.close();
});

test('Pebble validates through an edge that redirects to HTTPS and tunnels to Traefik, and Traefik serves the certificate', async (t) => {
  const ns = await freshNamespace('tunnel');
  const host = uniqueHost('tunnel');
  await applyAnnotatedRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port });
  const served = await waitForServed(host);
  t.is(served.subjectAltName, `DNS:${host}`);
  const root = new X509Certificate(await pebbleRoot(env));
  t.true(served.chain.some((c) => c.verify(root.publicKey)), 'the served chain leads to the current Pebble root');

  const challenges = tunnel!.requests.filter((r) => r.path.startsWith(CHALLENGE_PATH) && r.host.replace(/:\d+$/, '') === host);
  const redirected = challenges.filter((r) => r.listener === 'http');
  const tunnelled = challenges.filter((r) => r.listener === 'https');
  t.true(redirected.length >= 1 && redirected.every((r) => r.status === 301), 'the validation request met "Always Use HTTPS"');
  t.is(redirected[0]?.location, `https://${host}:${tunnel!.tlsPort}${redirected[0]?.path}`);
  t.true(tunnelled.some((r) => r.status === 200), 'Pebble followed the redirect over TLS, and the tunnel delivered the token from the responder');
  t.false(tunnel!.requests.some((r) => r.userAgent.includes('certroute')), "certroute's self-check never went through the edge");
});
