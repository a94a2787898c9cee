/**
 * A thin, resumable wrapper over acme-client's step methods.
 *
 * acme-client 5.4 sends every request through one global axios instance. So
 * each client made here gets its own Transport (an https.Agent built from its
 * issuer's caBundle and skipTLSVerify, and a nonce pool), which the client
 * itself attaches to every request it makes: nothing is chosen by origin, and
 * one issuer's TLS settings never reach another issuer's requests, even at the
 * same CA. The status/Retry-After of the last response is captured per call
 * through AsyncLocalStorage. That lets errors be classified: 4xx problems are
 * permanent, 429/5xx and network errors are transient and go back to the work
 * queue, which honours Retry-After.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import https from 'node:https';
import { createRequire } from 'node:module';
import acme from 'acme-client';
import { RetryAfterError } from '../base/errors.ts';
import { assertFence } from '../kube/fence.ts';

export type AcmeClient = acme.Client;
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

/**
 * The CA answered 5xx (but not 503 with a Retry-After): transient, and retried like any other
 * transient error. Its own class so that a step can tell "the CA failed this request" from
 * "no answer at all" (a newOrder whose `replaces` a CA cannot handle is sent again without it).
 */
export class AcmeServerError extends Error {
  readonly status: number;
  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AcmeServerError';
    this.status = status;
  }
}

/** The largest ACME response read (a certificate chain is a few kB): larger ones are cut off. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** The directory URLs of the clients made here, so their answers can be checked. */
const directoryUrls = new Set<string>();
/** A tenant can point Issuers at any number of directories: the oldest are forgotten past this. */
const MAX_DIRECTORIES = 256;

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
  /** Set when the answer was refused on sight (a redirect, a directory with a non-https URL). */
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
const observers: RequestObserver[] = [];
/**
 * Until when (epoch ms) the CA asked, with a 429 or 503 Retry-After, not to be sent requests for
 * a URL (origin and path). Kept here, not in the work queue, because the wait binds every key:
 * a rate-limited new-order URL is the same URL for every Order, and an informer event must not
 * cut a wait short either.
 */
const heldUntil = new Map<string, number>();
const NONCE_POOL_MAX = 64;
const BAD_NONCE = 'urn:ietf:params:acme:error:badNonce';
let installed = false;

const urlKey = (url: URL) => `${url.origin}${url.pathname}`;

/**
 * One client's way to its CA: the TLS settings of its issuer alone, and the unused nonces from
 * the Replay-Nonce header every ACME response carries (RFC 8555 §7.2). acme-client 5.4 sends a
 * HEAD to newNonce before every signed request; taking a nonce from the pool instead halves the
 * requests per step (a round trip each, to a distant CA), and against Pebble, whose HEAD answer
 * Node cannot keep alive, saves a TLS handshake per step too. A nonce gone stale is answered
 * with badNonce, which acme-client retries with a fresh one. A class, not a plain object, so
 * that axios hands the very instance on instead of merging a copy into the request config.
 */
export class Transport {
  readonly agent: https.Agent;
  readonly nonces: string[] = [];
  constructor(tls: TlsSettings) {
    this.agent = new https.Agent({ keepAlive: true, ca: tls.caBundlePem, rejectUnauthorized: !tls.skipTLSVerify });
  }
}

/** The request config key under which a client hands its Transport to the interceptors. */
const TRANSPORT = 'certrouteTransport';

