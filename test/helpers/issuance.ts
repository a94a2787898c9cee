/**
 * Issuers and Certificates as the fault and abuse tests make them, and what each of those tests
 * asserts, in one place: issuance completed, Pebble holds no order the Orders in the cluster do
 * not account for, and no version of a Secret was ever worse than the one before it (a
 * certificate that does not match its key, has expired, names other hosts, expires earlier, or
 * is not chained to Pebble). Secrets are watched, not polled, so a bad version that lived for a
 * millisecond is still seen.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Watch } from '@kubernetes/client-node';
import type { ExecutionContext } from 'ava';
import { stringify } from 'yaml';
import { kubectl, loadKubeConfig, readEnv, type StackEnv } from '../env/stack.ts';
import {
  applyYaml, CONTROLLER_NAMESPACE, kubectlJson, pebbleClusterIssuer, secretPem, waitFor, waitForCertificateRevision, type PebbleIssuerOptions, type SecretView,
} from './controller.ts';

/**
 * A quicker Lease hand-over than the defaults (15s/10s/2s), for tests that kill a leader. The renew
 * deadline still outlasts a slow answer: on a machine shared by many test runs the API server can
 * take seconds to answer a Lease update, and a 2 s deadline then makes a healthy leader step down
 * over and over, resyncing everything each time, until the test runs out of time.
 */
export const quickHandover = ['--lease-duration=8s', '--renew-deadline=5s', '--retry-period=1s'];

/** Flags every fault test's controller runs with: a quick Lease hand-over, a short failure back-off. */
export const controllerFlags = [...quickHandover, '--min-backoff=2s', '--max-backoff=8s'];

