/**
 * The `certroute` command as an operator runs it against the stack (issue 5
 * §5): `status` for a Ready and for a stuck Certificate (with the chain
 * CertificateRequest → Order → Challenge and each one's reason), `renew`,
 * `check` through Traefik, `--help` everywhere, and the exit codes scripts
 * rely on: 0 ok, 1 not ok, 2 usage error, 3 cluster unreachable.
 *
 * The stuck Certificate is stuck the way real ones get stuck: a user route
 * with a higher priority than certroute's challenge route takes
 * /.well-known/acme-challenge/ for that host, so the self-check fails.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exposeLocalPort, kubectl, loadKubeConfig, readEnv } from '../env/stack.ts';
import { stateFile } from '../env/paths.ts';
import { freePorts } from '../env/ports.ts';
import {
  annotatedIngressRoute,
  applyYaml, certroute, cleanUpFile, freshNamespace, kubectlJson, startController, waitFor, waitForCertificateRevision,
  type CertificateView,
} from '../helpers/controller.ts';
import { deleteIssuers, newIssuer } from '../helpers/issuance.ts';
import { servedCertificate, serveLocal, type LocalServer } from '../helpers/tls.ts';
import { routeTakingChallenges } from '../helpers/wiring.ts';

const env = readEnv();
let issuer = '';
const run = Date.now().toString(36);
const readyHost = `ready-${run}.cli.test`;
const pendingHost = `pending-${run}.cli.test`;
const noCertHost = `nocert-${run}.cli.test`;
const dnsPort = (JSON.parse(readFileSync(stateFile, 'utf8')) as { ports: { challtestsrvDns: number } }).ports.challtestsrvDns;
const tmp = mkdtempSync(join(tmpdir(), 'certroute-cli-'));

let backend: LocalServer;
let readyNs: string;
let pendingNs: string;

function viaWeb(host: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: env.traefik.web, path, headers: { host }, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

function routeWithCertificate(ns: string, name: string, host: string, issuerName = issuer): string {
  return annotatedIngressRoute({ namespace: ns, name, host, issuer: issuerName, backendPort: backend.port });
}

const checkFlags = ['--web-address', `http://127.0.0.1:${env.traefik.web}`, '--websecure-address', `https://127.0.0.1:${env.traefik.websecure}`, '--dns-server', `127.0.0.1:${dnsPort}`];

test.before(async () => {
  backend = await serveLocal((_req, res) => res.end('hello from the backend\n'));
  await startController(['--min-backoff=2s', '--max-backoff=8s'], { name: `cli-${process.pid}` });
  issuer = await newIssuer('pebble-cli');
  readyNs = await freshNamespace('cli-ready');
  pendingNs = await freshNamespace('cli-pending');
  const kc = loadKubeConfig(env.kubeconfig);
  await exposeLocalPort(kc, { namespace: readyNs, name: 'backend', port: backend.port });
  await exposeLocalPort(kc, { namespace: pendingNs, name: 'backend', port: backend.port });
  // A user route that outranks certroute's challenge route (priority 2^30) for one host.
  await applyYaml(routeTakingChallenges(pendingNs, pendingHost, backend.port));
  await waitFor('Traefik to route the pending host\'s challenge path to the backend', async () => (await viaWeb(pendingHost, '/.well-known/acme-challenge/x')).includes('hello'), 30_000);
  await applyYaml(routeWithCertificate(readyNs, 'app', readyHost));
  await applyYaml(routeWithCertificate(pendingNs, 'stuck', pendingHost));
  await applyYaml(routeWithCertificate(pendingNs, 'orphan', `orphan-${run}.cli.test`, 'no-such-issuer'));
  await waitForCertificateRevision(readyNs, 'app-tls', 1, 90_000);
  await waitFor('Traefik to serve the issued certificate', async () => (await servedCertificate(env.traefik.websecure, readyHost)).subjectAltName.includes(readyHost), 60_000);
  await waitFor('the stuck Challenge to report its failed self-check', async () => {
    const list = await kubectlJson<{ items: Array<{ spec: { dnsName: string }; status?: { presented?: boolean; reason?: string } }> }>(['-n', pendingNs, 'get', 'challenges']);
    return list.items.some((c) => c.spec.dnsName === pendingHost && c.status?.presented && /self-check/.test(c.status.reason ?? ''));
  }, 60_000);
  await waitFor('the orphan CertificateRequest to say its issuer is missing', async () => {
    const { stdout } = await kubectl(['-n', pendingNs, 'get', 'certificaterequest', 'orphan-tls-1', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].message}']);
    return /not found/.test(stdout);
  }, 30_000);
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
  await backend?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test.serial('status: a namespace whose Certificates are all Ready prints the table and exits 0', async (t) => {
  const r = await certroute(['status', '-n', readyNs]);
  t.is(r.code, 0, r.stderr);
  const [head, row, ...rest] = r.stdout.trimEnd().split('\n');
  t.regex(head!, /^NAME\s+READY\s+SECRET\s+ISSUER\s+EXPIRES\s+RENEWAL\s+LAST FAILURE$/);
  const columns = new RegExp(`^app-tls\\s+True\\s+app-tls\\s+ClusterIssuer/${issuer}\\s+89d\\s+(\\d+)d\\s+-$`).exec(row!);
  t.truthy(columns, `Pebble's default profile lives 90 days: ${row}`);
  // Renewal at the moment picked in Pebble's ARI window, days 59 to 61 of the 90 (checked below).
  const renewalDays = Number(columns?.[1]);
  t.true(renewalDays >= 59 && renewalDays <= 61, `renewal in ${renewalDays} days`);
  // A Ready Certificate needs no explanation; only where it came from: its profile and the CA's ARI window.
  t.is(rest.length, 1, rest.join('\n'));
  t.regex(rest[0]!, /^ {2}ACME: profile default; ARI window \S+ – \S+, picked \S+ \(the renewal time\)/);
  const one = await certroute(['status', 'app-tls', '-n', readyNs, '-o', 'json']);
  t.is(one.code, 0);
  const json = JSON.parse(one.stdout) as { items: Array<{ name: string; ready: { status: string; reason: string }; revision: number }> };
  t.like(json.items[0], { name: 'app-tls', ready: { status: 'True', reason: 'Ready' }, revision: 1 });
});

test.serial('status: a stuck Certificate shows CertificateRequest → Order → Challenge with each reason, and exits 1', async (t) => {
  const r = await certroute(['status', '-n', pendingNs]);
  t.is(r.code, 1, r.stderr);
  const out = r.stdout;
  t.log(out);
  // The stuck one: its Challenge says why.
  t.regex(out, new RegExp(`^stuck-tls\\s+False\\s+stuck-tls\\s+ClusterIssuer/${issuer}\\s+-\\s+-\\s+-$`, 'm'));
  t.regex(out, /^ {2}Issuing=True DoesNotExist: Issuing certificate as Secret does not exist$/m);
  t.regex(out, /^ {2}CertificateRequest stuck-tls-1: Ready=False Pending: Waiting on certificate issuance from order /m);
  t.regex(out, /^ {4}Order stuck-tls-1-\d+: pending$/m);
  const host = pendingHost.replace(/\./g, '\\.');
  t.regex(out, new RegExp(`^ {6}Challenge ${host} \\(HTTP-01\\): pending, presented: self-check GET http://\\S+ \\(Host: ${host}\\) returned 200 with a body that is not the key authorization \\(\\d+ bytes\\); another service answered the challenge path`, 'm'));
  // The orphan: its request says the issuer does not exist.
  t.regex(out, /^orphan-tls\s+False\s+orphan-tls\s+ClusterIssuer\/no-such-issuer\s/m);
  t.regex(out, /^ {2}CertificateRequest orphan-tls-1: Ready=False Pending: Referenced "ClusterIssuer" not found: .*"no-such-issuer" not found/m);
  // Both Certificates, any namespace: still 1.
  t.is((await certroute(['status', '-A'])).code, 1);
});

test.serial('renew --all marks every Certificate in the namespace and the controller issues a new revision', async (t) => {
  const r = await certroute(['renew', '--all', '-n', readyNs]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `Manually triggered issuance of Certificate ${readyNs}/app-tls\n`);
  const cert = await waitForCertificateRevision(readyNs, 'app-tls', 2, 60_000);
  t.is(cert.status?.revision, 2);
  const again = await certroute(['renew', '--all', '-n', pendingNs]);
  t.is(again.code, 0);
  t.regex(again.stdout, new RegExp(`Certificate ${pendingNs}/stuck-tls is already being issued`));
  const missing = await certroute(['renew', 'no-such-certificate', '-n', readyNs]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no-such-certificate.*not found/);
});

test.serial('check: an issued host passes DNS, route, responder and TLS', async (t) => {
  await waitFor('app-tls Ready again after the renewal test (the tests run in order)', async () => (await kubectlJson<CertificateView>(['-n', readyNs, 'get', 'certificate', 'app-tls'])).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 60_000);
  const r = await certroute(['check', readyHost, ...checkFlags]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, new RegExp(`^ok +DNS: ${readyHost.replace(/\./g, '\\.')} resolves to 127\\.0\\.0\\.1 via 127\\.0\\.0\\.1:${dnsPort}$`, 'm'));
  t.regex(r.stdout, /^ok +route: Traefik routes http:\/\/\S+\/\.well-known\/acme-challenge\/ to the certroute responder$/m);
  t.regex(r.stdout, /^ok +responder: /m);
  t.regex(r.stdout, new RegExp(`^ok +TLS: .* serves a certificate for ${readyHost.replace(/\./g, '\\.')}, expiring in 89d$`, 'm'));
});

test.serial('check: a host without a certificate fails at TLS, and a hijacked challenge path fails at route', async (t) => {
  const none = await certroute(['check', noCertHost, ...checkFlags]);
  t.is(none.code, 1);
  t.regex(none.stdout, /^ok +DNS: /m);
  t.regex(none.stdout, /^ok +route: /m);
  t.regex(none.stdout, /^ok +responder: /m);
  t.regex(none.stdout, /^FAIL +TLS: .*serves Traefik's default certificate: Traefik has no certificate for /m);

  const hijacked = await certroute(['check', pendingHost, ...checkFlags]);
  t.is(hijacked.code, 1);
  // What answered is described, never quoted: a 200 from the backend that is not the key authorization.
  t.regex(hijacked.stdout, /^FAIL +route: another service answers http:\/\/\S+\/\.well-known\/acme-challenge\/: 200 with a body that is not the key authorization/m);
  t.regex(hijacked.stdout, /^skip +responder: not reached$/m);
});

test.serial('exit code 2 for usage errors, 3 when the cluster cannot be reached', async (t) => {
  for (const args of [['status', '--bogus'], ['status', '-n', 'a', '-A'], ['renew'], ['renew', '--all', 'x'], ['check'], ['check', 'a b'], ['controller', '--wiring=nope'], ['no-such-command'], []]) {
    const r = await certroute(args);
    t.is(r.code, 2, `certroute ${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr + r.stdout, args.length ? /\S/ : /Usage: certroute <command>/, `certroute ${args.join(' ')} says why`);
    if (args.length) t.not(r.stderr, '', `certroute ${args.join(' ')} says why on stderr`);
  }
  // A kubeconfig whose server is a closed port.
  const [closed] = (await freePorts(1)) as [number];
  const kubeconfig = join(tmp, 'unreachable.kubeconfig');
  writeFileSync(kubeconfig, readFileSync(env.kubeconfig, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${closed}`));
  for (const args of [['status', '-n', readyNs], ['status', '-A'], ['renew', '--all', '-n', readyNs], ['renew', 'app-tls', '-n', readyNs]]) {
    const r = await certroute(args, kubeconfig);
    t.is(r.code, 3, `certroute ${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /cannot reach the Kubernetes API/);
  }
});

test.serial('--help on every command prints its usage and exits 0', async (t) => {
  for (const args of [['--help'], ['-h'], ['help'], ['controller', '--help'], ['status', '--help'], ['renew', '--help'], ['check', '--help'], ['status', '-h']]) {
    const r = await certroute(args);
    t.is(r.code, 0, `certroute ${args.join(' ')}`);
    t.regex(r.stdout, /Usage: certroute/, `certroute ${args.join(' ')}`);
    t.is(r.stderr, '');
  }
});