function transportOfConfig(config: unknown): Transport | undefined {
  const t = (config as Record<string, unknown> | undefined)?.[TRANSPORT];
  return t instanceof Transport ? t : undefined;
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
    config.adapter = async (c) => {
      try {
        return (await httpAdapter(c)) as never;
      } catch (err) {
        const e = err as { response?: unknown; code?: string; message?: string };
        const ctx = calls.getStore();
        // An answer over the size cap is the CA's doing, not the network's: asking again gets the same.
        if (ctx && /maxContentLength/.test(e.message ?? '')) ctx.refused = `the ACME server at ${url.origin} answered with more than ${MAX_RESPONSE_BYTES} bytes, which certroute does not read; check spec.acme.server`;
        else if (ctx && !e.response) ctx.networkError = `no answer from ${url.origin}: ${[e.code, e.message].filter(Boolean).join(' ')}`;
        throw err;
      }
    };
    (config as unknown as { startedAt: number }).startedAt = performance.now();
    return config;
  });
  acme.axios.interceptors.response.use((res) => {
    const ctx = calls.getStore();
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.location;
      const problem = `the ACME server answered ${res.status} with a redirect${typeof location === 'string' ? ` to ${location.slice(0, 256)}` : ''}, and certroute follows no redirect from an ACME server; set spec.acme.server to the directory's own URL`;
      if (ctx) ctx.refused = problem;
      throw new Error(problem);
    }
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
    const pool = transportOfConfig(res.config)?.nonces;
    const badNonce = res.status === 400 && data?.type === BAD_NONCE;
    // The CA restarted or rotated its nonces: what the pool holds is as stale as the one it refused.
    if (badNonce) pool?.splice(0);
    // Not a HEAD's (getNonce hands that one out) nor a badNonce's (acme-client retries with it).
    else if (pool && typeof nonce === 'string' && res.config.method !== 'head') {
      pool.push(nonce);
      if (pool.length > NONCE_POOL_MAX) pool.shift();
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
  // RFC 8555's names, Boulder's (Let's Encrypt) and Pebble's.
  const known = [
    'dir', 'directory', 'nonce-plz', 'new-nonce', 'new-acct', 'new-account', 'sign-me-up', 'new-order', 'order-plz', 'order', 'my-order',
    'authz', 'authz-v3', 'authZ', 'chall', 'chall-v3', 'challenge', 'chalZ', 'finalize', 'finalize-order', 'cert', 'certZ', 'my-account', 'acct',
    'key-change', 'rollover-account-key', 'revoke-cert', 'renewal-info', 'renewalInfo',
  ];
  // Never a path segment the CA chose: each would be a new series for ever.
  return seg.find((s) => known.includes(s)) ?? 'other';
}

/** The host label: a directory's host, or "other" for any host a CA's answers pointed elsewhere. */
function hostLabel(url: URL): string {
  for (const d of directoryUrls) if (new URL(d).host === url.host) return url.host;
  return 'other';
}

/** Keeps a map or set keyed by something outside our control at `max` entries, dropping the oldest. */
function bound<K>(map: { size: number; keys(): Iterable<K>; delete(key: K): unknown }, max: number): void {
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
    // Already sorted (an error of this module, thrown by a step built on it): it stays as it is.
    if (err instanceof AcmeProblemError || err instanceof AcmeServerError || err instanceof RetryAfterError) throw err;
    if (ctx.refused !== undefined) throw new AcmeProblemError(`ACME ${step}: ${ctx.refused}`, 0, 'certroute:refusedAnswer', { cause: err });
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
    if (status !== undefined && status >= 500) throw new AcmeServerError(`ACME ${step} failed (will retry): ${detail}`, status, { cause: err });
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

interface HttpInternals {
  request(url: string, method: string, opts?: Record<string, unknown>): Promise<unknown>;
  getNonce(): Promise<string>;
  getDirectory(): Promise<unknown>;
  directoryCache: unknown;
}

const httpOf = (client: acme.Client) => (client as unknown as { http: HttpInternals }).http;

const transports = new WeakMap<acme.Client, Transport>();

/**
 * A client with a Transport of its own. Nothing is cached here: the account registry
 * (`accounts.ts`) keeps one client per issuer, which keeps the directory and the nonce pool
 * between steps and saves two requests per step.
 */
export function createClient(spec: ClientSpec): acme.Client {
  install();
  directoryUrls.delete(spec.directoryUrl);
  directoryUrls.add(spec.directoryUrl);
  bound(directoryUrls, MAX_DIRECTORIES);
  const client = new acme.Client({
    directoryUrl: spec.directoryUrl,
    accountKey: spec.accountKeyPem,
    ...(spec.accountUrl ? { accountUrl: spec.accountUrl } : {}),
    ...(spec.eab ? { externalAccountBinding: spec.eab } : {}),
    backoffAttempts: 1,
    backoffMin: 0,
    backoffMax: 0,
  });
  const transport = new Transport(spec.tls);
  const http = httpOf(client);
  const request = http.request.bind(http);
  http.request = (url, method, opts = {}) => request(url, method, { ...opts, httpsAgent: transport.agent, [TRANSPORT]: transport });
  const fetchNonce = http.getNonce.bind(http);
  // The newest first: the oldest are the likeliest to have expired.
  http.getNonce = () => {
    const pooled = transport.nonces.pop();
    return pooled ? Promise.resolve(pooled) : fetchNonce();
  };
  transports.set(client, transport);
  return client;
}

/** The Transport a client attaches to its requests (tests compare two issuers' with it). */
export function transportOf(client: acme.Client): Transport | undefined {
  return transports.get(client);
}

/**
 * What a directory offers beyond RFC 8555 that certroute uses: certificate profiles (name →
 * description, from meta.profiles) and the renewalInfo resource of ACME Renewal Information
 * (RFC 9773). acme-client 5.4 knows neither; it keeps the directory, so this costs a request
 * only when the client has none or `fresh` asks for a new one. Run it inside `call()`.
 */
export interface DirectoryOffers {
  /** undefined: the directory lists no profiles at all. */
  profiles?: Record<string, string>;
  renewalInfo?: string;
}

export async function directoryOffers(client: acme.Client, fresh = false): Promise<DirectoryOffers> {
  const http = httpOf(client);
  if (fresh) http.directoryCache = null;
  const dir = (await http.getDirectory()) as { meta?: { profiles?: unknown }; renewalInfo?: unknown };
  const listed = dir.meta?.profiles;
  const profiles = typeof listed === 'object' && listed !== null && !Array.isArray(listed)
    ? Object.fromEntries(Object.entries(listed).map(([name, about]) => [name, typeof about === 'string' ? about : '']))
    : undefined;
  return { profiles, renewalInfo: typeof dir.renewalInfo === 'string' ? dir.renewalInfo : undefined };
}

/** A renewalInfo answer (RFC 9773 §4.2), checked: a window whose end is after its start. */
export interface RenewalInfo {
  start: Date;
  end: Date;
  explanationURL?: string;
  /** The answer's Retry-After, in ms, when it had one. */
  retryAfterMs?: number;
}

/**
 * GETs the renewal information of the certificate with ARI identifier `certId`. Run it inside
 * `call()`: an error answer (404 for a certificate the CA does not know) is sorted there.
 */
export async function fetchRenewalInfo(client: acme.Client, renewalInfoUrl: string, certId: string): Promise<RenewalInfo> {
  const res = (await httpOf(client).request(`${renewalInfoUrl.replace(/\/+$/, '')}/${certId}`, 'get')) as { status: number; data: unknown; headers: Record<string, unknown> };
  if (res.status >= 400) throw new Error(`renewalInfo answered ${res.status}`);
  const body = res.data as { suggestedWindow?: { start?: unknown; end?: unknown }; explanationURL?: unknown } | undefined;
  const start = Date.parse(String(body?.suggestedWindow?.start));
  const end = Date.parse(String(body?.suggestedWindow?.end));
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
    throw new AcmeProblemError('ACME renewalInfo: the answer has no valid suggestedWindow (start and end timestamps, end after start)', res.status, 'certroute:malformedRenewalInfo');
  }
  const ra = res.headers['retry-after'];
  return {
    start: new Date(start),
    end: new Date(end),
    ...(typeof body?.explanationURL === 'string' ? { explanationURL: body.explanationURL.slice(0, 2048) } : {}),
    ...(typeof ra === 'string' && parseRetryAfter(ra) !== undefined ? { retryAfterMs: parseRetryAfter(ra) } : {}),
  };
}

export { acme };
