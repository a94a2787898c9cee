/**
 * The HTTP-01 self-check (docs/ARCHITECTURE.md, decision 8). It requests the token from
 * Traefik's web entrypoint at an in-cluster address, with the challenged Host
 * header, instead of through public DNS: no hairpin NAT, no CDN edge, and it
 * works when the cluster sits behind a Cloudflare Tunnel. Redirects are
 * followed by hand so that an HTTPS redirect for the challenged host goes back
 * to Traefik's websecure entrypoint, with SNI set and the certificate not
 * verified (the certificate is what we are trying to obtain).
 */
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { dnsNameProblem } from '../pki/names.ts';
import { TOKEN_PATTERN } from './challenge-index.ts';

export interface SelfCheckOptions {
  /** Traefik's web entrypoint, e.g. `http://traefik.traefik.svc:80`. */
  webAddress: string;
  /**
   * Traefik's websecure entrypoint, used when the web entrypoint redirects to
   * https for the challenged host. Unset: the web address's host with the
   * redirect's port (443 when it names none).
   */
  websecureAddress?: string;
  /** The challenged host, sent as the Host header and as SNI. */
  host: string;
  token: string;
  expectedKeyAuth: string;
  /** For the whole check, redirects included. Default 5 s. */
  timeoutMs?: number;
  /** Default 10. */
  maxRedirects?: number;
  /** Defaults to a fresh Agent per check that does not verify certificates. */
  dispatcher?: Dispatcher;
}

/** What went wrong, so that callers can give the user the right next step. */
export type SelfCheckFailureKind = 'host' | 'status' | 'body' | 'connection' | 'timeout' | 'redirect';

export type SelfCheckResult =
  | { ok: true }
  | { ok: false; kind: SelfCheckFailureKind; requested: string; got: string };

const MAX_BODY_BYTES = 8 * 1024;
const BODY_EXCERPT_CHARS = 128;

interface Hop {
  /** The URL as a browser would see it: scheme and host of the challenged site. */
  url: URL;
  /** Where the connection actually goes: Traefik's entrypoint. */
  connectTo: URL;
}

type HopResult =
  | { done: SelfCheckResult }
  | { next: Hop };

function parseAddress(address: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(address);
  } catch (cause) {
    throw new Error(`self-check: ${what} ${JSON.stringify(address)} is not a URL; use e.g. http://traefik.traefik.svc:80`, { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`self-check: ${what} ${JSON.stringify(address)} must use http or https`);
  }
  return url;
}

function sameHost(a: string, b: string): boolean {
  const norm = (h: string) => h.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.+$/, '');
  return norm(a) === norm(b);
}

/**
 * Why `host` cannot be self-checked, or undefined: it must be a DNS name or an IP address. The
 * URL is built from it, so `internal.example/admin?x=` would otherwise request another path.
 */
export function challengeHostProblem(host: string): string | undefined {
  if (isIP(host) !== 0) return undefined;
  const problem = dnsNameProblem(host);
  if (problem !== undefined) return `is neither an IP address nor a DNS name: it ${problem}`;
  if (host.startsWith('*.')) return 'is a wildcard, which HTTP-01 cannot validate';
  return undefined;
}

/** An IPv6 literal needs brackets to sit in a URL. */
function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function describeRequest(hop: Hop): string {
  const target = new URL(hop.url.pathname + hop.url.search, hop.connectTo.origin);
  const sni = hop.connectTo.protocol === 'https:' ? `, SNI ${hop.url.hostname}` : '';
  return `GET ${target.href} (Host: ${hop.url.host}${sni})`;
}

