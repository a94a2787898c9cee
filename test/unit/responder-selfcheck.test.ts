import 'reflect-metadata';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { webcrypto } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { createResponder } from '../../src/responder/server.ts';
import { describeSelfCheckFailure, sanitizeBody, selfCheck } from '../../src/responder/selfcheck.ts';

const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
const KEY_AUTH = `${TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;
const CHALLENGE_PATH = `/.well-known/acme-challenge/${TOKEN}`;

/**
 * The self-check with a deadline no loaded test machine reaches, unless a test sets its own:
 * these tests are about what the check reports, never how fast it answers.
 */
const check = (opts: Parameters<typeof selfCheck>[0]) => selfCheck({ timeoutMs: 120_000, ...opts });

async function listen(t: ExecutionContext, server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A plain HTTP server standing in for Traefik's web entrypoint. */
function web(t: ExecutionContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  return listen(t, createHttpServer(handler));
}

/** A self-signed certificate for a.test, made fresh for each run. */
async function selfSignedCertificate(): Promise<{ key: string; cert: string }> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=a.test',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingAlgorithm: algorithm,
    keys: keys as unknown as CryptoKeyPair,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'a.test' }])],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), cert: cert.toString('pem') };
}

/** Traefik's websecure entrypoint: answers only for SNI and Host a.test. */
async function websecure(t: ExecutionContext, seen: string[]): Promise<number> {
  const { key, cert } = await selfSignedCertificate();
  const server = createHttpsServer({ key, cert }, (req, res) => {
    const sni = (req.socket as TLSSocket).servername;
    seen.push(`${sni} ${req.headers.host} ${req.url}`);
    const ok = sni === 'a.test' && req.headers.host?.split(':')[0] === 'a.test' && req.url === CHALLENGE_PATH;
    res.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(ok ? `${KEY_AUTH}\n` : 'page not found');
  });
  return listen(t, server);
}

function redirectTo(location: string) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(301, { location });
    res.end('Moved Permanently');
  };
}

test('self-check passes against the real responder', async (t) => {
  const responder = createResponder({
    lookup: (token, host) => (token === TOKEN && host === 'a.test' ? KEY_AUTH : undefined),
    port: 0,
    host: '127.0.0.1',
    isReady: () => true,
  });
  const port = await responder.listen();
  t.teardown(() => responder.close());
  const result = await check({ webAddress: `http://127.0.0.1:${port}`, host: 'a.test', token: TOKEN, expectedKeyAuth: KEY_AUTH });
  t.deepEqual(result, { ok: true });
});

test('self-check reports a 404 by its status, without the body that came back', async (t) => {
  const port = await web(t, (_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('404 page not found\n');
  });
  const result = await check({ webAddress: `http://127.0.0.1:${port}`, host: 'a.test', token: TOKEN, expectedKeyAuth: KEY_AUTH });
  t.deepEqual(result, {
    ok: false,
    kind: 'status',
    requested: `GET http://127.0.0.1:${port}${CHALLENGE_PATH} (Host: a.test)`,
    got: 'status 404',
  });
  const message = describeSelfCheckFailure(result);
  t.true(message.startsWith(`self-check GET http://127.0.0.1:${port}${CHALLENGE_PATH} (Host: a.test) returned status 404; check that the challenge route exists in Traefik`));
});

test('self-check reports a 200 whose body is not the key authorization, without quoting it', async (t) => {
  const port = await web(t, (_req, res) => res.end('<html>welcome</html>'));
  const result = await check({ webAddress: `http://127.0.0.1:${port}`, host: 'a.test', token: TOKEN, expectedKeyAuth: KEY_AUTH });
  t.like(result, { ok: false, kind: 'body', got: '200 with a body that is not the key authorization (20 bytes)' });
});

// SSRF: the URL is built from the Challenge's dnsName, which a namespace user may write.
for (const host of ['internal.example/admin?x=', 'internal.example#', 'user@internal.example', 'internal.example:8443', 'a b.example', '*.example.com', '']) {
  test(`a challenged name that is not a DNS name or IP address (${JSON.stringify(host)}) is refused and nothing is requested`, async (t) => {
    const requests: string[] = [];
    const port = await web(t, (req, res) => {
      requests.push(`${req.headers.host} ${req.url}`);
      res.end('secret internal page');
    });
    const result = await check({ webAddress: `http://127.0.0.1:${port}`, host, token: TOKEN, expectedKeyAuth: KEY_AUTH });
    t.like(result, { ok: false, kind: 'host' });
    t.deepEqual(requests, []);
    t.false(describeSelfCheckFailure(result).includes('secret'));
  });
}

test('an internal service answering the self-check does not leak its page into the message', async (t) => {
  const port = await web(t, (_req, res) => {
    res.writeHead(500);
    res.end('db password: hunter2');
  });
  const result = await check({ webAddress: `http://127.0.0.1:${port}`, host: 'internal.example', token: TOKEN, expectedKeyAuth: KEY_AUTH });
  t.like(result, { ok: false, kind: 'status' });
  t.false(describeSelfCheckFailure(result).includes('hunter2'));
});

