/**
 * `certroute check`: each step's verdict, first as pure decisions over fixtures, then against
 * real loopback servers started here — a DNS server, the real certroute responder behind a small
 * proxy standing in for Traefik, Traefik's own 404, a dead backend, a catch-all, a redirect to
 * https, and TLS servers with certificates made by certroute's pki.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { X509Certificate } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer, request, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, createSecureContext } from 'node:tls';
import {
  dnsVerdict, exitCodeFor, fetchServedCertificate, formatStep, parseCheckArgs, probeRoute, resolveHost,
  routeVerdict, runCheck, tlsVerdict, type ObservedResponse, type RouteProbe, type StepResult, type Verdict,
} from '../../src/cli/check.ts';
import { UsageError } from '../../src/cli/args.ts';
import { PLAIN_MARKS, TTY_MARKS } from '../../src/cli/progress.ts';
import { createResponder, isResponderNotFound, NOT_FOUND_BODY as RESPONDER_NOT_FOUND_BODY } from '../../src/responder/server.ts';
import { DAY, selfSigned, type KeyAndChain } from '../helpers/builders.ts';

const quiet = { progress: { delayMs: 60_000 } };

// ── servers ─────────────────────────────────────────────────────────────────

async function listen(t: ExecutionContext, server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

/** The real certroute responder, knowing no token. */
async function responder(t: ExecutionContext): Promise<number> {
  const r = createResponder({ lookup: () => undefined, port: 0, host: '127.0.0.1', isReady: () => true });
  const port = await r.listen();
  t.teardown(() => r.close());
  return port;
}

