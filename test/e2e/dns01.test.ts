/**
 * DNS-01 on the real stack: certroute writes `_acme-challenge` TXT records into BIND (RFC 2136
 * with TSIG, or through the Cloudflare API stand-in, which applies them to BIND), Pebble reads
 * them through BIND, and Traefik serves the wildcard certificate. What is asserted is what a user
 * sees: the Certificate, the certificate Traefik serves, the Challenges, and the zone.
 */
import test from 'ava';
import { kubectl, readEnv } from '../env/stack.ts';
import { injectFault, standInRequests } from '../helpers/cloudflare.ts';
import {
  applyYaml, cleanUpFile, CONTROLLER_NAMESPACE, freshNamespace, kubectlJson, pebbleClusterIssuer, startController, waitFor, waitForCertificateRevision,
} from '../helpers/controller.ts';
import { deleteIssuer } from '../helpers/issuance.ts';
import {
  addAddress, addRecord, catchUp, challengeRecords, dns01Flags, dns01Issuer, dns01Solver, txtAt, withSolvers, zoneRecords,
} from '../helpers/dns01.ts';
import { servedCertificate } from '../helpers/tls.ts';

const env = readEnv();

test.before(async () => {
  await startController([...dns01Flags(env), '--min-backoff=1s', '--max-backoff=4s']);
});

