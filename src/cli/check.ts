/**
 * `certroute check <host>`: follows the path an ACME validator takes to a host and says which
 * step breaks: DNS → Traefik's route for /.well-known/acme-challenge/ → the certroute
 * responder → the certificate Traefik serves for the host.
 *
 * The route step reuses the controller's self-check (redirects to https followed the same way)
 * with a one-off token that no Challenge has. The responder answers such a token with its
 * constant 404. Traefik's own 404, for a request no router matches, has the same body, so the
 * two are told apart by the no-cache headers the responder sets and Traefik does not.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import { sanitizeBody, selfCheck, type SelfCheckResult } from '../responder/selfcheck.ts';
import { isResponderNotFound } from '../responder/server.ts';
import { durationFlag, parse, UsageError } from './args.ts';
import { marks, withProgress, type Marks, type ProgressOptions } from './progress.ts';

const HELP = `Usage: certroute check <host> [--web-address URL] [--websecure-address URL] [--dns-server HOST:PORT]

Follows the path an ACME validator takes and says which step fails:
  DNS        <host> resolves (AAAA first, then A, as Pebble and Let's Encrypt do)
  route      Traefik routes http://<host>/.well-known/acme-challenge/ to certroute
  responder  the certroute responder answers behind that route
  TLS        what certificate Traefik serves for <host> (SNI), and whether it covers <host>

Flags:
  --web-address URL         Traefik's web entrypoint (default http://<resolved address>:80)
  --websecure-address URL   Traefik's websecure entrypoint (default https://<resolved address>:443)
  --dns-server HOST:PORT    resolve with this DNS server (e.g. the test stack's challtestsrv)
  --timeout DURATION        per step (default 5s)
  -h, --help                this help

Exit codes: 0 every step passed, 1 a step failed, 2 usage error.
`;

export type StepName = 'DNS' | 'route' | 'responder' | 'TLS';
export type Verdict = 'pass' | 'fail' | 'skip';

export interface StepResult {
  step: StepName;
  verdict: Verdict;
  summary: string;
  /** Facts and the next thing to try, one per line. */
  details: string[];
}

const step = (name: StepName, verdict: Verdict, summary: string, details: string[] = []): StepResult => ({ step: name, verdict, summary, details });


// ── 1. DNS ──────────────────────────────────────────────────────────────────

/** One family's answer: addresses, or the resolver's error code. */
export interface Lookup {
  addresses?: string[];
  code?: string;
}

const DNS_ERRORS: Record<string, string> = {
  ENOTFOUND: 'no such name (NXDOMAIN)',
  ENODATA: 'the name exists but has no A or AAAA record',
  ETIMEOUT: 'the DNS server did not answer',
  ECONNREFUSED: 'the DNS server refused the query',
  ESERVFAIL: 'the DNS server failed (SERVFAIL)',
  EREFUSED: 'the DNS server refused the query (REFUSED)',
};

/**
 * Pebble and Let's Encrypt try the AAAA address first, so that is the address the
 * next steps use when there is one.
 */
export function dnsVerdict(host: string, server: string | undefined, aaaa: Lookup, a: Lookup): { result: StepResult; address?: string } {
  const via = server ? ` via ${server}` : '';
  const address = aaaa.addresses?.[0] ?? a.addresses?.[0];
  if (address) {
    const details = [`A: ${a.addresses?.join(', ') || 'none'}`, `AAAA: ${aaaa.addresses?.join(', ') || 'none'}`];
    if (aaaa.addresses?.length && a.addresses?.length) details.push('validators try the AAAA address first: Traefik must answer there too');
    return { address, result: step('DNS', 'pass', `${host} resolves to ${address}${via}`, details) };
  }
  const code = [aaaa.code, a.code].includes('ENOTFOUND') ? 'ENOTFOUND' : (a.code ?? aaaa.code ?? 'ENODATA');
  const hint = server ? `add an A record for ${host} to ${server}` : `create an A (or AAAA) record for ${host} that points at Traefik's public address`;
  return { result: step('DNS', 'fail', `${host} does not resolve: ${DNS_ERRORS[code] ?? code}${via}`, [hint]) };
}