test('IP addresses can be self-checked', async (t) => {
  const seen: string[] = [];
  const port = await web(t, (req, res) => {
    seen.push(req.headers.host ?? '');
    res.end(`${KEY_AUTH}\n`);
  });
  for (const host of ['192.0.2.7', '2001:db8::1']) {
    t.deepEqual(await check({ webAddress: `http://127.0.0.1:${port}`, host, token: TOKEN, expectedKeyAuth: KEY_AUTH }), { ok: true }, host);
  }
  t.deepEqual(seen, ['192.0.2.7', '[2001:db8::1]']);
});

test('self-check follows an http→https redirect to a self-signed websecure endpoint', async (t) => {
  const seen: string[] = [];
  const securePort = await websecure(t, seen);
  const webPort = await web(t, redirectTo(`https://a.test:${securePort}${CHALLENGE_PATH}`));
  const result = await check({ webAddress: `http://127.0.0.1:${webPort}`, host: 'a.test', token: TOKEN, expectedKeyAuth: KEY_AUTH });
  t.deepEqual(result, { ok: true });
  t.deepEqual(seen, [`a.test a.test:${securePort} ${CHALLENGE_PATH}`]);
});

test('a redirect to https without a port goes to the configured websecure address', async (t) => {
  const seen: string[] = [];
  const securePort = await websecure(t, seen);
  const webPort = await web(t, redirectTo(`https://a.test${CHALLENGE_PATH}`));
  const result = await check({
    webAddress: `http://127.0.0.1:${webPort}`,
    websecureAddress: `https://127.0.0.1:${securePort}`,
    host: 'a.test',
    token: TOKEN,
    expectedKeyAuth: KEY_AUTH,
  });
  t.deepEqual(result, { ok: true });
  t.deepEqual(seen, [`a.test a.test ${CHALLENGE_PATH}`]);
});

test('a redirect to another host fails with a clear message', async (t) => {
  const port = await web(t, redirectTo(`https://login.example.com/sso?next=${CHALLENGE_PATH}`));
  const result = await check({ webAddress: `http://127.0.0.1:${port}`, host: 'a.test', token: TOKEN, expectedKeyAuth: KEY_AUTH });
  t.like(result, { ok: false, kind: 'redirect' });
  const message = describeSelfCheckFailure(result);
  t.regex(message, /returned a redirect to another host login\.example\.com .*only redirects to a\.test are followed/);
});

test('a redirect loop stops after maxRedirects', async (t) => {
  let hits = 0;
  const port = await web(t, (req, res) => {
    hits++;
    res.writeHead(302, { location: req.url ?? '/' });
    res.end();
  });
  const result = await check({ webAddress: `http://127.0.0.1:${port}`, host: 'a.test', token: TOKEN, expectedKeyAuth: KEY_AUTH, maxRedirects: 3 });
  t.like(result, { ok: false, kind: 'redirect', got: 'more than 3 redirects' });
  t.is(hits, 4);
});

test('a refused connection is reported by its error code', async (t) => {
  const port = await web(t, (_req, res) => res.end());
  const server = createHttpServer();
  const closedPort = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : port));
    });
  });
  const result = await check({ webAddress: `http://127.0.0.1:${closedPort}`, host: 'a.test', token: TOKEN, expectedKeyAuth: KEY_AUTH });
  t.like(result, { ok: false, kind: 'connection', got: 'connection error ECONNREFUSED' });
});

test('a server that never answers is reported as a timeout', async (t) => {
  const port = await web(t, () => {});
  const result = await check({ webAddress: `http://127.0.0.1:${port}`, host: 'a.test', token: TOKEN, expectedKeyAuth: KEY_AUTH, timeoutMs: 200 });
  t.like(result, { ok: false, kind: 'timeout', got: 'no answer within 200 ms' });
});

test('body excerpts are single-line, printable and capped at 128 characters', (t) => {
  t.is(sanitizeBody('line one\r\n\tline two\u0007'), 'line one line two?');
  t.is(sanitizeBody('x'.repeat(300)), `${'x'.repeat(128)}…`);
});

test('the failure message is stable across identical failures', async (t) => {
  const port = await web(t, (_req, res) => {
    res.writeHead(503);
    res.end('no available server');
  });
  const opts = { webAddress: `http://127.0.0.1:${port}`, host: 'a.test', token: TOKEN, expectedKeyAuth: KEY_AUTH };
  const first = describeSelfCheckFailure(await check(opts));
  const second = describeSelfCheckFailure(await check(opts));
  t.is(first, second);
  t.true(first.includes('returned status 503;'));
  t.false(first.includes('no available server'));
});

for (const [address, hostHeader] of [['192.0.2.7', '192.0.2.7'], ['2001:db8::7', '[2001:db8::7]']] as const) {
  test(`the self-check for the IP address ${address} sends the literal as the Host (${hostHeader}), as an ACME validator does`, async (t) => {
    const seen: string[] = [];
    const port = await web(t, (req, res) => {
      seen.push(req.headers.host ?? '');
      res.end(`${KEY_AUTH}\n`);
    });
    const result = await check({ webAddress: `http://127.0.0.1:${port}`, host: address, token: TOKEN, expectedKeyAuth: KEY_AUTH });
    t.deepEqual(result, { ok: true });
    t.deepEqual(seen, [hostHeader]);
  });
}
