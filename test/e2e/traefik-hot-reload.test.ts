/**
 * What users come for: annotate an IngressRoute and Traefik serves a valid
 * certificate for its hosts; renew it and Traefik serves the new serial
 * without a restart, while a handshake loop sees no failure.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubectl, loadKubeConfig, exposeLocalPort, readEnv } from '../env/stack.ts';
import { pidsFile } from '../env/paths.ts';
import { annotatedIngressRoute, applyYaml, freshNamespace, kubectlJson, pebbleClusterIssuer, startController, waitFor, type ControllerProcess } from '../helpers/controller.ts';
import { pebbleRoot } from '../helpers/pebble.ts';
import type { Certificate } from '../../src/api/types.ts';
import { renewCertificate } from '../../src/cli/renew.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { servedCertificate, serveLocal, type LocalServer } from '../helpers/tls.ts';

const env = readEnv();
const issuer = 'pebble-traefik';
let controller: ControllerProcess;
let backend: LocalServer;

test.before(async () => {
  await applyYaml(pebbleClusterIssuer(issuer));
  backend = await serveLocal((_req, res) => res.end('hello from the backend\n'));
  controller = startController();
});

test.after.always(async () => {
  await controller?.stop();
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

  const root = new X509Certificate(await pebbleRoot(env));
  const first = await waitFor('Traefik to serve the Pebble certificate', async () => {
    const s = await servedCertificate(env.traefik.websecure, host);
    return s.subjectAltName.includes(`DNS:${host}`) ? s : undefined;
  }, 60_000, 100);
  t.is(first.subjectAltName, `DNS:${host}`);
  t.true(first.chain.at(-1)!.verify(root.publicKey) || first.chain.some((c) => c.verify(root.publicKey)), 'the served chain leads to Pebble root /roots/0');
  t.regex(first.issuer, /Pebble/i);

  const pidBefore = traefikPid();
  let failures = 0;
  let handshakes = 0;
  const serials = new Set<string>();
  let running = true;
  const started = Date.now();
  const loop = (async () => {
    while (running) {
      const tick = Date.now();
      try {
        serials.add((await servedCertificate(env.traefik.websecure, host)).serial);
        handshakes++;
      } catch {
        failures++;
      }
      await sleep(Math.max(0, 25 - (Date.now() - tick)));
    }
  })();
  let second;
  try {
    // What cmctl renew does: Issuing=True, reason ManuallyTriggered.
    await renewCertificate(KubeClient.fromKubeconfig(env.kubeconfig), await kubectlJson<Certificate>(['-n', ns, 'get', 'certificate', 'app-tls']));
    second = await waitFor('Traefik to serve a new serial', async () => {
      const s = await servedCertificate(env.traefik.websecure, host);
      return s.serial !== first.serial && s.subjectAltName.includes(host) ? s : undefined;
    }, 60_000, 50);
    await sleep(1_000);
  } finally {
    running = false;
    await loop;
  }
  const seconds = (Date.now() - started) / 1000;
  t.not(second.serial, first.serial);
  t.is(failures, 0, 'no handshake failed while the certificate was swapped');
  t.true(handshakes / seconds >= 20, `handshake rate ${(handshakes / seconds).toFixed(1)}/s`);
  t.true(serials.has(first.serial) && serials.has(second.serial), 'the loop saw the old serial, then the new one');
  t.is(traefikPid(), pidBefore, 'Traefik was not restarted');
});
