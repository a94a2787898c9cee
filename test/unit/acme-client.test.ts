/**
 * How an ACME failure becomes one of the three outcomes (docs/ARCHITECTURE.md, decision 3): a 429/503 is transient and
 * names its own delay (RetryAfterError), another 4xx problem is permanent (AcmeProblemError), a
 * 5xx or a network error is transient with back-off (plain Error).
 *
 * `call()` learns the status from acme-client's global axios instance through an interceptor, so
 * these tests make a real HTTP exchange with a loopback server through `acme.axios`, exactly as
 * acme-client does (every status resolves; acme-client then throws from the problem document).
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { acme, AcmeProblemError, call, createClient, directoryProblem, MAX_RESPONSE_BYTES, MAX_RETRY_AFTER_MS, observeRequests, parseRetryAfter } from '../../src/acme/client.ts';

const accountKey = (await acme.crypto.createPrivateKey()).toString();
import { RetryAfterError } from '../../src/base/errors.ts';

// ── parseRetryAfter ─────────────────────────────────────────────────────────

test('Retry-After is read as seconds or as an HTTP-date; anything else is ignored', (t) => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const table: Array<[string | undefined, number | undefined]> = [
    ['120', 120_000],
    ['0', 0],
    ['Tue, 01 Jan 2030 00:01:30 GMT', 90_000],
    ['Mon, 31 Dec 2029 23:00:00 GMT', 0],
    [undefined, undefined],
    ['', undefined],
    ['soon', undefined],
    ['Tue, 99 Foo 2030', undefined],
  ];
  for (const [value, ms] of table) t.is(parseRetryAfter(value, now), ms, JSON.stringify(value));
});

test('a negative Retry-After is no wait at all', (t) => {
  t.is(parseRetryAfter('-30'), 0);
});

test('a Retry-After of more than a day is capped at a day', (t) => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  t.is(parseRetryAfter('3000000', now), MAX_RETRY_AFTER_MS);
  t.is(parseRetryAfter('1e300', now), MAX_RETRY_AFTER_MS);
  t.is(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', now), MAX_RETRY_AFTER_MS);
  t.is(MAX_RETRY_AFTER_MS, 24 * 3600_000);
});

// ── call() against a loopback server ────────────────────────────────────────

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** A stand-in CA: each path answers with a fixed status, headers and JSON body. */
async function fakeCa(t: ExecutionContext, routes: Record<string, Reply>): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const reply = routes[req.url ?? ''] ?? { status: 404, body: { type: 'urn:ietf:params:acme:error:malformed', detail: 'no such path' } };
    const body = reply.body === undefined ? '' : JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': reply.status >= 400 ? 'application/problem+json' : 'application/json', ...reply.headers });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * What acme-client does for one step: send the request with every status
 * accepted, then throw from the problem document when the status is an error.
 */
function acmeStep(url: string): () => Promise<unknown> {
  return async () => {
    const res = await acme.axios.get(url, { validateStatus: null });
    if (res.status >= 400) {
      const problem = res.data as { detail?: string };
      throw new Error(problem?.detail ?? `HTTP ${res.status}`);
    }
    return res.data;
  };
}

const problem = (type: string, detail: string) => ({ type: `urn:ietf:params:acme:error:${type}`, detail, status: 0 });

test('a 429 with Retry-After in seconds is a RetryAfterError that waits that long', async (t) => {
  const ca = await fakeCa(t, { '/new-order': { status: 429, headers: { 'retry-after': '7' }, body: problem('rateLimited', 'too many new orders') } });
  const err = await t.throwsAsync(call('create order', acmeStep(`${ca}/new-order`)));
  t.true(err instanceof RetryAfterError);
  t.is((err as RetryAfterError).retryAfterMs, 7_000);
  t.regex(err?.message ?? '', /^ACME create order: the CA answered 429, retry after 7s: too many new orders$/);
  t.truthy(err?.cause, 'the original error is kept as the cause');
});

