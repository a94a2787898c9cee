/**
 * TLS-ALPN-01 through the real Traefik (v3.6), with a Pebble of its own whose `tlsPort` is
 * Traefik's websecure entry point and whose `httpPort` is a closed port, so HTTP-01 cannot be
 * what succeeds. What Traefik's source says, shown here against its binary:
 *
 * - a TCP rule may not name `ALPN(acme-tls/1)`: Traefik refuses the router;
 * - with no ACME resolver of its own doing TLS challenges, Traefik routes an `acme-tls/1`
 *   ClientHello by SNI like any other, so a passthrough IngressRouteTCP can take it, and one that
 *   also says `!ALPN(h2) && !ALPN(http/1.1)` leaves a name's web clients on their own route;
 * - an HTTP router with TLS for the name (an IngressRoute) outranks every TCP router for it, and
 *   Traefik then answers `acme-tls/1` itself from a store only its own resolver fills.
 */
import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { stringify } from 'yaml';
import { exposeLocalPort, loadKubeConfig, readEnv, startExtraPebble, type StackEnv } from '../env/stack.ts';
import { freePorts } from '../env/ports.ts';
import { PebblePaths, requestsTo, startAcmeProxy, type AcmeProxy } from '../helpers/acme-proxy.ts';
import { selfSigned } from '../helpers/builders.ts';
import {
  applyYaml, cleanUpFile, freshNamespace, kubectlJson, pebbleClusterIssuer, secretPem, startController, waitFor, waitForCertificateRevision, waitForLeader, type SecretView,
} from '../helpers/controller.ts';
import { certificateYaml, deleteIssuer, pems, secretProblems, waitIssuerReady } from '../helpers/issuance.ts';
import { pebbleRoot } from '../helpers/pebble.ts';
import { serveLocal } from '../helpers/tls.ts';
import { applyAnnotatedRoute, traefikApi, uniqueHost, type ApiObject } from '../helpers/wiring.ts';
import { validationCertificateProblem } from '../../src/pki/acme-tls-alpn.ts';
import { challengeRule } from '../../src/solvers/tls-alpn01.ts';

const env = readEnv();
const NORMAL_ANSWER = 'the name\'s own backend\n';
let stopPebble: (() => Promise<void>) | undefined;
let alpnEnv: StackEnv;
let proxy: AcmeProxy;
let issuer = '';

/** What a browser or curl offers. */
const WEB_ALPN = ['h2', 'http/1.1'];

test.before(async () => {
  const [closedHttpPort = 0, tlsAlpnPort = 0] = await freePorts(2);
  const pebble = await startExtraPebble('pebble-tls-alpn', { httpPort: closedHttpPort, tlsPort: env.traefik.websecure });
  stopPebble = pebble.stop;
  alpnEnv = { ...env, pebble: pebble.pebble };
  proxy = await startAcmeProxy(alpnEnv);
  await waitForLeader(await startController([`--tls-alpn-port=${tlsAlpnPort}`]));
  issuer = `tls-alpn-${process.pid.toString(36)}${Date.now().toString(36)}`;
  await applyYaml(pebbleClusterIssuer(issuer, { ...alpnEnv, pebble: { ...alpnEnv.pebble, directory: proxy.directory } }, { acme: { solvers: [{ certroute: { tlsAlpn01: {} } }] } }));
  await waitIssuerReady(issuer);
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuer(issuer);
  await proxy?.close();
  await stopPebble?.();
});

/** A name's own HTTPS backend, reached through a TLS-passthrough IngressRouteTCP: it terminates TLS itself. */
async function passthroughBackend(host: string): Promise<{ port: number; server: Server }> {
  const { keyPem, certificatePem } = await selfSigned({ dnsNames: [host] });
  const server = createServer({ key: keyPem, cert: certificatePem, ALPNProtocols: ['http/1.1'] }, (_req, res) => res.end(NORMAL_ANSWER));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

/** One HTTP/1.1 request through Traefik's websecure entry point, offering what a browser offers unless told (the server picks http/1.1). */
function normalRequest(host: string, ALPNProtocols = WEB_ALPN): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: env.traefik.websecure, servername: host, ALPNProtocols, rejectUnauthorized: false }, () => {
      socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    let reply = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.on('end', () => resolve(`${socket.alpnProtocol || 'no ALPN'} ${reply.split('\r\n\r\n').slice(1).join('')}`));
    socket.on('error', reject);
  });
}

/** The certificate Traefik's websecure entry point presents to a validator's handshake for `host`, or the handshake's error. */
function validatorHandshake(host: string): Promise<{ der?: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: env.traefik.websecure, servername: host, ALPNProtocols: ['acme-tls/1'], rejectUnauthorized: false }, () => {
      resolve({ der: socket.getPeerCertificate().raw });
      socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

interface ChallengeView { metadata: { name: string }; spec: { type: string; url: string; key: string }; status?: { reason?: string; state?: string; presented?: boolean } }

test.serial('Traefik refuses a TCP router whose rule names ALPN(`acme-tls/1`)', async (t) => {
  const ns = await freshNamespace('alpn-rule');
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: 1 });
  await applyYaml(stringify({
    apiVersion: 'traefik.io/v1alpha1',
    kind: 'IngressRouteTCP',
    metadata: { name: 'names-acme-tls', namespace: ns },
    spec: { entryPoints: ['websecure'], routes: [{ match: 'HostSNI(`alpn-rule.test`) && ALPN(`acme-tls/1`)', services: [{ name: 'backend', port: 1 }] }], tls: { passthrough: true } },
  }));
  const router = await waitFor('Traefik to load the IngressRouteTCP', async () =>
    (await traefikApi<Array<ApiObject & { error?: string[] }>>('/api/tcp/routers')).find((r) => r.name.startsWith(`${ns}-names-acme-tls-`)));
  t.is(router.status, 'disabled');
  t.true(router.error?.some((e) => e.includes('invalid protocol value for ALPN matcher, "acme-tls/1" is not allowed')), JSON.stringify(router.error));
});

