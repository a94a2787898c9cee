import test from 'ava';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import type { Challenge } from '../../src/api/types.ts';
import { ChallengeIndex, normalizeHost } from '../../src/responder/challenge-index.ts';
import { createResponder } from '../../src/responder/server.ts';
import type { ResponderOptions, ResponderOutcome } from '../../src/responder/server.ts';

const TOKEN = 'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA';
const KEY_AUTH = `${TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;

function challenge(name: string, ...mods: Array<(ch: Challenge) => void>): Challenge {
  const ch: Challenge = {
    metadata: { name, namespace: 'default' },
    spec: {
      url: 'https://acme.test/chall/1',
      authorizationURL: 'https://acme.test/authz/1',
      dnsName: 'a.test',
      type: 'HTTP-01',
      token: TOKEN,
      key: KEY_AUTH,
      solver: { http01: { ingress: {} } },
      issuerRef: { name: 'pebble', kind: 'ClusterIssuer' },
    },
    status: { presented: true },
  };
  for (const mod of mods) mod(ch);
  return ch;
}
const withToken = (token: string, key = `${token}.thumbprint`) => (ch: Challenge) => {
  ch.spec.token = token;
  ch.spec.key = key;
};
const withDnsName = (dnsName: string) => (ch: Challenge) => {
  ch.spec.dnsName = dnsName;
};
const notPresented = (ch: Challenge) => {
  ch.status = { presented: false };
};

interface Response {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

function get(port: number, path: string, host: string, method = 'GET'): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers: { host }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers: Array<[string, string]> = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          headers.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
        }
        resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Everything a client can observe about a response except the Date header. */
function observable(res: Response): unknown {
  return { status: res.status, headers: res.headers.filter(([name]) => name !== 'date'), body: res.body };
}

async function startResponder(t: { teardown: (fn: () => Promise<void>) => void }, overrides: Partial<ResponderOptions> = {}) {
  const index = new ChallengeIndex();
  index.upsert(challenge('a'));
  const outcomes: ResponderOutcome[] = [];
  const responder = createResponder({
    lookup: (token, host) => index.lookup(token, host),
    port: 0,
    host: '127.0.0.1',
    isReady: () => true,
    onRequest: (outcome) => outcomes.push(outcome),
    ...overrides,
  });
  const port = await responder.listen();
  t.teardown(() => responder.close());
  return { port, index, outcomes };
}

const challengePath = (token: string) => `/.well-known/acme-challenge/${token}`;

test('serves the key authorization when token and host match a presented challenge', async (t) => {
  const { port, outcomes } = await startResponder(t);
  const res = await get(port, challengePath(TOKEN), 'a.test');
  t.is(res.status, 200);
  t.is(res.body, KEY_AUTH);
  const headers = new Map(res.headers);
  t.is(headers.get('content-type'), 'text/plain; charset=utf-8');
  t.is(headers.get('cache-control'), 'no-cache, no-store, must-revalidate');
  t.is(headers.get('pragma'), 'no-cache');
  t.is(headers.get('x-content-type-options'), 'nosniff');
  t.deepEqual(outcomes, ['served']);
});

test('the Host header matches with any case, a port and a trailing dot', async (t) => {
  const { port } = await startResponder(t);
  for (const host of ['A.Test', 'a.test:80', 'a.test.', 'A.TEST.:8080']) {
    const res = await get(port, challengePath(TOKEN), host);
    t.is(res.status, 200, host);
    t.is(res.body, KEY_AUTH, host);
  }
});

test('HEAD answers like GET without a body', async (t) => {
  const { port } = await startResponder(t);
  const res = await get(port, challengePath(TOKEN), 'a.test', 'HEAD');
  t.is(res.status, 200);
  t.is(res.body, '');
  t.is(new Map(res.headers).get('content-length'), String(KEY_AUTH.length));
});

test('a wrong host gets a 404 identical to an unknown token', async (t) => {
  const { port, outcomes } = await startResponder(t);
  const wrongHost = await get(port, challengePath(TOKEN), 'b.test');
  const unknownToken = await get(port, challengePath('unknownTokenXYZ'), 'a.test');
  t.is(wrongHost.status, 404);
  t.deepEqual(observable(wrongHost), observable(unknownToken));
  t.false(wrongHost.body.includes(TOKEN));
  t.deepEqual(outcomes, ['not_found', 'not_found']);
});

test('every kind of unanswerable request gets the same 404', async (t) => {
  const { port, outcomes } = await startResponder(t);
  const reference = observable(await get(port, challengePath('nope'), 'a.test'));
  const probes: Array<[string, string, string]> = [
    ['GET', challengePath('bad.token'), 'a.test'],
    ['GET', challengePath('a'.repeat(257)), 'a.test'],
    ['GET', challengePath(`${TOKEN}/x`), 'a.test'],
    ['GET', challengePath(''), 'a.test'],
    ['POST', challengePath(TOKEN), 'a.test'],
    ['DELETE', challengePath(TOKEN), 'a.test'],
    ['GET', '/', 'a.test'],
    ['GET', '/.well-known/acme-challenge', 'a.test'],
    ['GET', '/etc/passwd', 'a.test'],
    ['POST', '/livez', 'a.test'],
  ];
  for (const [method, path, host] of probes) {
    t.deepEqual(observable(await get(port, path, host, method)), reference, `${method} ${path}`);
  }
  t.true(outcomes.includes('bad_request'));
  t.false(outcomes.includes('served'));
});

test('enumerating 50 random tokens yields 50 identical 404s', async (t) => {
  const { port } = await startResponder(t);
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const token = randomBytes(32).toString('base64url');
    const res = await get(port, challengePath(token), 'a.test');
    t.is(res.status, 404);
    t.false(res.body.includes(token));
    t.false(res.headers.some(([, value]) => value.includes(token)));
    seen.add(JSON.stringify(observable(res)));
  }
  t.is(seen.size, 1);
});

test('challenges that are not presented, not HTTP-01 or wildcard are never served', async (t) => {
  const { port, index } = await startResponder(t);
  index.upsert(challenge('unpresented', withToken('tokenUnpresented'), notPresented));
  index.upsert(challenge('dns', withToken('tokenDns'), (ch) => { ch.spec.type = 'DNS-01'; }));
  index.upsert(challenge('wild', withToken('tokenWild'), withDnsName('*.a.test'), (ch) => { ch.spec.wildcard = true; }));
  for (const token of ['tokenUnpresented', 'tokenDns', 'tokenWild']) {
    t.is((await get(port, challengePath(token), 'a.test')).status, 404, token);
  }
});

test('the index follows upserts and removals', async (t) => {
  const { port, index } = await startResponder(t);
  const b = challenge('b', withToken('tokenB'), withDnsName('B.test.'));
  index.upsert(b);
  t.is((await get(port, challengePath('tokenB'), 'b.test')).body, 'tokenB.thumbprint');
  index.upsert(challenge('b', withToken('tokenB'), withDnsName('b.test'), notPresented));
  t.is((await get(port, challengePath('tokenB'), 'b.test')).status, 404);
  index.upsert(b);
  index.remove(b);
  t.is((await get(port, challengePath('tokenB'), 'b.test')).status, 404);
  index.remove(challenge('a'));
  t.is(index.size, 0);
  t.is((await get(port, challengePath(TOKEN), 'a.test')).status, 404);
});

test('two challenges sharing a token are told apart by host', (t) => {
  const index = new ChallengeIndex();
  index.upsert(challenge('one', withToken('shared', 'shared.one')));
  index.upsert(challenge('two', withToken('shared', 'shared.two'), withDnsName('b.test')));
  t.is(index.lookup('shared', 'a.test'), 'shared.one');
  t.is(index.lookup('shared', 'b.test'), 'shared.two');
  index.remove(challenge('one'));
  t.is(index.lookup('shared', 'a.test'), undefined);
  t.is(index.lookup('shared', 'b.test'), 'shared.two');
});

test('host normalization strips ports, brackets and trailing dots', (t) => {
  t.is(normalizeHost('A.Test.:443'), 'a.test');
  t.is(normalizeHost('[::1]:80'), '::1');
  t.is(normalizeHost('a.test'), 'a.test');
});

test('/livez answers ok and /readyz follows isReady', async (t) => {
  let ready = false;
  const { port, outcomes } = await startResponder(t, { isReady: () => ready });
  const live = await get(port, '/livez', 'localhost');
  t.is(live.status, 200);
  t.is(live.body, 'ok\n');
  t.is((await get(port, '/readyz', 'localhost')).status, 503);
  ready = true;
  t.is((await get(port, '/readyz', 'localhost')).status, 200);
  t.deepEqual(outcomes, []);
});

/** Sends raw bytes and resolves with whatever came back once the server closes the socket. */
function rawExchange(port: number, send: (socket: ReturnType<typeof connect>) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
      reject(err);
    });
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('connect', () => send(socket));
  });
}

test('oversized request headers are refused with 431', async (t) => {
  const { port, outcomes } = await startResponder(t);
  const reply = await rawExchange(port, (socket) => {
    socket.write(`GET ${challengePath(TOKEN)} HTTP/1.1\r\nHost: a.test\r\nX-Big: ${'x'.repeat(16 * 1024)}\r\n\r\n`);
  });
  t.true(reply.startsWith('HTTP/1.1 431 '), `the reply is a 431, not ${JSON.stringify(reply.slice(0, 40))}`);
  t.false(reply.includes(KEY_AUTH));
  t.deepEqual(outcomes, ['bad_request']);
});

test('a slowloris client is cut off by the headers timeout', async (t) => {
  const { port } = await startResponder(t, { timeouts: { headersTimeoutMs: 300, requestTimeoutMs: 600 } });
  const header = `GET ${challengePath(TOKEN)} HTTP/1.1\r\nHost: a.test\r\nX-Slow: ${'y'.repeat(200)}`;
  let timer: NodeJS.Timeout | undefined;
  let sent = 0;
  const reply = await rawExchange(port, (socket) => {
    timer = setInterval(() => {
      if (socket.writable && sent < header.length) socket.write(header[sent++]!);
    }, 20);
  });
  clearInterval(timer);
  t.true(sent < header.length, 'the server closed the connection before the headers were complete');
  t.false(reply.includes(KEY_AUTH));
});

test('a request body is never read and the connection is closed after the 404', async (t) => {
  const { port } = await startResponder(t);
  const reply = await rawExchange(port, (socket) => {
    socket.write(`POST ${challengePath(TOKEN)} HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello`);
  });
  t.true(reply.startsWith('HTTP/1.1 404'));
  t.regex(reply, /\r\nConnection: close\r\n/i);
});

test('the info line for a served challenge clips the Host header the client sent', async (t) => {
  // normalizeHost drops everything after a ':', so a 7 KB "port" still matches the challenge.
  const lines: Array<Record<string, unknown>> = [];
  const logger = { debug: () => undefined, warn: () => undefined, info: (obj: Record<string, unknown>) => void lines.push(obj) };
  const { port } = await startResponder(t, { logger: logger as unknown as ResponderOptions['logger'] });
  const host = `a.test:${'9'.repeat(7_000)}`;
  const res = await get(port, challengePath(TOKEN), host);
  t.is(res.status, 200, 'served: the padding rides in the port');
  t.is(lines.length, 1);
  const logged = String(lines[0]?.host);
  t.true(logged.length <= 257, `logged ${logged.length} characters`);
  t.true(logged.startsWith('a.test:999'));
});