test('a 503 with an HTTP-date Retry-After is a RetryAfterError until that date', async (t) => {
  const at = new Date(Date.now() + 60_000).toUTCString();
  const ca = await fakeCa(t, { '/order/1': { status: 503, headers: { 'retry-after': at }, body: problem('serverInternal', 'maintenance') } });
  const before = Date.now();
  const err = await t.throwsAsync(call('get order', acmeStep(`${ca}/order/1`)));
  const after = Date.now();
  t.true(err instanceof RetryAfterError);
  // The delay is what remains until that date when the answer was read, however long the call took.
  const ms = (err as RetryAfterError).retryAfterMs;
  t.true(ms >= Date.parse(at) - after && ms <= Date.parse(at) - before, `${ms} ms`);
});

test('a 429 without Retry-After is still transient, with no delay of its own (the queue backs off)', async (t) => {
  const ca = await fakeCa(t, { '/new-order': { status: 429, body: problem('rateLimited', 'slow down') } });
  const err = await t.throwsAsync(call('create order', acmeStep(`${ca}/new-order`)));
  t.true(err instanceof RetryAfterError);
  t.is((err as RetryAfterError).retryAfterMs, 0);
  t.notRegex(err?.message ?? '', /retry after/);
});

test('a 4xx problem is permanent: AcmeProblemError with the status and the problem type', async (t) => {
  const table: Array<[number, string]> = [[400, 'rejectedIdentifier'], [403, 'unauthorized'], [404, 'malformed'], [400, 'caa']];
  for (const [status, type] of table) {
    const ca = await fakeCa(t, { '/finalize/1': { status, body: problem(type, `${type} detail`) } });
    const err = await t.throwsAsync(call('finalize order', acmeStep(`${ca}/finalize/1`)));
    t.true(err instanceof AcmeProblemError, `${status} ${type}`);
    t.is((err as AcmeProblemError).status, status);
    t.is((err as AcmeProblemError).type, `urn:ietf:params:acme:error:${type}`);
    t.is(err?.message, `ACME finalize order: ${type} detail`);
  }
});

test('a badNonce 400 is transient: a fresh nonce on the next pass fixes it', async (t) => {
  const ca = await fakeCa(t, { '/new-order': { status: 400, body: problem('badNonce', 'JWS has an invalid anti-replay nonce') } });
  const err = await t.throwsAsync(call('create order', acmeStep(`${ca}/new-order`)));
  t.false(err instanceof AcmeProblemError);
  t.false(err instanceof RetryAfterError);
  t.regex(err?.message ?? '', /will retry/);
});

test('a 500 is transient: a plain Error the queue retries with back-off', async (t) => {
  const ca = await fakeCa(t, { '/authz/1': { status: 500, body: problem('serverInternal', 'database unavailable') } });
  const err = await t.throwsAsync(call('get authorizations', acmeStep(`${ca}/authz/1`)));
  t.false(err instanceof AcmeProblemError);
  t.false(err instanceof RetryAfterError);
  t.is(err?.message, 'ACME get authorizations failed (will retry): database unavailable');
});

test('a connection error is transient', async (t) => {
  const ca = await fakeCa(t, {});
  const closed = ca.replace(/:\d+$/, ':1');
  const err = await t.throwsAsync(call('get directory', acmeStep(`${closed}/dir`)));
  t.false(err instanceof AcmeProblemError);
  t.false(err instanceof RetryAfterError);
  t.regex(err?.message ?? '', /^ACME get directory failed \(will retry\)/);
});

test('a throw after a successful response (say, an unreadable body) is transient', async (t) => {
  const ca = await fakeCa(t, { '/cert/1': { status: 200, body: { ok: true } } });
  const err = await t.throwsAsync(call('download certificate', async () => {
    await acmeStep(`${ca}/cert/1`)();
    throw new Error('no PEM in the response');
  }));
  t.false(err instanceof AcmeProblemError);
  t.regex(err?.message ?? '', /will retry.*no PEM/);
});