/** A fresh ACME account per test: a ClusterIssuer name Pebble has never seen. */
export function freshIssuerName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`.slice(0, 60);
}

/** A ClusterIssuer whose ACME server is `directory` (Pebble itself, or a proxy in front of it). */
export async function applyIssuer(name: string, directory?: string, opts: PebbleIssuerOptions = {}, env: StackEnv = readEnv()): Promise<void> {
  await applyYaml(pebbleClusterIssuer(name, directory ? { ...env, pebble: { ...env.pebble, directory } } : env, opts));
}

export async function deleteIssuer(name: string): Promise<void> {
  await kubectl(['delete', 'clusterissuer', name, '--ignore-not-found', '--wait=false']).catch(() => undefined);
  await kubectl(['-n', CONTROLLER_NAMESPACE, 'delete', 'secret', `${name}-account`, '--ignore-not-found', '--wait=false']).catch(() => undefined);
}

const created: string[] = [];

/** A Ready ClusterIssuer with a fresh name (a fresh ACME account), deleted by `deleteIssuers`. */
export async function newIssuer(prefix: string, directory?: string, opts: PebbleIssuerOptions = {}): Promise<string> {
  const name = freshIssuerName(prefix);
  created.push(name);
  await applyIssuer(name, directory, opts);
  await waitIssuerReady(name);
  return name;
}

/** Deletes every ClusterIssuer `newIssuer` made in this file, with its account Secret. */
export async function deleteIssuers(): Promise<void> {
  for (const name of created.splice(0)) await deleteIssuer(name);
}

/** One Certificate per name, each for `<name>.<ns>.test`. */
export const createCertificates = (ns: string, issuer: string, names: string[]): Promise<void> =>
  applyYaml(names.map((n) => certificateYaml(ns, n, [`${n}.${ns}.test`], issuer)).join('---\n'));

/**
 * Issuance completed for each name (made by `createCertificates`), with valid Secrets, and
 * `orders` orders at Pebble (one per Certificate unless said otherwise), each one an Order records.
 */
export async function assertIssued(t: ExecutionContext, ns: string, issuer: string, names: string[], orders = names.length): Promise<void> {
  for (const name of names) {
    await waitForCertificateRevision(ns, name, 1, 120_000);
    const secret = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', `${name}-tls`]);
    t.deepEqual(secretProblems(secret, [`${name}.${ns}.test`]), [], `Secret ${name}-tls is valid`);
  }
  const { atPebble, inCluster } = await orderLedger(issuer, [ns]);
  t.is(atPebble.length, orders, `one order per Certificate at Pebble, found ${atPebble.length}`);
  t.deepEqual(atPebble, inCluster, 'every order Pebble holds is the one an Order records');
}

/** The one Certificate builder: `<name>-tls`, the names, a ClusterIssuer, and any more `spec` fields. */
export function certificateYaml(ns: string, name: string, dnsNames: string[], issuer: string, spec: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: { name, namespace: ns },
    spec: { secretName: `${name}-tls`, dnsNames, issuerRef: { name: issuer, kind: 'ClusterIssuer' }, ...spec },
  });
}

/** What `cmctl renew` does: Issuing=True with reason ManuallyTriggered. */
export async function triggerRenewal(ns: string, name: string): Promise<void> {
  const cert = await kubectlJson<{ status?: { conditions?: unknown[] } }>(['-n', ns, 'get', 'certificate', name]);
  const conditions = [
    ...(cert.status?.conditions ?? []).filter((c) => (c as { type: string }).type !== 'Issuing'),
    { type: 'Issuing', status: 'True', reason: 'ManuallyTriggered', message: 'Certificate re-issuance manually triggered', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
  ];
  await kubectl(['-n', ns, 'patch', 'certificate', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions } })]);
}

export interface IssuerView {
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>; acme?: { uri?: string; lastRegisteredEmail?: string } };
}

/** The one way tests wait for a ClusterIssuer to be Ready (or, with `want: 'False'`, to be refused). */
export async function waitIssuerReady(name: string, opts: { want?: 'True' | 'False'; timeoutMs?: number } = {}): Promise<IssuerView> {
  const want = opts.want ?? 'True';
  return waitFor(`ClusterIssuer ${name} Ready=${want}`, async () => {
    const issuer = await kubectlJson<IssuerView>(['get', 'clusterissuer', name]);
    return issuer.status?.conditions?.find((c) => c.type === 'Ready')?.status === want ? issuer : undefined;
  }, opts.timeoutMs ?? 60_000);
}

interface OrderView {
  metadata: { name: string };
  status?: { url?: string; state?: string; authorizations?: Array<{ url: string }> };
}

export async function ordersIn(ns: string): Promise<OrderView[]> {
  return (await kubectlJson<{ items: OrderView[] }>(['-n', ns, 'get', 'orders'])).items;
}

const pathOf = (url: string) => new URL(url).pathname;

/**
 * The paths (origin aside: a proxy and Pebble name the same order differently) of every order
 * Pebble holds for the issuer's account, and of every order the Orders in `namespaces` record.
 */
export async function orderLedger(issuer: string, namespaces: string[], env: StackEnv = readEnv()): Promise<{ atPebble: string[]; inCluster: string[] }> {
  const { api, account } = await pebbleAccount(issuer, env);
  const atPebble: string[] = [];
  // RFC 8555 §7.1.2.1: the account's orders list, paged by Link rel="next". Pebble names URLs
  // after the Host it was asked on, so every URL is read back through Pebble's own origin.
  let next: string | undefined = account.orders;
  for (let page = 0; next && page < 100; page++) {
    const res = await api.apiRequest(direct(next, env), null, [200]);
    atPebble.push(...(res.data.orders ?? []).map(pathOf));
    next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.link ?? '')?.[1];
  }
  const inCluster: string[] = [];
  for (const ns of namespaces) {
    for (const o of await ordersIn(ns)) if (o.status?.url) inCluster.push(pathOf(o.status.url));
  }
  return { atPebble: atPebble.sort(), inCluster: inCluster.sort() };
}

interface PebbleApi {
  apiRequest(url: string, payload: null | { status: 'deactivated' }, codes: number[]): Promise<{ data: { status?: string; orders?: string[] }; headers: Record<string, string | undefined> }>;
}

/** The path of `url` on Pebble's own origin. */
const direct = (url: string, env: StackEnv) => new URL(new URL(url).pathname, env.pebble.directory).toString();

/** Pebble's API as the issuer's account, talking to Pebble directly (no proxy). */
async function pebbleAccount(issuer: string, env: StackEnv): Promise<{ api: PebbleApi; account: { orders?: string } }> {
  const { createClient } = await import('../../src/acme/client.ts');
  const secret = await kubectlJson<SecretView>(['-n', CONTROLLER_NAMESPACE, 'get', 'secret', `${issuer}-account`]);
  const client = createClient({ directoryUrl: env.pebble.directory, accountKeyPem: secretPem(secret, 'tls.key'), tls: { caBundlePem: readFileSync(env.pebble.tlsCa, 'utf8') } });
  const account = (await client.createAccount({ onlyReturnExisting: true })) as { orders?: string };
  return { api: (client as unknown as { api: PebbleApi }).api, account };
}

export const pems = (text: string) => text.split(/(?<=-----END CERTIFICATE-----)\s*/).filter((p) => p.includes('BEGIN CERTIFICATE'));

/** Why this Secret must not serve `dnsNames`, or an empty list. */
export function secretProblems(secret: SecretView, dnsNames: string[], now = new Date()): string[] {
  const problems: string[] = [];
  let chain: X509Certificate[];
  try {
    chain = pems(secretPem(secret, 'tls.crt')).map((p) => new X509Certificate(p));
  } catch (err) {
    return [`tls.crt does not parse: ${(err as Error).message}`];
  }
  const leaf = chain[0];
  if (!leaf) return ['tls.crt holds no certificate'];
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(secretPem(secret, 'tls.key')))) problems.push(`certificate ${leaf.serialNumber} does not match tls.key`);
  } catch (err) {
    problems.push(`tls.key does not parse: ${(err as Error).message}`);
  }
  if (Date.parse(leaf.validTo) <= now.getTime()) problems.push(`certificate ${leaf.serialNumber} expired at ${leaf.validTo}`);
  const sans = (leaf.subjectAltName ?? '').split(', ').map((s) => s.replace(/^DNS:/, '')).sort();
  if (JSON.stringify(sans) !== JSON.stringify([...dnsNames].sort())) problems.push(`certificate ${leaf.serialNumber} names ${sans.join(',')}, not ${dnsNames.join(',')}`);
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) problems.push(`certificate ${i + 1} of the chain is not issued by the next`);
  }
  if (!/Pebble/i.test(chain.at(-1)!.issuer)) problems.push(`the chain ends at ${chain.at(-1)!.issuer}, not at Pebble`);
  return problems;
}

export const leafOf = (s: SecretView) => new X509Certificate(pems(secretPem(s, 'tls.crt'))[0]!);

/**
 * Every version of one object from now on, as a watch delivers them (a watch misses no version,
 * where polling would). `collection` is the API path of its kind in its namespace, e.g.
 * `/api/v1/namespaces/web/secrets`.
 */
export class History<T extends { metadata: { resourceVersion: string } }> {
  readonly versions: Array<{ type: string; object: T; at: number }> = [];
  private abort: AbortController | undefined;
  private stopped = false;
  private readonly collection: string;
  private readonly name: string;

  protected constructor(collection: string, name: string) {
    this.collection = collection;
    this.name = name;
  }

  static async watch<T extends { metadata: { resourceVersion: string } }>(collection: string, name: string): Promise<History<T>> {
    const h = new History<T>(collection, name);
    await h.follow('');
    return h;
  }

  protected async follow(resourceVersion: string): Promise<void> {
    if (this.stopped) return;
    const watch = new Watch(loadKubeConfig());
    let rv = resourceVersion;
    this.abort = await watch.watch(this.collection, { fieldSelector: `metadata.name=${this.name}`, ...(rv ? { resourceVersion: rv } : {}) }, (type, obj: T) => {
      if (type === 'ERROR' && (obj as unknown as { code?: number }).code === 410) rv = '';
      if (type === 'ERROR' || type === 'BOOKMARK') return;
      rv = obj.metadata.resourceVersion;
      this.versions.push({ type, object: obj, at: Date.now() });
    }, () => {
      // The watch ends after 30 s without events, or when the apiserver restarts: pick it up again.
      if (!this.stopped) setTimeout(() => void this.follow(rv).catch(() => undefined), 200).unref();
    });
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  /** Resolves once the watch has delivered `resourceVersion` (or a later version). */
  async reached(resourceVersion: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(`the watch on ${this.collection}/${this.name} to deliver version ${resourceVersion}`, async () =>
      this.versions.some((v) => BigInt(v.object.metadata.resourceVersion) >= BigInt(resourceVersion)), timeoutMs, 20);
  }
}

/** Every version of one Secret from now on, and what a reader of each could have met. */
export class SecretHistory extends History<SecretView> {
  static async start(ns: string, name: string): Promise<SecretHistory> {
    const h = new SecretHistory(`/api/v1/namespaces/${ns}/secrets`, name);
    await h.follow('');
    return h;
  }

  /** Each problem a reader of the Secret could have met, across versions. */
  problems(dnsNames: string[]): string[] {
    const out: string[] = [];
    let prev: X509Certificate | undefined;
    for (const { type, object: secret, at } of this.versions) {
      if (type === 'DELETED') {
        out.push(`the Secret was deleted at ${new Date(at).toISOString()}`);
        continue;
      }
      for (const p of secretProblems(secret, dnsNames, new Date(at))) out.push(`version ${secret.metadata.resourceVersion}: ${p}`);
      let leaf: X509Certificate;
      try {
        leaf = leafOf(secret);
      } catch {
        continue;
      }
      if (prev && leaf.serialNumber !== prev.serialNumber && Date.parse(leaf.validTo) < Date.parse(prev.validTo)) {
        out.push(`version ${secret.metadata.resourceVersion} replaced certificate ${prev.serialNumber} (until ${prev.validTo}) with ${leaf.serialNumber}, which expires earlier (${leaf.validTo})`);
      }
      prev = leaf;
    }
    return out;
  }
}

/**
 * The status Pebble itself reports for an order, authorization or challenge URL (any origin: the
 * path is what names it), read with the issuer's account key by POST-as-GET.
 */
export async function pebbleStatus(issuer: string, url: string, env: StackEnv = readEnv()): Promise<string | undefined> {
  const { api } = await pebbleAccount(issuer, env);
  return (await api.apiRequest(direct(url, env), null, [200])).data.status;
}

/**
 * Deactivates, at Pebble, every authorization the Orders in `ns` hold, so that the next order for
 * the same names must be validated again. Pebble reuses a valid authorization of the same account
 * one time in a hundred even with PEBBLE_AUTHZREUSE=0 (it reuses when `rand.Intn(100)` is not
 * above the percentage, and 0 is not above 0), and a renewal that reuses one presents no
 * challenge: a test that stops the controller at the challenge step would wait for ever.
 */
export async function deactivateAuthorizations(issuer: string, ns: string, env: StackEnv = readEnv()): Promise<number> {
  const { api } = await pebbleAccount(issuer, env);
  const urls = (await ordersIn(ns)).flatMap((o) => (o.status?.authorizations ?? []).map((a) => a.url));
  for (const url of urls) {
    const { data } = await api.apiRequest(direct(url, env), { status: 'deactivated' }, [200]);
    if (data.status !== 'deactivated') throw new Error(`Pebble kept authorization ${url} ${data.status ?? 'without a status'} after deactivation`);
  }
  return urls.length;
}

/** `promise`, or a rejection naming `what` after `ms`; the timer never outlives the promise. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
