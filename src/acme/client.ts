/**
 * A thin, resumable wrapper over acme-client's step methods.
 *
 * acme-client 5.4 sends every request through one global axios instance, so
 * per-issuer TLS settings (caBundle, skipTLSVerify) are chosen per request
 * origin in a request interceptor, and the status/Retry-After of the last
 * response is captured per call through AsyncLocalStorage. That lets errors
 * be classified: 4xx problems are permanent, 429/5xx and network errors are
 * transient and go back to the work queue, which honours Retry-After.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import https from 'node:https';
import { createRequire } from 'node:module';
import acme from 'acme-client';
import { RetryAfterError } from '../base/errors.ts';
import { assertFence } from '../kube/fence.ts';

export type AcmeOrder = acme.Order;
export type AcmeAuthorization = acme.Authorization;
export type AcmeChallenge = AcmeAuthorization['challenges'][number];

/**
 * The challenge acme-client's key-authorization and accept calls take. Its types know only
 * `http-01` and `dns-01`; the calls themselves read `type`, `url` and `token` for any type.
 */
export function acmeChallengeOf(type: string, url: string, token: string): AcmeChallenge {
  return { type, url, token, status: 'pending' } as AcmeChallenge;
}

export interface TlsSettings {
  caBundlePem?: string;
  skipTLSVerify?: boolean;
}

export interface RequestObserver {
  (info: { scheme: string; host: string; action: string; method: string; status: string; seconds: number }): void;
}

/**
 * A problem document the CA answered with a 4xx: retrying will not help.
 * Shaped like the Kubernetes client's ApiError on purpose, and kept apart:
 * each names the status and reason of its own protocol.
 */
export class AcmeProblemError extends Error {
  readonly status: number;
  readonly type: string;
  constructor(message: string, status: number, type: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AcmeProblemError';
    this.status = status;
    this.type = type;
  }
}

/** The largest ACME response read (a certificate chain is a few kB): larger ones are cut off. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** The directory URLs of the clients made here, so their answers can be checked. */
const directoryUrls = new Set<string>();

const DIRECTORY_RESOURCES = ['newNonce', 'newAccount', 'newOrder', 'newAuthz', 'revokeCert', 'keyChange', 'renewalInfo'];

/** Why a directory document is refused: it must be an object whose resource URLs are all https. */
export function directoryProblem(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'the ACME directory is not a JSON object; check spec.acme.server';
  for (const name of DIRECTORY_RESOURCES) {
    const value = (data as Record<string, unknown>)[name];
    if (value === undefined) continue;
    let url: URL | undefined;
    try {
      url = typeof value === 'string' ? new URL(value) : undefined;
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'https:') return `the ACME directory's ${name} is not an https URL; certroute talks to an ACME server over https only`;
  }
  return undefined;
}

interface CallContext {
  /** Set when the answer was refused on sight (a directory with a non-https URL). */
  refused?: string;
  status?: number;
  type?: string;
  retryAfter?: string;
  /** Set when the request was not sent because the CA's Retry-After for its URL had not passed. */
  heldUntil?: number;
  /** Why the request got no answer at all (refused, reset, TLS, timeout). */
  networkError?: string;
}

/**
 * axios's own HTTP adapter, from the copy acme-client uses. acme-client, with its retries off,
 * answers a request that got no response with a TypeError ("reading 'config'") and loses the
 * cause; wrapping the adapter keeps it (ECONNREFUSED, a certificate the caBundle does not
 * trust), so an Issuer's status says what is wrong.
 */
const httpAdapter = (createRequire(import.meta.resolve('acme-client')) as NodeJS.Require)('axios').getAdapter('http') as (config: unknown) => Promise<unknown>;

const calls = new AsyncLocalStorage<CallContext>();
const agents = new Map<string, https.Agent>();
const tlsByOrigin = new Map<string, TlsSettings>();
const observers: RequestObserver[] = [];
/**
 * Until when (epoch ms) the CA asked, with a 429 or 503 Retry-After, not to be sent requests for
 * a URL (origin and path). Kept here, not in the work queue, because the wait binds every key:
 * a rate-limited new-order URL is the same URL for every Order, and an informer event must not
 * cut a wait short either.
 */
const heldUntil = new Map<string, number>();
/**
 * Unused nonces by CA origin, from the Replay-Nonce header every ACME response carries (RFC 8555
 * §7.2). acme-client 5.4 sends a HEAD to newNonce before every signed request; taking a nonce
 * from here instead halves the requests per step (a round trip each, to a distant CA), and
 * against Pebble, whose HEAD answer Node cannot keep alive, saves a TLS handshake per step too.
 * A nonce gone stale is answered with badNonce, which acme-client retries with a fresh one.
 */
const nonces = new Map<string, string[]>();
const NONCE_POOL_MAX = 64;
/** CA origins with a nonce pool; a tenant can point Issuers at any number of them. */
const MAX_ORIGINS = 256;
const BAD_NONCE = 'urn:ietf:params:acme:error:badNonce';
let installed = false;