test.after.always(async () => {
  await cleanUpFile();
  for (const name of issuers) {
    await deleteIssuer(name);
    await kubectl(['-n', CONTROLLER_NAMESPACE, 'delete', 'secret', `${name}-dns`, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  }
});

/** The ClusterIssuers this file makes, one per namespace, deleted with their Secrets at the end. */
const issuers: string[] = [];
function issuerFor(ns: string): string {
  issuers.push(`dns01-${ns}`);
  return `dns01-${ns}`;
}

interface ChallengeView {
  spec: { dnsName: string; type: string; key: string };
  status?: { reason?: string; state?: string; presented?: boolean };
}

/** A Certificate for `names`, and an IngressRoute on websecure that serves its Secret for `hosts`. */
async function certificateServedFor(ns: string, issuer: string, names: string[], hosts: string[]): Promise<void> {
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata: { name: site, namespace: ${ns} }
spec:
  secretName: site-tls
  dnsNames: [${names.map((n) => `'${n}'`).join(', ')}]
  issuerRef: { name: ${issuer}, kind: ClusterIssuer }
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: { name: site, namespace: ${ns} }
spec:
  entryPoints: [websecure]
  routes:
    - match: ${hosts.map((h) => `Host(\`${h}\`)`).join(' || ')}
      kind: Rule
      services: [{ name: noop@internal, kind: TraefikService }]
  tls: { secretName: site-tls }
`);
}

/** The SANs Traefik serves for `host`, once they include `expected`. */
async function servedSans(host: string, expected: string): Promise<string[]> {
  return waitFor(`Traefik serving ${expected} for ${host}`, async () => {
    const served = await servedCertificate(env.traefik.websecure, host).catch(() => undefined);
    const sans = served?.subjectAltName.split(', ').map((s) => s.replace(/^DNS:/, '')) ?? [];
    return sans.includes(expected) ? sans.sort() : undefined;
  });
}

/** How each Challenge was presented, from its Events, which outlive the Challenges of a finished Order. */
async function presented(ns: string): Promise<string[]> {
  const events = await kubectlJson<{ items: Array<{ reason: string; message: string }> }>(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.kind=Challenge']);
  return events.items.filter((e) => e.reason === 'Presented').map((e) => e.message).sort();
}

async function noChallengeRecordLeft(zone: string, base: string): Promise<string[]> {
  return waitFor(`no _acme-challenge record for ${base} left in ${zone}`, async () => {
    const left = (await challengeRecords(env, zone)).filter((r) => r.includes(base));
    return left.length === 0 ? left : undefined;
  }, 30_000);
}

for (const provider of ['rfc2136', 'cloudflare'] as const) {
  const zone = provider === 'rfc2136' ? env.bind.zone : env.cloudflare.zone;
  test(`${provider}: *.wild and wild are issued on one certificate, Traefik serves it for a.wild and wild, and the zone keeps no challenge record`, async (t) => {
    const ns = await freshNamespace(`dns01-${provider}`);
    const issuer = issuerFor(ns);
    await applyYaml(await dns01Issuer(issuer, env, provider));
    const base = `wild-${ns}.${zone}`;
    await certificateServedFor(ns, issuer, [`*.${base}`, base], [`a.${base}`, base]);
    await waitForCertificateRevision(ns, 'site', 1, 120_000);
    t.deepEqual(await presented(ns), [
      `Presented challenge using DNS-01 challenge mechanism for ${base}`,
      `Presented challenge using DNS-01 challenge mechanism for ${base}`,
    ], 'two authorizations, *.wild and wild, both through DNS-01');
    for (const host of [`a.${base}`, base]) t.deepEqual(await servedSans(host, `*.${base}`), [`*.${base}`, base].sort());
    t.deepEqual(await noChallengeRecordLeft(zone, base), []);
  });
}

test('cloudflare: a wrong API token leaves the Challenge with reason "Cloudflare API: 403 …" and writes nothing to the zone', async (t) => {
  const ns = await freshNamespace('dns01-cf-denied');
  const issuer = issuerFor(ns);
  await applyYaml(await dns01Issuer(issuer, env, 'cloudflare', 'not-the-token'));
  const base = `denied-${ns}.${env.cloudflare.zone}`;
  await certificateServedFor(ns, issuer, [`*.${base}`], [`a.${base}`]);
  const challenge = await waitFor('a Challenge whose reason names the 403', async () => {
    const list = await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges']);
    return list.items.find((c) => /Cloudflare API: 403/.test(c.status?.reason ?? ''));
  }, 60_000);
  t.regex(challenge.status?.reason ?? '', /Cloudflare API: 403 Invalid access token \(9109\)/);
  t.not(challenge.status?.presented, true);
  t.deepEqual((await challengeRecords(env, env.cloudflare.zone)).filter((r) => r.includes(base)), []);
});

test('cloudflare: a storm of 429s from the API delays the certificate but does not fail it', async (t) => {
  const ns = await freshNamespace('dns01-cf-storm');
  const issuer = issuerFor(ns);
  await applyYaml(await dns01Issuer(issuer, env, 'cloudflare'));
  const before = (await standInRequests(env.cloudflare.api)).length;
  await injectFault(env.cloudflare.api, { status: 429, count: 8, retryAfter: 1 });
  const base = `storm-${ns}.${env.cloudflare.zone}`;
  await certificateServedFor(ns, issuer, [`*.${base}`], [`a.${base}`]);
  await waitForCertificateRevision(ns, 'site', 1, 120_000);
  const statuses = (await standInRequests(env.cloudflare.api)).slice(before).map((r) => r.status);
  t.is(statuses.filter((s) => s === 429).length, 8, 'the storm was answered');
  t.deepEqual(await noChallengeRecordLeft(env.cloudflare.zone, base), []);
});

test('one ClusterIssuer, two solvers chosen by selectors: HTTP-01 for web.<zone> by dnsNames, DNS-01 for *.<zone> by dnsZones, on one certificate', async (t) => {
  const ns = await freshNamespace('dns01-mixed');
  const issuer = issuerFor(ns);
  const base = `mixed-${ns}.${env.bind.zone}`;
  const dns = await dns01Solver(issuer, env, 'rfc2136', '        ');
  await applyYaml(withSolvers(pebbleClusterIssuer(issuer, env), [
    '      - selector:',
    `          dnsNames: ['web.${base}']`,
    '        http01:',
    '          ingress:',
    '            ingressClassName: traefik',
    '      - selector:',
    `          dnsZones: ['${base}']`,
    dns,
  ].join('\n')));
  await addAddress(env, `web.${base}`);
  await certificateServedFor(ns, issuer, [`web.${base}`, `*.${base}`], [`web.${base}`, `a.${base}`]);
  await waitForCertificateRevision(ns, 'site', 1, 120_000);
  t.deepEqual(await presented(ns), [
    `Presented challenge using DNS-01 challenge mechanism for ${base}`,
    `Presented challenge using HTTP-01 challenge mechanism for web.${base}`,
  ]);
  t.deepEqual(await servedSans(`a.${base}`, `*.${base}`), [`*.${base}`, `web.${base}`].sort());
});

/** The reasons of the Events on this namespace's Challenges (they outlive the Challenges). */
async function challengeEventReasons(ns: string): Promise<string[]> {
  const events = await kubectlJson<{ items: Array<{ reason: string }> }>(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.kind=Challenge']);
  return events.items.map((e) => e.reason);
}

test('propagation: while the second authoritative nameserver lags, the challenge is held back; Pebble is told to validate only once every nameserver has the record, and validates at the first try', async (t) => {
  const ns = await freshNamespace('dns01-lag');
  const issuer = issuerFor(ns);
  await applyYaml(await dns01Issuer(issuer, env, 'rfc2136-lagging'));
  const base = `lag-${ns}.${env.bind.laggingZone}`;
  const fqdn = `_acme-challenge.${base}`;
  // The late one is the stack's BIND: the secondary, and the nameserver Pebble asks.
  const late = env.bind.address;
  await certificateServedFor(ns, issuer, [`*.${base}`], [`a.${base}`]);
  const held = await waitFor('a presented Challenge held back by the late nameserver', async () => {
    const list = await kubectlJson<{ items: ChallengeView[] }>(['-n', ns, 'get', 'challenges']);
    return list.items.find((c) => c.status?.presented && (c.status.reason ?? '').includes(`nameserver ${late} does not return the challenge value`));
  }, 60_000);
  t.deepEqual(await txtAt(env.bind.laggingPrimary, fqdn), [held.spec.key], 'the primary has the record');
  t.deepEqual(await txtAt(late, fqdn), [], 'the second nameserver does not have it yet');
  t.is(held.status?.state, 'pending', 'certroute has not accepted the challenge');

  await catchUp(env);
  const certificate = await waitForCertificateRevision(ns, 'site', 1, 120_000);
  t.is(certificate.status?.failedIssuanceAttempts, undefined);
  const reasons = await challengeEventReasons(ns);
  t.true(reasons.includes('DomainVerified'), `Pebble validated: ${reasons.join(', ')}`);
  t.false(reasons.includes('Failed'), 'and never saw a missing record');
  const orders = await kubectlJson<{ items: Array<{ status?: { state?: string } }> }>(['-n', ns, 'get', 'orders']);
  t.deepEqual(orders.items.map((o) => o.status?.state), ['valid'], 'one Order, valid at the first try');
  t.deepEqual(await servedSans(`a.${base}`, `*.${base}`), [`*.${base}`]);

  // The deletion lags behind on the secondary as well, until it catches up.
  await waitFor('the record gone from the primary', async () => (await txtAt(env.bind.laggingPrimary, fqdn)).length === 0, 30_000);
  await catchUp(env);
  t.deepEqual((await challengeRecords(env, env.bind.laggingZone, late)).filter((r) => r.includes(base)), []);
  t.deepEqual((await challengeRecords(env, env.bind.laggingZone, env.bind.laggingPrimary)).filter((r) => r.includes(base)), []);
});

test('cnameStrategy: Follow writes the record where the _acme-challenge CNAME leads, in another zone, and removes it there afterwards', async (t) => {
  const ns = await freshNamespace('dns01-cname');
  const issuer = issuerFor(ns);
  const yaml = await dns01Issuer(issuer, env, 'rfc2136');
  t.true(yaml.includes('      - dns01:\n'), 'the solver entry to add cnameStrategy to');
  await applyYaml(yaml.replace('      - dns01:\n', '      - dns01:\n          cnameStrategy: Follow\n'));
  const base = `cname-${ns}.${env.bind.zone}`;
  // The delegated name lives in another zone of the same server, which the key may update too.
  const target = `_acme-challenge.delegated-${ns}.${env.cloudflare.zone}`;
  await addRecord(env, `_acme-challenge.${base}`, 'CNAME', `${target}.`);
  await certificateServedFor(ns, issuer, [`*.${base}`, base], [`a.${base}`, base]);
  // BIND ignores a TXT record added at a name that holds a CNAME (RFC 2136 §3.4.2.2): Pebble can
  // only have found the values at the target.
  await waitForCertificateRevision(ns, 'site', 1, 120_000);
  t.deepEqual(await servedSans(`a.${base}`, `*.${base}`), [`*.${base}`, base].sort());
  const source = (await zoneRecords(env, env.bind.zone)).filter((r) => r.startsWith(`_acme-challenge.${base}.`));
  t.is(source.length, 1, `the CNAME is all the source name holds: ${source.join(' | ')}`);
  t.regex(source[0] ?? '', new RegExp(`\\sCNAME\\s${target.replaceAll('.', '\\.')}\\.$`));
  t.deepEqual(await noChallengeRecordLeft(env.cloudflare.zone, `delegated-${ns}`), [], 'both values are gone from the target');
});

test('an IngressRoute matched by HostRegexp, naming *.x and x in spec.tls.domains, gets one certificate for both through DNS-01, which Traefik serves', async (t) => {
  const ns = await freshNamespace('dns01-route');
  const issuer = issuerFor(ns);
  await applyYaml(await dns01Issuer(issuer, env, 'rfc2136'));
  const base = `route-${ns}.${env.bind.zone}`;
  await applyYaml(`apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: tenants
  namespace: ${ns}
  annotations: { cert-manager.io/cluster-issuer: ${issuer} }
spec:
  entryPoints: [websecure]
  routes:
    - match: HostRegexp(\`^[a-z0-9-]+\\.${base.replaceAll('.', '\\.')}$\`)
      kind: Rule
      services: [{ name: noop@internal, kind: TraefikService }]
  tls:
    secretName: tenants-tls
    domains:
      - main: ${base}
        sans: ['*.${base}']
`);
  const certificate = await waitForCertificateRevision(ns, 'tenants-tls', 1, 120_000);
  t.deepEqual(certificate.spec.dnsNames, [base, `*.${base}`]);
  t.deepEqual(await servedSans(`a.${base}`, `*.${base}`), [`*.${base}`, base].sort());
  const events = await kubectlJson<{ items: Array<{ type: string; reason: string }> }>(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.kind=IngressRoute']);
  t.deepEqual(events.items.filter((e) => e.type === 'Warning').map((e) => e.reason), [], 'with spec.tls.domains the HostRegexp needs no warning');
});