test.serial('a name Traefik passes through gets its certificate through TLS-ALPN-01, and its web clients keep their normal answer during the validation', async (t) => {
  const ns = await freshNamespace('alpn-pass');
  const host = uniqueHost('alpn-pass');
  const backend = await passthroughBackend(host);
  t.teardown(() => new Promise<void>((resolve) => backend.server.close(() => resolve())));
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: backend.port });
  await applyYaml(stringify({
    apiVersion: 'traefik.io/v1alpha1',
    kind: 'IngressRouteTCP',
    metadata: { name: 'own-route', namespace: ns },
    spec: { entryPoints: ['websecure'], routes: [{ match: `HostSNI(\`${host}\`)`, services: [{ name: 'backend', port: backend.port }] }], tls: { passthrough: true } },
  }));
  await waitFor('the name\'s own route to answer', async () => (await normalRequest(host).catch(() => '')).endsWith(NORMAL_ANSWER));

  // The CA is told to validate only after the self-check saw the answer through Traefik: hold it there.
  const validate = proxy.hold(PebblePaths.challenge, 'before');
  await applyYaml(certificateYaml(ns, 'passed-through', [host], issuer));
  await validate.reached;
  const [challenge] = (await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges'])).items;
  t.is(challenge?.spec.type, 'TLS-ALPN-01');
  const answer = await validatorHandshake(host);
  t.is(answer.error, undefined);
  t.is(validationCertificateProblem(new Uint8Array(answer.der ?? Buffer.alloc(0)), host, challenge?.spec.key ?? ''), undefined, 'a validator reaching Traefik gets the validation certificate');
  t.is(await normalRequest(host), `http/1.1 ${NORMAL_ANSWER}`, 'a web client reaching Traefik gets the name\'s own backend');

  // Pebble validates now; web clients keep asking until the certificate is issued.
  const answers: string[] = [];
  let issued = false;
  const asking = (async () => {
    while (!issued) answers.push(await normalRequest(host).catch((err: Error) => err.message));
  })();
  validate.release();
  await waitForCertificateRevision(ns, 'passed-through', 1, 120_000).finally(() => (issued = true));
  await asking;
  t.true(answers.length > 0);
  t.deepEqual([...new Set(answers)], [`http/1.1 ${NORMAL_ANSWER}`], 'every request during the validation got the normal answer');

  const secret = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'passed-through-tls']);
  t.deepEqual(secretProblems(secret, [host]), []);
  const root = new X509Certificate(await pebbleRoot(alpnEnv));
  const chain = pems(secretPem(secret, 'tls.crt')).map((p) => new X509Certificate(p));
  t.true(chain.at(-1)!.verify(root.publicKey), 'issued by the Pebble whose only open validation port is Traefik\'s websecure');
  await waitFor('the challenge route to be cleaned up', async () => !(await traefikApi<ApiObject[]>('/api/tcp/routers')).some((r) => r.rule === challengeRule(host)));
});

test.serial('for a name an annotated IngressRoute serves, Traefik answers acme-tls/1 itself: certroute says why and does not send the CA, and the route keeps its answer', async (t) => {
  const ns = await freshNamespace('alpn-http');
  const host = uniqueHost('alpn-http');
  const backend = await serveLocal((_req, res) => res.end(NORMAL_ANSWER));
  t.teardown(() => backend.close());
  await applyAnnotatedRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port });

  const challenge = await waitFor('the Challenge to say why it waits', async () =>
    (await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges'])).items.find((c) => c.status?.reason?.includes('Traefik did not hand the acme-tls/1 handshake')), 120_000);
  t.is(challenge.spec.type, 'TLS-ALPN-01');
  t.true(challenge.status?.presented);
  t.is(challenge.status?.state, 'pending', 'the order is kept, not failed');
  t.regex(challenge.status?.reason ?? '', /solve this name with http01 or dns01/);

  // The self-check's verdict can come before Traefik's provider throttle has loaded the route;
  // the route is there once Traefik catches up, and Traefik still does not use it.
  const router = await waitFor("certroute's challenge route in Traefik", async () => (await traefikApi<ApiObject[]>('/api/tcp/routers')).find((r) => r.rule === challengeRule(host)), 30_000);
  t.is(router.status, 'enabled', "certroute's challenge route is in Traefik, and Traefik does not use it");
  t.deepEqual(await validatorHandshake(host), { error: 'ERR_SSL_TLSV1_UNRECOGNIZED_NAME' }, "Traefik answers the validator's handshake itself, with no certificate");
  t.is(await normalRequest(host, ['http/1.1']), `http/1.1 ${NORMAL_ANSWER}`, 'the IngressRoute keeps its answer');
  const asked = requestsTo(proxy, PebblePaths.challenge).filter((r) => r.path === new URL(challenge.spec.url).pathname);
  t.deepEqual(asked, [], 'the CA was never told to validate');
});
