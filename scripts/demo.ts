/**
 * `npm start`: the whole product on the embedded local stack. It brings the
 * stack up, runs `certroute controller`, applies a Pebble ClusterIssuer and
 * an annotated IngressRoute in front of a tiny backend, waits until Traefik
 * serves the issued certificate, and prints a curl command that shows it.
 *
 *   npm start              keep running until Ctrl-C (the stack stays up)
 *   npm start -- --exit    stop the controller and backend once it works
 */
import { spawn } from 'node:child_process';
import { writeFileSync, mkdirSync, createWriteStream } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { readFileSync } from 'node:fs';
import { exposeLocalPort, kubectl, kubectlPath, loadKubeConfig, up } from '../test/env/stack.ts';
import { logsDir, repoRoot, stackDir } from '../test/env/paths.ts';
import { pebbleRoot } from '../test/helpers/pebble.ts';
import { sourceEntry } from './entry.ts';
import { servedCertificate, type Served } from '../test/helpers/tls.ts';

const HOST = 'demo.certroute.test';
const NS = 'demo';
const ISSUER = 'pebble';
const exitWhenDone = process.argv.includes('--exit');

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<number> {
  const started = Date.now();
  say('» starting the local stack (kube-apiserver, etcd, Traefik, Pebble); the first run builds them from Go modules');
  const env = await up({ log: (line) => say(`  ${line}`), startedBy: 'demo' });

  const backend = http.createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`Hello from behind Traefik, served over HTTPS with a certificate certroute got from Pebble.\n`);
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const backendPort = (backend.address() as AddressInfo).port;

  say('» starting certroute controller');
  mkdirSync(logsDir, { recursive: true });
  const logFile = join(logsDir, 'demo-controller.log');
  const log = createWriteStream(logFile);
  const controller = spawn(process.execPath, [join(repoRoot, sourceEntry), 'controller', `--responder-port=${env.responderPort}`, '--metrics-port=0', '--health-port=0'], {
    env: { ...process.env, KUBECONFIG: env.kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  controller.stdout.pipe(log);
  controller.stderr.pipe(log);
  let controllerExited = false;
  controller.once('exit', () => {
    controllerExited = true;
  });
  const stop = async (): Promise<void> => {
    controller.kill('SIGTERM');
    backend.closeAllConnections();
    backend.close();
    await sleep(200);
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));

  const ca = readFileSync(env.pebble.tlsCa).toString('base64');
  const manifest = `apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: ${ISSUER}
spec:
  acme:
    server: ${env.pebble.directory}
    email: demo@example.com
    caBundle: ${ca}
    privateKeySecretRef:
      name: ${ISSUER}-account
    solvers:
      - http01:
          ingress:
            ingressClassName: traefik
---
apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: hello
  namespace: ${NS}
  annotations:
    cert-manager.io/cluster-issuer: ${ISSUER}
spec:
  entryPoints: [websecure]
  routes:
    - match: Host(\`${HOST}\`)
      kind: Rule
      services:
        - name: hello
          port: ${backendPort}
  tls: {}
`;
  // A certificate left by an earlier run may come from an earlier Pebble, which forgets its root
  // when it restarts: the curl printed below could not verify it. Each run starts clean, and the
  // shim makes the Certificate again from the IngressRoute.
  await kubectl(['-n', NS, 'delete', 'certificates,secrets', '--all', '--ignore-not-found', '--wait=false']);
  say(`» applying a ClusterIssuer for Pebble and an IngressRoute for ${HOST} annotated cert-manager.io/cluster-issuer: ${ISSUER}`);
  await kubectl(['apply', '-f', '-'], { input: manifest });
  await exposeLocalPort(loadKubeConfig(env.kubeconfig), { namespace: NS, name: 'hello', port: backendPort });
  const reachesBackend = async (): Promise<boolean> => {
    try {
      const res = await request(`https://127.0.0.1:${env.traefik.websecure}/`, {
        headers: { host: HOST },
        dispatcher: new Agent({ connect: { servername: HOST, rejectUnauthorized: false } }),
      });
      await res.body.text();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  };

  const root = await pebbleRoot(env);
  const deadline = Date.now() + 120_000;
  let served: Served | undefined;
  while (!served && Date.now() < deadline && !controllerExited) {
    try {
      // As strict as the curl printed below: the chain must verify against this Pebble's root.
      const s = await servedCertificate(env.traefik.websecure, HOST, 3_000, root);
      // Done when the certificate is served and Traefik routes to this run's backend.
      if (s.subjectAltName.includes(`DNS:${HOST}`) && (await reachesBackend())) served = s;
    } catch {
      // Traefik may not have the route yet.
    }
    if (!served) await sleep(200);
  }
  if (!served) {
    say(`✗ Traefik did not serve a certificate for ${HOST} within 2 minutes; see ${logFile} and run: KUBECONFIG=${env.kubeconfig} npx certroute status -n ${NS}`);
    await stop();
    return 1;
  }
  const rootFile = join(stackDir, 'pebble-root.pem');
  writeFileSync(rootFile, root);
  say(`✓ Traefik serves a certificate for ${HOST} issued by "${served.issuer}" (serial ${served.serial}), ${((Date.now() - started) / 1000).toFixed(1)} s after start`);
  say('');
  say('See it, verified against Pebble\'s root:');
  say(`  curl --cacert ${rootFile} --resolve ${HOST}:${env.traefik.websecure}:127.0.0.1 https://${HOST}:${env.traefik.websecure}/`);
  say('Look around:');
  say(`  export KUBECONFIG=${env.kubeconfig}`);
  // npx runs the CLI with the project's own Node 24 (the `node` dev dependency), whatever Node the
  // machine has: `node bin/certroute.js` under Node 20 cannot load the TypeScript sources.
  say(`  npx certroute status -n ${NS}      # or: ${await kubectlPath()} get certificate -n ${NS}`);
  say(`Controller log: ${logFile}.  Stop the stack with: npm run stack -- down`);
  if (exitWhenDone) {
    await stop();
    return 0;
  }
  say('(Ctrl-C stops the controller and the backend; the stack stays up.)');
  await new Promise<void>((resolve) => controller.once('exit', () => resolve()));
  return controllerExited ? 1 : 0;
}

process.exitCode = await main().catch((err: unknown) => {
  process.stderr.write(`npm start: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});