export async function resolveHost(host: string, server: string | undefined, timeoutMs: number): Promise<{ result: StepResult; address?: string }> {
  if (isIP(host)) return { address: host, result: step('DNS', 'pass', `${host} is an IP address; nothing to resolve`) };
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  if (server) resolver.setServers([server]);
  const lookup = (p: Promise<string[]>): Promise<Lookup> =>
    p.then((addresses) => ({ addresses }), (err: NodeJS.ErrnoException) => ({ code: err.code ?? err.message }));
  const [aaaa, a] = await Promise.all([lookup(resolver.resolve6(host)), lookup(resolver.resolve4(host))]);
  return dnsVerdict(host, server, aaaa, a);
}

// ── 2 and 3. route and responder ────────────────────────────────────────────

export interface ObservedResponse {
  url: string;
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
}

export interface RouteProbe {
  result: SelfCheckResult;
  /** Every response on the way, redirects included; the last one decided. */
  responses: ObservedResponse[];
}

interface UndiciRequest {
  origin?: unknown;
  path?: unknown;
}

function headerRecord(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(raw)) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = String(raw[i]).toLowerCase();
      const value = String(raw[i + 1]);
      out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
    }
  } else if (raw && typeof raw === 'object') {
    for (const [k, v] of Object.entries(raw)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

/**
 * Runs the self-check for a token no Challenge has. The self-check reports only
 * a verdict, so each response's headers and body are observed on undici's
 * diagnostics channels, matched by that token.
 */
export async function probeRoute(opts: { host: string; webAddress: string; websecureAddress?: string; timeoutMs: number }): Promise<RouteProbe> {
  const token = `certroute-check-${randomBytes(12).toString('base64url')}`;
  const seen = new Map<object, ObservedResponse>();
  const ours = (request: UndiciRequest) => typeof request.path === 'string' && request.path.includes(token);
  const onHeaders = (message: unknown) => {
    const { request, response } = message as { request: UndiciRequest; response: { statusCode: number; headers: unknown } };
    if (!ours(request)) return;
    seen.set(request, { url: `${String(request.origin)}${String(request.path)}`, status: response.statusCode, headers: headerRecord(response.headers), body: '' });
  };
  const onChunk = (message: unknown) => {
    const { request, chunk } = message as { request: UndiciRequest; chunk: Uint8Array };
    const r = seen.get(request);
    if (r && r.body.length < 8192) r.body += Buffer.from(chunk).toString('utf8');
  };
  diagnosticsChannel.subscribe('undici:request:headers', onHeaders);
  diagnosticsChannel.subscribe('undici:request:bodyChunkReceived', onChunk);
  try {
    const result = await selfCheck({
      host: opts.host,
      token,
      expectedKeyAuth: `${token}.never-served`,
      webAddress: opts.webAddress,
      ...(opts.websecureAddress ? { websecureAddress: opts.websecureAddress } : {}),
      timeoutMs: opts.timeoutMs,
    });
    return { result, responses: [...seen.values()] };
  } finally {
    diagnosticsChannel.unsubscribe('undici:request:headers', onHeaders);
    diagnosticsChannel.unsubscribe('undici:request:bodyChunkReceived', onChunk);
  }
}

const NO_ROUTE_HINT = "check that certroute's challenge IngressRoute exists on the web entrypoint (kubectl get ingressroute -A), or in middleware mode that the plugin is attached to the entrypoint";
const OTHER_ANSWER_HINT = 'a middleware (auth, IP allow-list, redirect) or a router with a higher priority takes /.well-known/acme-challenge/ for this host';
const BACKEND_HINT = "check that the certroute controller is running and that its responder Service has ready endpoints (kubectl get endpointslices -n <certroute namespace>)";

/**
 * What answered, for the operator running `certroute check` in a terminal. (The controller
 * never quotes an answer in status or Events, which namespace users can read.)
 */
function quoted(response: { body: string } | undefined): string {
  return response?.body ? `: '${sanitizeBody(response.body)}'` : '';
}

/** What the probe says about the route and about the responder behind it. */
export function routeVerdict(host: string, probe: RouteProbe): { route: StepResult; responder: StepResult } {
  const path = `http://${host}/.well-known/acme-challenge/`;
  const { result } = probe;
  const notReached = step('responder', 'skip', 'not reached');
  if (result.ok) {
    return { route: step('route', 'pass', `Traefik routes ${path} to a service that knew the token`), responder: step('responder', 'pass', 'answered') };
  }
  const last = probe.responses.at(-1);
  const via = probe.responses.length > 1 ? ` (after ${probe.responses.length - 1} redirect${probe.responses.length > 2 ? 's' : ''})` : '';
  const requested = `request: ${result.requested}`;
  switch (result.kind) {
    case 'host':
      return { route: step('route', 'fail', result.got, ['give a DNS name or an IP address']), responder: notReached };
    case 'connection':
    case 'timeout':
      return { route: step('route', 'fail', `cannot reach Traefik's web entrypoint: ${result.got}`, [requested, 'check --web-address, or that the host points at Traefik']), responder: notReached };
    case 'redirect':
      return { route: step('route', 'fail', `Traefik answers ${path} with ${result.got}`, [requested, 'remove the redirect for /.well-known/acme-challenge/, or point it at the same host']), responder: notReached };
    case 'body':
      return { route: step('route', 'fail', `another service answers ${path}${via}: ${result.got}${quoted(last)}`, [requested, OTHER_ANSWER_HINT]), responder: notReached };
    case 'status':
      break;
  }
  const status = last?.status ?? Number(/^status (\d{3})/.exec(result.got)?.[1] ?? 0);
  if (last && isResponderNotFound(last)) {
    return {
      route: step('route', 'pass', `Traefik routes ${path} to the certroute responder${via}`),
      responder: step('responder', 'pass', 'the certroute responder answered (404 for an unknown token, as it should)'),
    };
  }
  if (status === 502 || status === 503 || status === 504) {
    return {
      route: step('route', 'pass', `Traefik has a route for ${path}${via}`),
      responder: step('responder', 'fail', `the route's backend does not answer: Traefik returned ${result.got}`, [requested, BACKEND_HINT]),
    };
  }
  if (status === 404) {
    return { route: step('route', 'fail', `no Traefik router matches ${path}${via}: Traefik answered its own 404`, [requested, NO_ROUTE_HINT]), responder: notReached };
  }
  return { route: step('route', 'fail', `something other than certroute answers ${path}${via}: ${result.got}${quoted(last)}`, [requested, OTHER_ANSWER_HINT]), responder: notReached };
}

// ── 4. TLS ──────────────────────────────────────────────────────────────────

export interface ServedCertificate {
  cert: X509Certificate;
  /** Whether this machine's trust store accepts the chain (informational: staging CAs fail it). */
  authorized: boolean;
  authorizationError?: string;
}

const bare = (hostname: string) => hostname.replace(/^\[|\]$/g, '');

/** Connects with SNI = host and returns the leaf certificate, without verifying it. */
export function fetchServedCertificate(host: string, target: URL, timeoutMs: number): Promise<ServedCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: bare(target.hostname),
      port: Number(target.port || 443),
      ...(isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error(`no TLS handshake within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate();
      const authorizationError = socket.authorizationError ? String(socket.authorizationError) : undefined;
      socket.end();
      if (!cert) return reject(new Error('the server sent no certificate'));
      resolve({ cert, authorized: socket.authorized, ...(authorizationError ? { authorizationError } : {}) });
    });
  });
}

/** Node gives distinguished names one attribute per line, and undefined for an empty one. */
const dn = (text: string | undefined) => (text ?? '').split('\n').filter(Boolean).join(', ');

function rel(ms: number): string {
  const d = Math.abs(ms) / 86_400_000;
  const text = d >= 1 ? `${Math.floor(d)}d` : `${Math.floor(Math.abs(ms) / 3_600_000)}h`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

export function tlsVerdict(host: string, target: string, served: ServedCertificate | { error: string }, now: Date): StepResult {
  const where = `${target} (SNI ${host})`;
  if ('error' in served) return step('TLS', 'fail', `no TLS from ${where}: ${served.error}`, ["check --websecure-address and that Traefik's websecure entrypoint listens there"]);
  const { cert } = served;
  const notAfter = new Date(cert.validTo);
  const notBefore = new Date(cert.validFrom);
  const covers = isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host, { subject: 'never' }) !== undefined;
  const details = [
    `subject: ${dn(cert.subject) || '(empty)'}`,
    `issuer: ${dn(cert.issuer)}`,
    `SANs: ${cert.subjectAltName ?? 'none'}`,
    `notAfter: ${notAfter.toISOString()} (${rel(notAfter.getTime() - now.getTime())})`,
    // Informational: Pebble's and staging CAs' chains are rightly untrusted here.
    served.authorized ? "trust: accepted by this machine's CA store" : `trust: not accepted by this machine's CA store (${served.authorizationError ?? 'no reason given'})`,
  ];
  if (/CN=TRAEFIK DEFAULT CERT/.test(cert.subject ?? '')) {
    return step('TLS', 'fail', `${where} serves Traefik's default certificate: Traefik has no certificate for ${host}`, [
      ...details,
      "check that the Certificate is Ready (certroute status -A) and that the IngressRoute's tls.secretName names its Secret",
    ]);
  }
  if (!covers) return step('TLS', 'fail', `${where} serves a certificate that does not cover ${host}`, [...details, 'check which IngressRoute and TLS Secret Traefik picks for this host']);
  if (now < notBefore) return step('TLS', 'fail', `${where} serves a certificate not valid until ${notBefore.toISOString()}`, details);
  if (now >= notAfter) return step('TLS', 'fail', `${where} serves a certificate for ${host} that expired ${rel(notAfter.getTime() - now.getTime())}`, [...details, 'check why renewal failed: certroute status -A']);
  return step('TLS', 'pass', `${where} serves a certificate for ${host}, expiring ${rel(notAfter.getTime() - now.getTime())}`, details);
}

// ── the command ─────────────────────────────────────────────────────────────

export interface CheckOptions {
  host: string;
  webAddress?: string;
  websecureAddress?: string;
  dnsServer?: string;
  timeoutMs?: number;
  now?: () => Date;
  /** Called as each step finishes, so output appears as the check goes. */
  onStep?: (result: StepResult) => void;
  progress?: ProgressOptions;
}

const urlHost = (address: string) => (isIP(address) === 6 ? `[${address}]` : address);

/** Runs the four steps in order; later steps are skipped only when they have nowhere to connect. */
export async function runCheck(opts: CheckOptions): Promise<StepResult[]> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const results: StepResult[] = [];
  const report = (r: StepResult) => {
    results.push(r);
    opts.onStep?.(r);
  };
  const dns = await withProgress(`Resolving ${opts.host}`, () => resolveHost(opts.host, opts.dnsServer, timeoutMs), opts.progress);
  report(dns.result);

  const web = opts.webAddress ?? (dns.address ? `http://${urlHost(dns.address)}:80` : undefined);
  if (web) {
    const probe = await withProgress(`Requesting the challenge path through ${web}`, () =>
      probeRoute({ host: opts.host, webAddress: web, ...(opts.websecureAddress ? { websecureAddress: opts.websecureAddress } : {}), timeoutMs }), opts.progress);
    const { route, responder } = routeVerdict(opts.host, probe);
    report(route);
    report(responder);
  } else {
    report(step('route', 'skip', `nowhere to connect: ${opts.host} does not resolve; pass --web-address`));
    report(step('responder', 'skip', 'not reached'));
  }

  const websecure = opts.websecureAddress ?? (dns.address ? `https://${urlHost(dns.address)}:443` : opts.webAddress ? `https://${new URL(opts.webAddress).hostname}:443` : undefined);
  if (websecure) {
    const target = new URL(websecure);
    const served = await withProgress(`Connecting to ${target.host} with SNI ${opts.host}`, () =>
      fetchServedCertificate(opts.host, target, timeoutMs).catch((err: NodeJS.ErrnoException) => ({ error: err.code ?? err.message })), opts.progress);
    report(tlsVerdict(opts.host, target.host, served, opts.now?.() ?? new Date()));
  } else {
    report(step('TLS', 'skip', `nowhere to connect: ${opts.host} does not resolve; pass --websecure-address`));
  }
  return results;
}

export function formatStep(r: StepResult, m: Marks): string {
  const width = Math.max(m.ok.length, m.fail.length, m.skip.length);
  const mark = (r.verdict === 'pass' ? m.ok : r.verdict === 'fail' ? m.fail : m.skip).padEnd(width);
  return [`${mark} ${r.step}: ${r.summary}`, ...r.details.map((d) => `${' '.repeat(width + 3)}${d}`)].join('\n') + '\n';
}

export const exitCodeFor = (results: readonly StepResult[]): number => (results.every((r) => r.verdict === 'pass') ? 0 : 1);

function addressFlag(name: string, value: string | undefined, scheme: 'http' | 'https'): string | undefined {
  if (value === undefined) return undefined;
  const withScheme = value.includes('://') ? value : `${scheme}://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`--${name}=${value}: not a URL; use e.g. ${scheme}://traefik.traefik.svc:${scheme === 'http' ? 80 : 443}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--${name}=${value}: use http or https`);
  return withScheme;
}

export function parseCheckArgs(argv: string[]): { help: true } | (CheckOptions & { help?: false }) {
  const { values, positionals } = parse(argv, {
    'web-address': { type: 'string' },
    'websecure-address': { type: 'string' },
    'dns-server': { type: 'string' },
    timeout: { type: 'string' },
  }, true);
  if (values.help) return { help: true };
  if (positionals.length !== 1) throw new UsageError('name exactly one host, e.g. certroute check app.example.com');
  const host = (positionals[0] ?? '').replace(/\.$/, '');
  if (!isIP(host) && !/^[A-Za-z0-9_]([A-Za-z0-9_-]*)(\.[A-Za-z0-9_-]+)*$/.test(host)) {
    throw new UsageError(`${JSON.stringify(positionals[0])} is not a host name; give the bare name, e.g. app.example.com`);
  }
  const dnsServer = values['dns-server'];
  if (dnsServer !== undefined) {
    try {
      new Resolver().setServers([dnsServer]);
    } catch {
      throw new UsageError(`--dns-server=${dnsServer}: use HOST or HOST:PORT with an IP address, e.g. 127.0.0.1:8053`);
    }
  }
  return {
    host,
    webAddress: addressFlag('web-address', values['web-address'], 'http'),
    websecureAddress: addressFlag('websecure-address', values['websecure-address'], 'https'),
    dnsServer,
    timeoutMs: durationFlag('timeout', values.timeout, '5s'),
  };
}

export async function run(argv: string[]): Promise<number> {
  const opts = parseCheckArgs(argv);
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const m = marks(process.stdout.isTTY);
  const results = await runCheck({ ...opts, onStep: (r) => process.stdout.write(formatStep(r, m)) });
  return exitCodeFor(results);
}