/** A short, single-line, printable excerpt of a response body. */
export function sanitizeBody(body: string): string {
  const flat = body.replace(/\s+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').trim();
  return flat.length > BODY_EXCERPT_CHARS ? `${flat.slice(0, BODY_EXCERPT_CHARS)}…` : flat;
}

async function readLimited(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    chunks.push(buf);
    size += buf.length;
    if (size >= MAX_BODY_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8');
}

function errorCode(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
    const cause = (err as { cause?: unknown }).cause;
    if (cause !== undefined) return errorCode(cause);
    return err.name;
  }
  return String(err);
}

/** Decides where a redirect leads, or why it must not be followed. */
function redirectTarget(hop: Hop, location: string | undefined, opts: SelfCheckOptions, web: URL): HopResult {
  const requested = describeRequest(hop);
  if (!location) {
    return { done: { ok: false, kind: 'redirect', requested, got: 'a redirect without a Location header' } };
  }
  let url: URL;
  try {
    url = new URL(location, hop.url);
  } catch {
    return { done: { ok: false, kind: 'redirect', requested, got: `a redirect to an invalid Location '${sanitizeBody(location)}'` } };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { done: { ok: false, kind: 'redirect', requested, got: `a redirect to unsupported scheme ${url.protocol} (${sanitizeBody(url.href)})` } };
  }
  if (!sameHost(url.hostname, opts.host)) {
    return {
      done: {
        ok: false,
        kind: 'redirect',
        requested,
        // The query is left out: it often carries session IDs that would churn the status.
        got: `a redirect to another host ${url.hostname} (${sanitizeBody(url.origin + url.pathname)}); only redirects to ${opts.host} are followed`,
      },
    };
  }
  let connectTo: URL;
  if (url.protocol === 'http:') {
    connectTo = web;
  } else if (opts.websecureAddress !== undefined) {
    connectTo = parseAddress(opts.websecureAddress, 'websecureAddress');
  } else {
    connectTo = new URL(web.href);
    connectTo.protocol = 'https:';
    connectTo.port = url.port || '443';
  }
  return { next: { url, connectTo } };
}

async function fetchHop(hop: Hop, opts: SelfCheckOptions, web: URL, dispatcher: Dispatcher, signal: AbortSignal): Promise<HopResult> {
  const requested = describeRequest(hop);
  const target = new URL(hop.url.pathname + hop.url.search, hop.connectTo.origin);
  const res = await request(target, {
    method: 'GET',
    dispatcher,
    signal,
    // undici takes SNI from the Host header; for an IP-literal host it sends none.
    headers: { host: hop.url.host, 'user-agent': 'certroute-selfcheck', accept: '*/*' },
  });
  if (res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304) {
    await res.body.dump();
    const location = res.headers.location;
    return redirectTarget(hop, Array.isArray(location) ? location[0] : location, opts, web);
  }
  const body = await readLimited(res.body);
  // The body is compared, never quoted: whatever answered may be an internal service, and what
  // it says must not reach the Challenge's status or Events, which namespace users can read.
  if (res.statusCode !== 200) {
    return { done: { ok: false, kind: 'status', requested, got: `status ${res.statusCode}` } };
  }
  if (body.trimEnd() !== opts.expectedKeyAuth) {
    return { done: { ok: false, kind: 'body', requested, got: `200 with a body that is not the key authorization (${Buffer.byteLength(body)} bytes)` } };
  }
  return { done: { ok: true } };
}

/**
 * Requests the challenge token through Traefik the way the ACME server will,
 * and compares the answer with the key authorization. Never throws for what
 * the network does; it throws only for an invalid address option.
 */
export async function selfCheck(opts: SelfCheckOptions): Promise<SelfCheckResult> {
  const web = parseAddress(opts.webAddress, 'webAddress');
  const hostProblem = challengeHostProblem(opts.host);
  if (hostProblem !== undefined) {
    return { ok: false, kind: 'host', requested: 'nothing', got: `the challenged name ${JSON.stringify(opts.host.slice(0, 256))} ${hostProblem}` };
  }
  if (!TOKEN_PATTERN.test(opts.token)) {
    return { ok: false, kind: 'host', requested: 'nothing', got: 'the challenge token is not base64url (RFC 8555 §8.3)' };
  }
  if (opts.websecureAddress !== undefined) parseAddress(opts.websecureAddress, 'websecureAddress');
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const maxRedirects = opts.maxRedirects ?? 10;
  const owned = opts.dispatcher === undefined;
  const dispatcher = opts.dispatcher ?? new Agent({ connect: { rejectUnauthorized: false }, pipelining: 0 });
  const signal = AbortSignal.timeout(timeoutMs);

  let hop: Hop = {
    url: new URL(`http://${urlHost(opts.host)}/.well-known/acme-challenge/${encodeURIComponent(opts.token)}`),
    connectTo: web,
  };
  const chain: string[] = [];
  try {
    for (let redirects = 0; ; redirects++) {
      chain.push(describeRequest(hop));
      let result: HopResult;
      try {
        result = await fetchHop(hop, opts, web, dispatcher, signal);
      } catch (err) {
        const timedOut = signal.aborted;
        return {
          ok: false,
          kind: timedOut ? 'timeout' : 'connection',
          requested: chain.join(' → '),
          got: timedOut ? `no answer within ${timeoutMs} ms` : `connection error ${errorCode(err)}`,
        };
      }
      if ('done' in result) {
        return result.done.ok ? result.done : { ...result.done, requested: chain.join(' → ') };
      }
      if (redirects >= maxRedirects) {
        return { ok: false, kind: 'redirect', requested: chain.join(' → '), got: `more than ${maxRedirects} redirects` };
      }
      hop = result.next;
    }
  } finally {
    if (owned) await dispatcher.destroy();
  }
}

const HINTS: Record<SelfCheckFailureKind, string> = {
  host: 'nothing was requested; a Challenge must name the DNS name or IP address of its Order and carry the token the CA gave',
  status:
    'check that the challenge route exists in Traefik on the web entrypoint and points at the certroute responder Service, and that no other route or middleware takes precedence',
  body: 'another service answered the challenge path; check that the certroute challenge route has the highest priority for this host',
  connection: 'check the Traefik web entrypoint address given to certroute and that Traefik is running',
  timeout: 'check that Traefik and the certroute responder are reachable from the controller',
  redirect:
    'only redirects to the challenged host are followed; remove the redirect for /.well-known/acme-challenge/ or point it at the same host',
};

/**
 * A message for the Challenge status and its Event. It holds no timestamps
 * or request IDs, so repeating the same failure does not churn the status.
 */
export function describeSelfCheckFailure(result: SelfCheckResult): string {
  if (result.ok) return 'self-check passed';
  return `self-check ${result.requested} returned ${result.got}; ${HINTS[result.kind]}`;
}
