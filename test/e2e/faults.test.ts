/**
 * Faults at the CA (issue 6 §2): Pebble rejecting half of all nonces, and an ACME proxy in front
 * of Pebble answering 5xx, or 429 and 503 with Retry-After. Each test uses a fresh ACME account
 * and asserts what a user relies on: every Certificate is issued, Pebble holds exactly one order
 * per Certificate (no duplicate from a retry), and every Secret is valid for its names.
 * The kube-apiserver faults are in faults-kube.test.ts, the crashes in faults-crash.test.ts.
 */
import test from 'ava';
import { readEnv, restart } from '../env/stack.ts';
import { PebblePaths, requestsTo, startAcmeProxy, type AcmeProxy, type Match, type ProxiedRequest } from '../helpers/acme-proxy.ts';
import { freshNamespace, cleanUpFile, startController, waitFor } from '../helpers/controller.ts';
import { assertIssued, controllerFlags, createCertificates as create, deleteIssuers, newIssuer } from '../helpers/issuance.ts';

const env = readEnv();
let proxy: AcmeProxy;
let pebbleChanged = false;

test.before(async () => {
  proxy = await startAcmeProxy(env);
  await startController(controllerFlags);
});

test.after.always(async () => {
  await cleanUpFile();
  await proxy?.close();
  if (pebbleChanged) await restart('pebble');
  await deleteIssuers();
});

/** Milliseconds between consecutive requests. */
const gaps = (rs: ProxiedRequest[]) => rs.slice(1).map((r, i) => r.at - rs[i]!.at);

test.serial('with Pebble rejecting half of all nonces, five Certificates are issued with one order each', async (t) => {
  pebbleChanged = true;
  await restart('pebble', { env: { PEBBLE_WFE_NONCEREJECT: '50' } });
  const since = Date.now();
  const issuer = await newIssuer('nonce', proxy.directory);
  const ns = await freshNamespace('nonce');
  const names = ['a', 'b', 'c', 'd', 'e'];
  await create(ns, issuer, names);
  await assertIssued(t, ns, issuer, names);
  const rejected = proxy.requests.filter((r) => r.at >= since && r.status === 400).length;
  t.true(rejected >= 5, `Pebble refused ${rejected} requests with badNonce`);
  // Pebble restarts with its defaults here, not only after the file: the next tests need
  // nonces accepted to make their timing assertions.
  await restart('pebble');
  pebbleChanged = false;
});

test.serial('ACME 500s on every step are retried with growing back-off until the certificate is issued', async (t) => {
  const issuer = await newIssuer('http500', proxy.directory);
  const ns = await freshNamespace('http500');
  const failing: Match[] = [PebblePaths.newOrder, PebblePaths.challenge, PebblePaths.finalize, PebblePaths.certificate];
  proxy.failNext(PebblePaths.newOrder, 4, { status: 500 });
  for (const m of failing.slice(1)) proxy.failNext(m, 2, { status: 502 });
  const since = Date.now();
  await create(ns, issuer, ['web']);
  await assertIssued(t, ns, issuer, ['web']);
  for (const m of failing) {
    const rs = requestsTo(proxy, m).filter((r) => r.at >= since);
    t.true(rs.filter((r) => r.injected).length >= 2, `${m.pathPrefix} failed as injected`);
    const lastFailure = rs.findLastIndex((r) => r.injected);
    t.true(rs.slice(lastFailure + 1).some((r) => r.status! < 300), `${m.pathPrefix} was retried and succeeded`);
  }
  const newOrders = requestsTo(proxy, PebblePaths.newOrder).filter((r) => r.at >= since);
  t.is(newOrders.length, 5, 'four failed attempts to create the order, then one that created it');
  // 200 ms doubling: 200, 400, 800, 1600. An informer event during a pass may re-run it at once
  // (as in client-go), but only once in a while.
  const waits = gaps(newOrders);
  t.true(waits.filter((g) => g < 150).length <= 1, `retries waited for their back-off: ${waits.join(', ')} ms`);
  t.true(Math.max(...waits) >= 1_000, `the back-off grew past a second: ${waits.join(', ')} ms`);
});

test.serial('a 429 with Retry-After holds every request to that path until it has passed', async (t) => {
  const issuer = await newIssuer('http429', proxy.directory);
  const ns = await freshNamespace('http429');
  proxy.failNext(PebblePaths.newOrder, 1, { status: 429, retryAfterSeconds: 3 });
  const since = Date.now();
  await create(ns, issuer, ['first']);
  const limited = await waitFor('the 429', async () => requestsTo(proxy, PebblePaths.newOrder).find((r) => r.at >= since && r.injected), 60_000, 20);
  // More Certificates while the CA asked to wait: their orders must wait as well.
  await create(ns, issuer, ['second', 'third']);
  await assertIssued(t, ns, issuer, ['first', 'second', 'third']);
  const later = requestsTo(proxy, PebblePaths.newOrder).filter((r) => r.at > limited.at);
  t.is(later.length, 3, 'one new-order request per Certificate after the 429');
  const early = later.filter((r) => r.at < limited.at + 3_000);
  t.deepEqual(early.map((r) => `${r.at - limited.at} ms after the 429`), [], 'no request to /order-plz before Retry-After passed');
});

test.serial('a 503 with Retry-After on finalize delays that order, then it is issued', async (t) => {
  const issuer = await newIssuer('http503', proxy.directory);
  const ns = await freshNamespace('http503');
  proxy.failNext(PebblePaths.finalize, 1, { status: 503, retryAfterSeconds: 2 });
  const since = Date.now();
  await create(ns, issuer, ['slow']);
  await assertIssued(t, ns, issuer, ['slow']);
  const finalizes = requestsTo(proxy, PebblePaths.finalize).filter((r) => r.at >= since);
  t.is(finalizes[0]?.status, 503, 'the first finalize was refused');
  const retry = finalizes[1];
  t.is(retry?.status, 200, 'the next finalize worked');
  t.true(retry!.at - finalizes[0]!.at >= 2_000, `finalize retried after ${retry!.at - finalizes[0]!.at} ms, Retry-After was 2 s`);
});