const urlKey = (url: URL) => `${url.origin}${url.pathname}`;

function agentFor(origin: string): https.Agent | undefined {
  const tls = tlsByOrigin.get(origin);
  if (!tls) return undefined;
  const key = `${origin}|${tls.skipTLSVerify ? 1 : 0}|${tls.caBundlePem ?? ''}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = new https.Agent({ keepAlive: true, ca: tls.caBundlePem, rejectUnauthorized: !tls.skipTLSVerify });
    agents.set(key, agent);
  }
  return agent;
}

function install(): void {
  if (installed) return;
  installed = true;
  const settings = (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings;
  // The work queue backs off and honours Retry-After; acme-client's own
  // sleeping retry would block a reconcile for seconds.
  settings.retryMaxAttempts = 0;
  acme.axios.defaults.timeout = 30_000;
  // A CA is a server a tenant may choose (a namespaced Issuer): nothing it answers may lead the
  // controller elsewhere (a redirect to a loopback or cluster address) or fill its memory.
  acme.axios.defaults.maxRedirects = 0;
  acme.axios.defaults.maxContentLength = MAX_RESPONSE_BYTES;
  acme.axios.interceptors.request.use((config) => {
    // A leader that lost its Lease while this step was on its way sends nothing more.
    assertFence();
    const url = new URL(config.url ?? '', config.baseURL);
    const until = heldUntil.get(urlKey(url));
    if (until !== undefined && until > Date.now()) {
      const ctx = calls.getStore();
      if (ctx) ctx.heldUntil = until;
      throw new Error(`not sent: the CA asked not to be sent requests for ${url.pathname} before ${new Date(until).toISOString()}`);
    }
    if (until !== undefined) heldUntil.delete(urlKey(url));
    const agent = agentFor(url.origin);
    if (agent) config.httpsAgent = agent;
    config.adapter = async (c) => {
      try {
        return (await httpAdapter(c)) as never;
      } catch (err) {
        const e = err as { response?: unknown; code?: string; message?: string };
        const ctx = calls.getStore();
        if (ctx && !e.response) ctx.networkError = `no answer from ${url.origin}: ${[e.code, e.message].filter(Boolean).join(' ')}`;
        throw err;
      }
    };
    (config as unknown as { startedAt: number }).startedAt = performance.now();
    return config;
  });
  acme.axios.interceptors.response.use((res) => {
    const ctx = calls.getStore();
    if (directoryUrls.has(res.config.url ?? '')) {
      const problem = directoryProblem(res.data);
      if (problem !== undefined) {
        if (ctx) ctx.refused = problem;
        throw new Error(problem);
      }
    }
    const data = res.data as { type?: unknown } | undefined;
    if (ctx) {
      ctx.status = res.status;
      ctx.type = typeof data?.type === 'string' ? data.type : undefined;
      const ra = res.headers['retry-after'];
      ctx.retryAfter = typeof ra === 'string' ? ra : undefined;
    }
    const url = new URL(res.config.url ?? '', res.config.baseURL);
    const nonce = res.headers['replay-nonce'];
    const badNonce = res.status === 400 && data?.type === BAD_NONCE;
    // The CA restarted or rotated its nonces: what the pool holds is as stale as the one it refused.
    if (badNonce) nonces.delete(url.origin);
    // Not a HEAD's (getNonce hands that one out) nor a badNonce's (acme-client retries with it).
    else if (typeof nonce === 'string' && res.config.method !== 'head') {
      const pool = nonces.get(url.origin) ?? [];
      pool.push(nonce);
      if (pool.length > NONCE_POOL_MAX) pool.shift();
      nonces.set(url.origin, pool);
      bound(nonces, MAX_ORIGINS);
    }
    if (res.status === 429 || res.status === 503) {
      const ra = res.headers['retry-after'];
      const ms = parseRetryAfter(typeof ra === 'string' ? ra : undefined);
      if (ms) {
        if (heldUntil.size > 1024) for (const [k, until] of heldUntil) if (until <= Date.now()) heldUntil.delete(k);
        heldUntil.set(urlKey(url), Date.now() + ms);
        bound(heldUntil, 1024);
      }
    }
    const started = (res.config as unknown as { startedAt?: number }).startedAt ?? performance.now();
    for (const o of observers) {
      o({
        scheme: url.protocol === 'https:' ? 'https' : 'http',
        host: hostLabel(url),
        action: actionOf(url.pathname),
        method: (res.config.method ?? 'get').toUpperCase(),
        status: String(res.status),
        seconds: (performance.now() - started) / 1000,
      });
    }
    return res;
  });
}

/** Collapses per-object paths into a bounded label set. */
function actionOf(path: string): string {
  const seg = path.split('/').filter(Boolean);
  const known = ['dir', 'directory', 'nonce-plz', 'new-nonce', 'new-acct', 'new-account', 'new-order', 'order', 'authz', 'authz-v3', 'chall', 'challenge', 'finalize', 'cert', 'certZ', 'my-account', 'acct'];
  // Never a path segment the CA chose: each would be a new series for ever.
  return seg.find((s) => known.includes(s)) ?? 'other';
}

/** The host label: a directory's host, or "other" for any host a CA's answers pointed elsewhere. */
function hostLabel(url: URL): string {
  for (const d of directoryUrls) if (new URL(d).host === url.host) return url.host;
  return 'other';
}

/** Keeps a map keyed by something outside our control at `max` entries, dropping the oldest. */
function bound<K, V>(map: Map<K, V>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) return;
    map.delete(key);
  }
}

export function observeRequests(o: RequestObserver): void {
  install();
  observers.push(o);
}

/**
 * The longest Retry-After honoured. A CA that asks for more (by mistake, or a hostile one a
 * tenant points an Issuer at) is asked again after a day instead of stalling an Order for weeks.
 */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/** A Retry-After header (seconds or an HTTP date) in ms, between 0 and MAX_RETRY_AFTER_MS. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  const at = Date.parse(value);
  const ms = Number.isFinite(secs) ? secs * 1000 : Number.isNaN(at) ? undefined : at - now;
  return ms === undefined ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** Runs one ACME call and turns its failure into permanent or transient. */
export async function call<T>(step: string, fn: () => Promise<T>): Promise<T> {
  install();
  const ctx: CallContext = {};
  try {
    return await calls.run(ctx, fn);
  } catch (err) {
    if (ctx.refused !== undefined) throw new AcmeProblemError(`ACME ${step}: ${ctx.refused}`, 0, 'certroute:refusedDirectory', { cause: err });
    const detail = ctx.networkError ?? (err instanceof Error ? err.message : String(err));
    if (ctx.heldUntil !== undefined) {
      throw new RetryAfterError(`ACME ${step}: waiting for the CA's Retry-After: ${detail}`, Math.max(0, ctx.heldUntil - Date.now()), { cause: err });
    }
    const status = ctx.status;
    if (status === 429 || status === 503) {
      const ms = parseRetryAfter(ctx.retryAfter) ?? 0;
      throw new RetryAfterError(`ACME ${step}: the CA answered ${status}${ms ? `, retry after ${Math.round(ms / 1000)}s` : ''}: ${detail}`, ms, { cause: err });
    }
    if (status !== undefined && status >= 400 && status < 500 && ctx.type !== 'urn:ietf:params:acme:error:badNonce') {
      throw new AcmeProblemError(`ACME ${step}: ${detail}`, status, ctx.type ?? '', { cause: err });
    }
    throw new Error(`ACME ${step} failed (will retry): ${detail}`, { cause: err });
  }
}

