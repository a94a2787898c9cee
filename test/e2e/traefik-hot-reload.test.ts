/**
 * What users come for: annotate an IngressRoute and Traefik serves a valid
 * certificate for its hosts; renew it and Traefik serves the new serial
 * without a restart, while a loop of strict handshakes sees no failure: each
 * one verifies against Pebble's root, names the host, and presents the old
 * serial or the new one (Traefik's default certificate counts as a failure).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubectl, loadKubeConfig, exposeLocalPort, readEnv } from '../env/stack.ts';
import { pidsFile } from '../env/paths.ts';
import { annotatedIngressRoute, applyYaml, cleanUpFile, freshNamespace, kubectlJson, startController, waitFor } from '../helpers/controller.ts';
import { deleteIssuers, newIssuer, triggerRenewal } from '../helpers/issuance.ts';
import { pebbleRoot } from '../helpers/pebble.ts';
import { servedCertificate, serveLocal, type LocalServer } from '../helpers/tls.ts';

const env = readEnv();
let issuer = '';
let backend: LocalServer;

test.before(async () => {
  backend = await serveLocal((_req, res) => res.end('hello from the backend\n'));
  await startController();
  issuer = await newIssuer('pebble-traefik');
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
  await backend?.close();
});

const traefikPid = (): number | undefined => (JSON.parse(readFileSync(pidsFile, 'utf8')) as Record<string, number>).traefik;

test('an annotated IngressRoute gets a Pebble certificate that Traefik serves, and a renewal swaps the serial with zero failed handshakes', async (t) => {
  const ns = await freshNamespace('hot');
  const host = `app.${ns}.test`; // fresh per run: an earlier run's certificate must not pass the check
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: ns, name: 'backend', port: backend.port });
  await applyYaml(annotatedIngressRoute({ namespace: ns, name: 'app', host, issuer, backendPort: backend.port }));
  // certroute names the Secret <route>-tls and writes it into the route.
  const route = await waitFor('spec.tls.secretName written', async () => {
    const r = await kubectlJson<{ spec: { tls?: { secretName?: string } } }>(['-n', ns, 'get', 'ingressroute', 'app']);
    return r.spec.tls?.secretName ? r : undefined;
  });
  t.is(route.spec.tls?.secretName, 'app-tls');
  const cert = await kubectlJson<{ metadata: { ownerReferences?: Array<{ kind: string; name: string }> }; spec: { dnsNames: string[]; secretName: string } }>(['-n', ns, 'get', 'certificate', 'app-tls']);
  t.deepEqual(cert.spec.dnsNames, [host]);
  t.is(cert.metadata.ownerReferences?.[0]?.kind, 'IngressRoute');

  const rootPem = await pebbleRoot(env);
  const root = new X509Certificate(rootPem);
  const first = await waitFor('Traefik to serve the Pebble certificate', async () => {
    const s = await servedCertificate(env.traefik.websecure, host);
    return s.subjectAltName.includes(`DNS:${host}`) ? s : undefined;
  }, 60_000, 100);
  t.is(first.subjectAltName, `DNS:${host}`);
  t.true(first.chain.some((c) => c.verify(root.publicKey)), 'the served chain leads to Pebble root /roots/0');
  t.regex(first.issuer, /Pebble/i);

  const pidBefore = traefikPid();
  // Every handshake, in order: the serial a strict client accepted, or why it refused.
  const outcomes: Array<{ serial: string } | { error: string }> = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const tick = Date.now();
      try {
        outcomes.push({ serial: (await servedCertificate(env.traefik.websecure, host, 3_000, rootPem)).serial });
      } catch (err) {
        outcomes.push({ error: (err as Error).message });
      }
      await sleep(Math.max(0, 25 - (Date.now() - tick)));
    }
  })();
  let second;
  try {
    await triggerRenewal(ns, 'app-tls');
    second = await waitFor('Traefik to serve a new serial', async () => {
      const s = await servedCertificate(env.traefik.websecure, host);
      return s.serial !== first.serial && s.subjectAltName.includes(host) ? s : undefined;
    }, 60_000, 50);
    // The loop's own handshakes must also have met the new serial a few times.
    await waitFor('the handshake loop to see the new serial', async () => outcomes.filter((o) => 'serial' in o && o.serial === second!.serial).length >= 10, 30_000, 50);
  } finally {
    running = false;
    await loop;
  }
  t.not(second.serial, first.serial);
  const failed = outcomes.flatMap((o, i) => {
    if ('error' in o) return [`handshake ${i}: ${o.error}`];
    return o.serial === first.serial || o.serial === second!.serial ? [] : [`handshake ${i}: serial ${o.serial}, neither the old nor the new one`];
  });
  t.log(`${outcomes.length} strict handshakes during the swap, ${failed.length} failed`);
  t.deepEqual(failed, [], 'every handshake verified against Pebble\'s root, named the host and presented the old or the new serial');
  const serials = outcomes.flatMap((o) => ('serial' in o ? [o.serial] : []));
  t.is(serials[0], first.serial, 'the loop began on the old serial');
  t.is(serials.at(-1), second.serial, 'and ended on the new one');
  t.is(serials.lastIndexOf(first.serial) < serials.indexOf(second.serial), true, 'once the new serial was served, the old one never came back');
  t.is(traefikPid(), pidBefore, 'Traefik was not restarted');
});
