/**
 * A CA's Retry-After binds the URL it was given for, not only the reconcile that met it: until it
 * passes, no request for that URL leaves the process, whichever Order makes it and whatever event
 * woke the reconciler (issue 6 §2). The wait comes back as a RetryAfterError for the rest of it.
 * A real HTTP exchange with a loopback CA through acme.axios, as acme-client makes it.
 */
import test, { type ExecutionContext } from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { acme, call } from '../../src/acme/client.ts';
import { RetryAfterError } from '../../src/base/errors.ts';

/** A CA whose `/limited` answers 429 (Retry-After: `seconds`) once, then 200; it counts hits per path. */
async function rateLimitedCa(t: ExecutionContext, status: 429 | 503, seconds: number): Promise<{ url: string; hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    if (path === '/limited' && n === 1) {
      res.writeHead(status, { 'content-type': 'application/problem+json', 'retry-after': String(seconds) });
      res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'slow down' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

function get(url: string): () => Promise<unknown> {
  return async () => {
    const res = await acme.axios.get(url, { validateStatus: null });
    if (res.status >= 400) throw new Error((res.data as { detail?: string }).detail ?? `HTTP ${res.status}`);
    return res.data;
  };
}

for (const status of [429, 503] as const) {
  test(`after a ${status} with Retry-After, no request for that URL is sent until it has passed`, async (t) => {
    const ca = await rateLimitedCa(t, status, 1);
    const first = await t.throwsAsync(call('create order', get(`${ca.url}/limited`)));
    t.true(first instanceof RetryAfterError);
    t.is((first as RetryAfterError).retryAfterMs, 1_000);

    // Another Order, or the same one woken early by an event: held in the process.
    const again = await t.throwsAsync(call('create order', get(`${ca.url}/limited`)));
    t.true(again instanceof RetryAfterError, 'the early call is a RetryAfterError too');
    const left = (again as RetryAfterError).retryAfterMs;
    t.true(left > 0 && left <= 1_000, `it waits the rest of Retry-After: ${left} ms`);
    t.regex(again?.message ?? '', /waiting for the CA's Retry-After/);
    t.is(ca.hits.get('/limited'), 1, 'the CA saw no second request');

    await call('get order', get(`${ca.url}/other`));
    t.is(ca.hits.get('/other'), 1, 'other URLs of the same CA are not held');

    await new Promise((resolve) => setTimeout(resolve, left + 20));
    await call('create order', get(`${ca.url}/limited`));
    t.is(ca.hits.get('/limited'), 2, 'once Retry-After has passed the request goes out');
  });
}