export interface ClientSpec {
  directoryUrl: string;
  accountKeyPem: string;
  accountUrl?: string;
  tls: TlsSettings;
  eab?: { kid: string; hmacKey: string };
}

const clients = new Map<string, acme.Client>();

/**
 * Clients are cached per (directory, key, account URL): each keeps the
 * directory and a nonce pool, which saves two requests per step.
 */
export function clientFor(spec: ClientSpec): acme.Client {
  install();
  const origin = new URL(spec.directoryUrl).origin;
  if (spec.tls.caBundlePem || spec.tls.skipTLSVerify) tlsByOrigin.set(origin, spec.tls);
  else tlsByOrigin.delete(origin);
  const key = `${spec.directoryUrl}|${spec.accountUrl ?? ''}|${spec.accountKeyPem}|${spec.tls.caBundlePem ?? ''}|${spec.tls.skipTLSVerify ? 1 : 0}|${spec.eab?.kid ?? ''}`;
  let c = clients.get(key);
  if (!c) {
    if (clients.size > 256) {
      clients.clear();
      directoryUrls.clear();
    }
    directoryUrls.add(spec.directoryUrl);
    c = new acme.Client({
      directoryUrl: spec.directoryUrl,
      accountKey: spec.accountKeyPem,
      ...(spec.accountUrl ? { accountUrl: spec.accountUrl } : {}),
      ...(spec.eab ? { externalAccountBinding: spec.eab } : {}),
      backoffAttempts: 1,
      backoffMin: 0,
      backoffMax: 0,
    });
    const http = (c as unknown as { http: { getNonce(): Promise<string> } }).http;
    const fetchNonce = http.getNonce.bind(http);
    // The newest first: the oldest are the likeliest to have expired.
    http.getNonce = () => {
      const pooled = nonces.get(origin)?.pop();
      return pooled ? Promise.resolve(pooled) : fetchNonce();
    };
    clients.set(key, c);
  }
  return c;
}

/**
 * Drops every cached client of an account: a client remembers its account
 * URL, so after the CA forgot the account a cached one could never register
 * again.
 */
export function forgetClients(directoryUrl: string, accountKeyPem: string): void {
  const prefix = `${directoryUrl}|`;
  for (const key of clients.keys()) {
    if (key.startsWith(prefix) && key.includes(`|${accountKeyPem}|`)) clients.delete(key);
  }
}

export { acme };