test('the last response decides: a 429 followed by a successful request and a throw is not a 429', async (t) => {
  const ca = await fakeCa(t, {
    '/limited': { status: 429, headers: { 'retry-after': '5' }, body: problem('rateLimited', 'x') },
    '/ok': { status: 200, body: {} },
  });
  const err = await t.throwsAsync(call('step', async () => {
    await acme.axios.get(`${ca}/limited`, { validateStatus: null });
    await acme.axios.get(`${ca}/ok`, { validateStatus: null });
    throw new Error('later failure');
  }));
  t.false(err instanceof RetryAfterError);
});

test('a successful call returns its value unchanged', async (t) => {
  const ca = await fakeCa(t, { '/dir': { status: 200, body: { newOrder: 'x' } } });
  t.deepEqual(await call('get directory', acmeStep(`${ca}/dir`)), { newOrder: 'x' });
});

test('concurrent calls are classified by their own responses', async (t) => {
  const ca = await fakeCa(t, {
    '/a': { status: 429, headers: { 'retry-after': '3' }, body: problem('rateLimited', 'a') },
    '/b': { status: 400, body: problem('rejectedIdentifier', 'b') },
    '/c': { status: 500, body: problem('serverInternal', 'c') },
  });
  const results = await Promise.allSettled([
    call('a', acmeStep(`${ca}/a`)),
    call('b', acmeStep(`${ca}/b`)),
    call('c', acmeStep(`${ca}/c`)),
  ]);
  const kinds = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).name : 'ok'));
  t.deepEqual(kinds, ['RetryAfterError', 'AcmeProblemError', 'AcmeServerError']);
});

test('request observers see scheme, host, a bounded action, method and status (for the ACME client metrics)', async (t) => {
  const seen: Array<{ action: string; method: string; status: string; scheme: string; host: string }> = [];
  observeRequests((info) => seen.push(info));
  const ca = await fakeCa(t, {
    '/acme/new-order': { status: 201, body: {} },
    '/acme/order/123/abc': { status: 200, body: {} },
    '/acme/chall/9': { status: 400, body: problem('malformed', 'x') },
  });
  createClient({ directoryUrl: `${ca}/dir`, accountKeyPem: accountKey, tls: {} });
  await call('create order', acmeStep(`${ca}/acme/new-order`));
  await call('get order', acmeStep(`${ca}/acme/order/123/abc`));
  await call('complete challenge', acmeStep(`${ca}/acme/chall/9`)).catch(() => undefined);
  const host = new URL(ca).host;
  t.deepEqual(seen.filter((s) => s.host === host).map(({ scheme, action, method, status }) => ({ scheme, action, method, status })), [
    { scheme: 'http', action: 'new-order', method: 'GET', status: '201' },
    { scheme: 'http', action: 'order', method: 'GET', status: '200' },
    { scheme: 'http', action: 'chall', method: 'GET', status: '400' },
  ]);
});

test('Pebble\'s and Let\'s Encrypt\'s paths keep their own action labels', async (t) => {
  const seen: Array<{ action: string; host: string; path: string }> = [];
  observeRequests((info) => seen.push({ ...info, path: '' }));
  const paths = ['/sign-me-up', '/order-plz', '/my-order/1', '/authZ/x', '/chalZ/y', '/finalize-order/2', '/certZ/3', '/acme/new-acct', '/acme/chall-v3/4/z', '/acme/renewal-info/5'];
  const ca = await fakeCa(t, Object.fromEntries(paths.map((p) => [p, { status: 200, body: {} }])));
  createClient({ directoryUrl: `${ca}/dir`, accountKeyPem: accountKey, tls: {} });
  for (const p of paths) await call('step', acmeStep(`${ca}${p}`));
  const host = new URL(ca).host;
  t.deepEqual(seen.filter((s) => s.host === host).map((s) => s.action), ['sign-me-up', 'order-plz', 'my-order', 'authZ', 'chalZ', 'finalize-order', 'certZ', 'new-acct', 'chall-v3', 'renewal-info']);
});