/** What Traefik does for a matched router: pass the request on and the answer back, headers intact. */
const proxyTo = (port: number): RequestListener => (req, res) => {
  const upstream = request({ host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => {
    res.writeHead(502, { 'content-length': '11' });
    res.end('Bad Gateway');
  });
  req.pipe(upstream);
};

/** Traefik's answer when no router matches: Go's http.NotFound. */
const traefikNotFound: RequestListener = (_req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
  res.end('404 page not found\n');
};

const fixed = (status: number, body: string, headers: Record<string, string> = {}): RequestListener => (_req, res) => {
  res.writeHead(status, headers);
  res.end(body);
};

const web = async (t: ExecutionContext, handler: RequestListener) => `http://127.0.0.1:${await listen(t, createServer(handler))}`;

/** A TLS endpoint serving `chain` to everyone, and recording the SNI it was asked for. */
async function tlsEndpoint(t: ExecutionContext, chain: KeyAndChain, seen: string[] = []): Promise<string> {
  const context = createSecureContext({ key: chain.keyPem, cert: chain.certificatePem });
  const server = createTlsServer({ key: chain.keyPem, cert: chain.certificatePem, SNICallback: (name, cb) => {
    seen.push(name);
    cb(null, context);
  } }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

type Zone = Record<string, { A?: string[]; AAAA?: string[] }>;

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Answers A and AAAA queries from `zone`; a name not in it is NXDOMAIN. */
function dnsAnswer(query: Buffer, zone: Zone): Buffer {
  let offset = 12;
  const labels: string[] = [];
  while (query[offset]) {
    const length = query[offset] ?? 0;
    labels.push(query.subarray(offset + 1, offset + 1 + length).toString('ascii'));
    offset += length + 1;
  }
  const qtype = query.readUInt16BE(offset + 1);
  const question = query.subarray(12, offset + 5);
  const records = zone[labels.join('.').toLowerCase()];
  const addresses = !records ? [] : qtype === 1 ? (records.A ?? []) : qtype === 28 ? (records.AAAA ?? []) : [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  header.writeUInt16BE(0x8580 | (records ? 0 : 3), 2); // response, authoritative, recursion, NOERROR or NXDOMAIN
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const answers = addresses.map((ip) => {
    const rdata = ipBytes(ip);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  return Buffer.concat([header, question, ...answers]);
}

async function dnsServer(t: ExecutionContext, zone: Zone): Promise<string> {
  const socket = createSocket('udp4');
  socket.on('message', (query, peer) => socket.send(dnsAnswer(query, zone), peer.port, peer.address));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return `127.0.0.1:${socket.address().port}`;
}

// ── 1. DNS ──────────────────────────────────────────────────────────────────

test('DNS verdicts: the AAAA address is used first, as validators do; a miss says why', (t) => {
  const table: Array<{ name: string; aaaa: { addresses?: string[]; code?: string }; a: { addresses?: string[]; code?: string }; verdict: Verdict; address?: string; summary: RegExp }> = [
    { name: 'A only', aaaa: { code: 'ENODATA' }, a: { addresses: ['192.0.2.1'] }, verdict: 'pass', address: '192.0.2.1', summary: /^a\.test resolves to 192\.0\.2\.1 via 127\.0\.0\.1:53$/ },
    { name: 'both', aaaa: { addresses: ['2001:db8::1'] }, a: { addresses: ['192.0.2.1'] }, verdict: 'pass', address: '2001:db8::1', summary: /resolves to 2001:db8::1/ },
    { name: 'NXDOMAIN', aaaa: { code: 'ENOTFOUND' }, a: { code: 'ENOTFOUND' }, verdict: 'fail', summary: /^a\.test does not resolve: no such name \(NXDOMAIN\) via 127\.0\.0\.1:53$/ },
    { name: 'no records', aaaa: { code: 'ENODATA' }, a: { code: 'ENODATA' }, verdict: 'fail', summary: /does not resolve: the name exists but has no A or AAAA record/ },
    { name: 'server silent', aaaa: { code: 'ETIMEOUT' }, a: { code: 'ETIMEOUT' }, verdict: 'fail', summary: /does not resolve: the DNS server did not answer/ },
    { name: 'unknown code', aaaa: { code: 'EWEIRD' }, a: { code: 'EWEIRD' }, verdict: 'fail', summary: /does not resolve: EWEIRD/ },
  ];
  for (const row of table) {
    const { result, address } = dnsVerdict('a.test', '127.0.0.1:53', row.aaaa, row.a);
    t.is(result.step, 'DNS');
    t.is(result.verdict, row.verdict, row.name);
    t.is(address, row.address, row.name);
    t.regex(result.summary, row.summary, row.name);
  }
});

test('DNS against a real server: names resolve, AAAA wins, NXDOMAIN and empty names fail, IPs need no lookup', async (t) => {
  const server = await dnsServer(t, { 'a.test': { A: ['127.0.0.1'] }, 'v6.test': { A: ['127.0.0.1'], AAAA: ['::1'] }, 'empty.test': {} });
  const table: Array<[host: string, verdict: Verdict, address: string | undefined, summary: RegExp]> = [
    ['a.test', 'pass', '127.0.0.1', /a\.test resolves to 127\.0\.0\.1 via/],
    ['A.Test', 'pass', '127.0.0.1', /resolves/],
    ['v6.test', 'pass', '::1', /resolves to ::1/],
    ['nx.test', 'fail', undefined, /^nx\.test does not resolve: no such name \(NXDOMAIN\)/],
    ['empty.test', 'fail', undefined, /no A or AAAA record/],
    ['127.0.0.1', 'pass', '127.0.0.1', /is an IP address/],
  ];
  for (const [host, verdict, address, summary] of table) {
    const got = await resolveHost(host, server, 60_000); // a deadline no loaded machine reaches: the verdicts are under test
    t.is(got.result.verdict, verdict, host);
    t.is(got.address, address, host);
    t.regex(got.result.summary, summary, host);
  }
});

// ── 2–3. route and responder: pure verdicts ─────────────────────────────────

const responderHeaders = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache, no-store, must-revalidate', pragma: 'no-cache', 'x-content-type-options': 'nosniff' };
const response = (status: number, body: string, headers: Record<string, string> = {}): ObservedResponse => ({ url: 'http://127.0.0.1/x', status, headers, body });
const statusProbe = (r: ObservedResponse, extra: ObservedResponse[] = []): RouteProbe => ({
  result: { ok: false, kind: 'status', requested: 'GET …', got: `${r.status}: '${r.body.trim()}'` },
  responses: [...extra, r],
});

test('the responder’s 404 is told from Traefik’s by its no-cache headers, since the bodies are the same', (t) => {
  t.true(isResponderNotFound(response(404, RESPONDER_NOT_FOUND_BODY, responderHeaders)));
  t.false(isResponderNotFound(response(404, '404 page not found\n', { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' })), 'Traefik’s own 404');
  t.false(isResponderNotFound(response(404, 'not found', responderHeaders)), 'another body');
  t.false(isResponderNotFound(response(200, RESPONDER_NOT_FOUND_BODY, responderHeaders)), 'another status');
});

test('route and responder verdicts, one case per answer', (t) => {
  const table: Array<{ name: string; probe: RouteProbe; route: Verdict; responder: Verdict; summary: RegExp }> = [
    { name: 'the responder answered', probe: statusProbe(response(404, RESPONDER_NOT_FOUND_BODY, responderHeaders)), route: 'pass', responder: 'pass', summary: /routes http:\/\/a\.test\/\.well-known\/acme-challenge\/ to the certroute responder$/ },
    { name: 'the responder answered after a redirect', probe: statusProbe(response(404, RESPONDER_NOT_FOUND_BODY, responderHeaders), [response(308, '')]), route: 'pass', responder: 'pass', summary: /to the certroute responder \(after 1 redirect\)$/ },
    { name: 'Traefik’s own 404', probe: statusProbe(response(404, '404 page not found\n', { 'x-content-type-options': 'nosniff' })), route: 'fail', responder: 'skip', summary: /no Traefik router matches .*: Traefik answered its own 404/ },
    { name: 'bad gateway', probe: statusProbe(response(502, 'Bad Gateway')), route: 'pass', responder: 'fail', summary: /Traefik has a route/ },
    { name: 'service unavailable', probe: statusProbe(response(503, 'no available server')), route: 'pass', responder: 'fail', summary: /Traefik has a route/ },
    { name: 'an auth middleware', probe: statusProbe(response(401, 'Unauthorized')), route: 'fail', responder: 'skip', summary: /something other than certroute answers .*: 401/ },
    { name: 'a catch-all service', probe: { result: { ok: false, kind: 'body', requested: 'GET …', got: "200 with a different body: '<html>'" }, responses: [response(200, '<html>')] }, route: 'fail', responder: 'skip', summary: /another service answers/ },
    { name: 'connection refused', probe: { result: { ok: false, kind: 'connection', requested: 'GET …', got: 'connection error ECONNREFUSED' }, responses: [] }, route: 'fail', responder: 'skip', summary: /cannot reach Traefik's web entrypoint: connection error ECONNREFUSED/ },
    { name: 'a timeout', probe: { result: { ok: false, kind: 'timeout', requested: 'GET …', got: 'no answer within 5000 ms' }, responses: [] }, route: 'fail', responder: 'skip', summary: /cannot reach .*no answer within/ },
    { name: 'a redirect elsewhere', probe: { result: { ok: false, kind: 'redirect', requested: 'GET …', got: 'a redirect to another host b.test' }, responses: [response(301, '')] }, route: 'fail', responder: 'skip', summary: /with a redirect to another host b\.test/ },
  ];
  for (const row of table) {
    const { route, responder } = routeVerdict('a.test', row.probe);
    t.is(route.verdict, row.route, `${row.name}: route`);
    t.is(responder.verdict, row.responder, `${row.name}: responder`);
    t.regex(route.summary, row.summary, row.name);
    if (route.verdict === 'fail') t.true(route.details.some((d) => d.startsWith('request: ')), `${row.name}: says what was requested`);
  }
});

test('a dead backend behind the route names the responder Service as the thing to check', (t) => {
  const { responder } = routeVerdict('a.test', statusProbe(response(502, 'Bad Gateway')));
  t.regex(responder.summary, /the route's backend does not answer: Traefik returned 502/);
  t.true(responder.details.some((d) => /responder Service has ready endpoints/.test(d)));
});

// ── 2–3. route and responder: real servers ──────────────────────────────────

test('the responder’s 404 as certroute check recognises it is exactly what the real responder sends, headers included', async (t) => {
  const port = await responder(t);
  const probe = await probeRoute({ host: 'a.test', webAddress: `http://127.0.0.1:${port}`, timeoutMs: 30_000 });
  const last = probe.responses.at(-1);
  t.is(last?.body, RESPONDER_NOT_FOUND_BODY);
  t.true(last !== undefined && isResponderNotFound(last));
});

test('through a Traefik that routes to the responder: route and responder pass', async (t) => {
  const traefik = await web(t, proxyTo(await responder(t)));
  const { route, responder: r } = routeVerdict('a.test', await probeRoute({ host: 'a.test', webAddress: traefik, timeoutMs: 30_000 }));
  t.is(route.verdict, 'pass');
  t.is(r.verdict, 'pass');
});

test('through a Traefik that redirects to https first: the redirect is followed to websecure, with SNI', async (t) => {
  const backend = await responder(t);
  const redirect = await web(t, (req, res) => {
    res.writeHead(308, { location: `https://${req.headers.host}${req.url}` });
    res.end();
  });
  const chain = await selfSigned({ dnsNames: ['a.test'] });
  const sni: string[] = [];
  const https = createHttpsServer({ key: chain.keyPem, cert: chain.certificatePem, SNICallback: (name, cb) => {
    sni.push(name);
    cb(null, createSecureContext({ key: chain.keyPem, cert: chain.certificatePem }));
  } }, proxyTo(backend));
  const websecure = `https://127.0.0.1:${await listen(t, https)}`;
  const probe = await probeRoute({ host: 'a.test', webAddress: redirect, websecureAddress: websecure, timeoutMs: 30_000 });
  const { route, responder: r } = routeVerdict('a.test', probe);
  t.is(route.verdict, 'pass', route.summary);
  t.regex(route.summary, /after 1 redirect/);
  t.is(r.verdict, 'pass');
  t.deepEqual(sni, ['a.test']);
});

test('answers that are not the responder’s, from real servers', async (t) => {
  const table: Array<{ name: string; handler: RequestListener; route: Verdict; responder: Verdict }> = [
    { name: 'Traefik’s own 404', handler: traefikNotFound, route: 'fail', responder: 'skip' },
    { name: 'a dead backend', handler: proxyTo(1), route: 'pass', responder: 'fail' },
    { name: 'a catch-all', handler: fixed(200, '<html>shop</html>'), route: 'fail', responder: 'skip' },
    { name: 'basic auth', handler: fixed(401, 'Unauthorized', { 'www-authenticate': 'Basic' }), route: 'fail', responder: 'skip' },
    { name: 'a redirect to another host', handler: fixed(302, '', { location: 'https://login.example/' }), route: 'fail', responder: 'skip' },
  ];
  for (const row of table) {
    const address = await web(t, row.handler);
    const { route, responder: r } = routeVerdict('a.test', await probeRoute({ host: 'a.test', webAddress: address, timeoutMs: 30_000 }));
    t.is(route.verdict, row.route, `${row.name}: ${route.summary}`);
    t.is(r.verdict, row.responder, `${row.name}: ${r.summary}`);
  }
});

test('nothing listening: the route fails with the connection error', async (t) => {
  const { route } = routeVerdict('a.test', await probeRoute({ host: 'a.test', webAddress: 'http://127.0.0.1:1', timeoutMs: 30_000 }));
  t.is(route.verdict, 'fail');
  t.regex(route.summary, /ECONNREFUSED/);
});

// ── 4. TLS ──────────────────────────────────────────────────────────────────

const now = new Date();
const served = (chain: KeyAndChain) => ({ cert: new X509Certificate(chain.certificatePem), authorized: false, authorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT' });

test('TLS verdicts: the served certificate must cover the host and be valid now', async (t) => {
  const table: Array<{ name: string; host?: string; chain: KeyAndChain; verdict: Verdict; summary: RegExp }> = [
    { name: 'covers the host', chain: await selfSigned({ dnsNames: ['a.test'] }), verdict: 'pass', summary: /^127\.0\.0\.1:8443 \(SNI a\.test\) serves a certificate for a\.test, expiring in 8\dd$/ },
    { name: 'a wildcard covers one label', host: 'a.shop.test', chain: await selfSigned({ dnsNames: ['*.shop.test'] }), verdict: 'pass', summary: /serves a certificate for a\.shop\.test/ },
    { name: 'a wildcard does not cover two labels', host: 'a.b.shop.test', chain: await selfSigned({ dnsNames: ['*.shop.test'] }), verdict: 'fail', summary: /does not cover a\.b\.shop\.test/ },
    { name: 'another name', chain: await selfSigned({ dnsNames: ['b.test'] }), verdict: 'fail', summary: /does not cover a\.test/ },
    { name: 'a common name alone does not count', chain: await selfSigned({ commonName: 'a.test', dnsNames: ['b.test'] }), verdict: 'fail', summary: /does not cover a\.test/ },
    { name: 'expired', chain: await selfSigned({ dnsNames: ['a.test'], notBefore: new Date(now.getTime() - 100 * DAY), durationMs: 90 * DAY }), verdict: 'fail', summary: /expired 10d ago/ },
    { name: 'not yet valid', chain: await selfSigned({ dnsNames: ['a.test'], notBefore: new Date(now.getTime() + DAY) }), verdict: 'fail', summary: /not valid until/ },
    { name: 'Traefik’s default certificate', chain: await selfSigned({ commonName: 'TRAEFIK DEFAULT CERT', dnsNames: ['abc.traefik.default'] }), verdict: 'fail', summary: /serves Traefik's default certificate: Traefik has no certificate for a\.test/ },
  ];
  for (const row of table) {
    const result = tlsVerdict(row.host ?? 'a.test', '127.0.0.1:8443', served(row.chain), now);
    t.is(result.verdict, row.verdict, row.name);
    t.regex(result.summary, row.summary, row.name);
  }
});

test('the TLS step reports subject, issuer, SANs, notAfter and trust', async (t) => {
  const chain = await selfSigned({ commonName: 'a.test', dnsNames: ['a.test', 'www.a.test'] });
  const { details } = tlsVerdict('a.test', '127.0.0.1:8443', served(chain), now);
  t.is(details[0], 'subject: CN=a.test');
  t.is(details[1], 'issuer: CN=a.test');
  t.is(details[2], 'SANs: DNS:a.test, DNS:www.a.test');
  t.regex(details[3] ?? '', /^notAfter: \d{4}-\d\d-\d\dT.*Z \(in 8\dd\)$/);
  t.is(details[4], "trust: not accepted by this machine's CA store (DEPTH_ZERO_SELF_SIGNED_CERT)");
});

test('an IP host is checked against IP SANs', async (t) => {
  const chain = await selfSigned({ dnsNames: [], ipAddresses: ['127.0.0.1'], commonName: 'ip' });
  t.is(tlsVerdict('127.0.0.1', '127.0.0.1:8443', served(chain), now).verdict, 'pass');
  t.is(tlsVerdict('127.0.0.2', '127.0.0.1:8443', served(chain), now).verdict, 'fail');
});

test('no TLS at all is a failure that names the address', (t) => {
  const result = tlsVerdict('a.test', '127.0.0.1:8443', { error: 'ECONNREFUSED' }, now);
  t.is(result.verdict, 'fail');
  t.is(result.summary, 'no TLS from 127.0.0.1:8443 (SNI a.test): ECONNREFUSED');
});

test('fetchServedCertificate asks with SNI = host and returns the leaf unverified', async (t) => {
  const chain = await selfSigned({ dnsNames: ['a.test'] });
  const sni: string[] = [];
  const endpoint = await tlsEndpoint(t, chain, sni);
  const got = await fetchServedCertificate('a.test', new URL(endpoint), 2_000);
  t.deepEqual(sni, ['a.test']);
  t.is(got.cert.subjectAltName, 'DNS:a.test');
  t.false(got.authorized);
});

// ── the whole check ─────────────────────────────────────────────────────────

test('all four steps pass for a host that resolves, routes to the responder and serves its certificate', async (t) => {
  const dns = await dnsServer(t, { 'a.test': { A: ['127.0.0.1'] } });
  const traefikWeb = await web(t, proxyTo(await responder(t)));
  const websecure = await tlsEndpoint(t, await selfSigned({ dnsNames: ['a.test'] }));
  const seen: StepResult[] = [];
  const results = await runCheck({ host: 'a.test', dnsServer: dns, webAddress: traefikWeb, websecureAddress: websecure, timeoutMs: 30_000, onStep: (r) => seen.push(r), ...quiet });
  t.deepEqual(results.map((r) => `${r.step}:${r.verdict}`), ['DNS:pass', 'route:pass', 'responder:pass', 'TLS:pass']);
  t.deepEqual(seen, results, 'each step is reported as it finishes');
  t.is(exitCodeFor(results), 0);
});

test('a host that does not resolve and no addresses given: DNS fails and the rest is skipped', async (t) => {
  const dns = await dnsServer(t, {});
  const results = await runCheck({ host: 'nx.test', dnsServer: dns, timeoutMs: 30_000, ...quiet });
  t.deepEqual(results.map((r) => `${r.step}:${r.verdict}`), ['DNS:fail', 'route:skip', 'responder:skip', 'TLS:skip']);
  t.is(results[0]?.summary, `nx.test does not resolve: no such name (NXDOMAIN) via ${dns}`);
  t.is(exitCodeFor(results), 1);
});

test('with --web-address the route is still checked when DNS fails', async (t) => {
  const dns = await dnsServer(t, {});
  const traefikWeb = await web(t, traefikNotFound);
  const websecure = await tlsEndpoint(t, await selfSigned({ commonName: 'TRAEFIK DEFAULT CERT', dnsNames: ['x.traefik.default'] }));
  const results = await runCheck({ host: 'nx.test', dnsServer: dns, webAddress: traefikWeb, websecureAddress: websecure, timeoutMs: 30_000, ...quiet });
  t.deepEqual(results.map((r) => `${r.step}:${r.verdict}`), ['DNS:fail', 'route:fail', 'responder:skip', 'TLS:fail']);
});

test('each step prints one line with ✓/✗ on a TTY, ok/FAIL in a pipe, and its details indented', (t) => {
  const pass: StepResult = { step: 'DNS', verdict: 'pass', summary: 'a.test resolves to 127.0.0.1', details: ['A: 127.0.0.1'] };
  const fail: StepResult = { step: 'route', verdict: 'fail', summary: 'no Traefik router matches', details: [] };
  const skip: StepResult = { step: 'responder', verdict: 'skip', summary: 'not reached', details: [] };
  t.is(formatStep(pass, TTY_MARKS), '✓ DNS: a.test resolves to 127.0.0.1\n    A: 127.0.0.1\n');
  t.is(formatStep(fail, TTY_MARKS), '✗ route: no Traefik router matches\n');
  t.is(formatStep(pass, PLAIN_MARKS), 'ok   DNS: a.test resolves to 127.0.0.1\n       A: 127.0.0.1\n');
  t.is(formatStep(fail, PLAIN_MARKS), 'FAIL route: no Traefik router matches\n');
  t.is(formatStep(skip, PLAIN_MARKS), 'skip responder: not reached\n');
});

test('exit code 0 only when every step passed', (t) => {
  const r = (verdict: StepResult['verdict']): StepResult => ({ step: 'DNS', verdict, summary: '', details: [] });
  t.is(exitCodeFor([r('pass'), r('pass')]), 0);
  t.is(exitCodeFor([r('pass'), r('fail')]), 1);
  t.is(exitCodeFor([r('pass'), r('skip')]), 1);
});

// ── arguments ───────────────────────────────────────────────────────────────

test('arguments: a bare host and addresses with or without a scheme', (t) => {
  t.like(parseCheckArgs(['a.test']), { host: 'a.test', webAddress: undefined, websecureAddress: undefined, timeoutMs: 5_000 });
  t.like(parseCheckArgs(['a.test.', '--web-address', '10.0.0.1:8080', '--websecure-address', 'traefik:8443', '--dns-server', '127.0.0.1:8053', '--timeout', '2s']), {
    host: 'a.test',
    webAddress: 'http://10.0.0.1:8080',
    websecureAddress: 'https://traefik:8443',
    dnsServer: '127.0.0.1:8053',
    timeoutMs: 2_000,
  });
  t.like(parseCheckArgs(['--help']), { help: true });
});

test('usage errors name the bad argument', (t) => {
  const table: Array<[string[], RegExp]> = [
    [[], /exactly one host/],
    [['a.test', 'b.test'], /exactly one host/],
    [['https://a.test/'], /not a host name/],
    [['a.test', '--web-address', 'ftp://x'], /--web-address=ftp:\/\/x: use http or https/],
    [['a.test', '--web-address', 'http://[bad'], /--web-address=.*not a URL/],
    [['a.test', '--dns-server', 'dns.example'], /--dns-server=dns\.example/],
    [['a.test', '--timeout', 'soon'], /--timeout=soon: not a duration/],
    [['a.test', '--nope'], /Unknown option/],
  ];
  for (const [argv, message] of table) {
    const err = t.throws(() => parseCheckArgs(argv), { instanceOf: UsageError }, argv.join(' '));
    t.regex(err?.message ?? '', message, argv.join(' '));
  }
});