test.serial('metric labels are never chosen by the CA: an unknown path is action "other", a host no directory names is host "other"', async (t) => {
  const seen: Array<{ action: string; host: string }> = [];
  observeRequests((info) => seen.push(info));
  const marker = `x${Date.now().toString(36)}`;
  const ca = await fakeCa(t, { [`/${marker}/a`]: { status: 200, body: {} } });
  // No client has this CA as its directory: its URLs came from some other CA's answers.
  await call('get order', acmeStep(`${ca}/${marker}/a`));
  t.deepEqual(seen.filter((s) => s.host === 'other' && s.action === 'other').length, 1);
  t.false(seen.some((s) => s.action === marker || s.host === new URL(ca).host));
});

// ── A hostile CA: redirects, huge answers, directories that point elsewhere ──

test('a redirect from the CA is not followed: the request it points at is never made', async (t) => {
  const hits: string[] = [];
  const target = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.end('{}');
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => target.close(() => resolve())));
  const loopback = `http://127.0.0.1:${(target.address() as AddressInfo).port}/admin`;
  const ca = await fakeCa(t, { '/dir': { status: 302, headers: { location: loopback } } });
  const err = await t.throwsAsync(call('get directory', async () => {
    // As acme-client asks: every status is handed back to it.
    const res = await acme.axios.get(`${ca}/dir`, { validateStatus: null });
    return res.data;
  }));
  t.deepEqual(hits, []);
  t.true(err instanceof AcmeProblemError, 'permanent: the Issuer says why');
  t.regex(err?.message ?? '', /answered 302 with a redirect to http:\/\/127\.0\.0\.1:\d+\/admin, and certroute follows no redirect/);
});

test('a 50 MB answer is cut off at the size limit, not buffered', async (t) => {
  let sent = 0;
  let closed!: (early: boolean) => void;
  const closedEarly = new Promise<boolean>((resolve) => (closed = resolve));
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const pump = () => {
      while (sent < 50 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => closed(!res.writableFinished));
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const err = await t.throwsAsync(call('get directory', acmeStep(`http://127.0.0.1:${(server.address() as AddressInfo).port}/dir`)));
  t.regex(err?.message ?? '', /answered with more than 1048576 bytes, which certroute does not read/);
  t.true(err instanceof AcmeProblemError, 'permanent: asking again would get the same');
  t.true(await closedEarly, 'the connection was closed before the CA finished sending');
  t.true(sent < 50 * 1024 * 1024, `${sent} bytes were sent before the cut`);
  t.is(MAX_RESPONSE_BYTES, 1024 * 1024);
});

test('a directory whose resource URLs are not all https is refused, permanently', async (t) => {
  const problems: Array<[unknown, RegExp | undefined]> = [
    [{ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order' }, undefined],
    [{ newNonce: 'https://ca.test/nonce', newAccount: 'http://127.0.0.1:6443/api', newOrder: 'https://ca.test/order' }, /newAccount is not an https URL/],
    [{ newNonce: 'file:///etc/passwd', newOrder: 'https://ca.test/order' }, /newNonce is not an https URL/],
    [{ newOrder: 42 }, /newOrder is not an https URL/],
    [['https://ca.test'], /not a JSON object/],
  ];
  for (const [dir, problem] of problems) {
    const got = directoryProblem(dir);
    if (problem) t.regex(got ?? '', problem, JSON.stringify(dir));
    else t.is(got, undefined);
  }
  const ca = await fakeCa(t, { '/directory': { status: 200, body: { newNonce: 'http://127.0.0.1:1/n', newAccount: 'https://a.test/a', newOrder: 'https://a.test/o' } } });
  const client = createClient({ directoryUrl: `${ca}/directory`, accountKeyPem: accountKey, tls: {} });
  const err = await t.throwsAsync(call('get directory', () => client.getTermsOfServiceUrl()));
  t.true(err instanceof AcmeProblemError, 'permanent: the Issuer says why instead of retrying');
  t.regex(err?.message ?? '', /newNonce is not an https URL/);
});

test('acme-client’s own sleeping retry is switched off: a 503 fails fast instead of sleeping', async (t) => {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(503, { 'retry-after': '1' });
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
  await t.throwsAsync(call('step', acmeStep(url)), { instanceOf: RetryAfterError });
  t.is(hits, 1, 'one request: acme-client did not sleep and ask again');
});
