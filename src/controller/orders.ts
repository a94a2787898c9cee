/**
 * The ACME Order state machine. Each pass branches on what the persisted
 * status still lacks and takes one step: no URL → create the order; no
 * authorizations → fetch them; missing Challenges → create them; ready →
 * finalize; valid → download the chain. Every URL is written to status the
 * moment it is known, so a restarted controller resumes the same order and
 * never opens a duplicate. Nothing here waits on the CA: pending states
 * return requeue-after with a growing poll interval.
 */
import { createHash } from 'node:crypto';
import type { AcmeAuthorization, Challenge, Order, OrderStatus } from '../api/types.ts';
import { normalizeIssuerRef } from '../api/issuer-ref.ts';
import { CertificateRequestAnnotations, Resources } from '../api/types.ts';
import { Backoff } from '../base/backoff.ts';
import { durationMs } from '../base/duration.ts';
import { controllerOf, controllerReference, decodeB64, encodeB64, objectKey, splitKey } from '../base/objects.ts';
import { acmeChallengeOf, AcmeProblemError, AcmeServerError, call, directoryOffers, type AcmeClient, type AcmeOrder } from '../acme/client.ts';
import { secretFacts } from '../pki/secret-facts.ts';
import { isAlreadyExists } from '../kube/client.ts';
import { kubeTime } from '../kube/conditions.ts';
import { enqueueOwner, keysOf, type ControllerRegistration } from '../kube/controller.ts';
import { done, requeueAfter, type Outcome } from '../kube/queue.ts';
import { chooseSolver, noSolverReason } from '../solvers/select.ts';
import { findIssuer, issuerKey, type Context } from './context.ts';
import { createObject, deleteObject, writeStatus } from './status.ts';

export const CHALLENGE_FINALIZER = 'finalizer.acme.cert-manager.io';
const FINAL = new Set(['valid', 'invalid', 'errored', 'expired']);

/** Watches its Orders, the request that owns each (its deletion ends the Order) and the Challenges each owns. */
export const ordersController: ControllerRegistration<Context> = {
  name: 'orders',
  register(ctx, { queue }) {
    const { caches } = ctx;
    caches.orders.on((o) => {
      queue.add(objectKey(o));
      // An order that ended frees a place for one waiting to be created.
      if (o.status?.state && FINAL.has(o.status.state)) for (const waiting of caches.orders.list()) if (!waiting.status?.url) queue.add(objectKey(waiting));
    });
    caches.certificaterequests.on((cr) => {
      for (const o of caches.orders.controlledBy(cr.metadata.namespace, 'CertificateRequest', cr.metadata.name)) queue.add(objectKey(o));
    });
    caches.challenges.on(enqueueOwner(queue, 'Order'));
    return { reconcile: orderReconciler(ctx), resync: () => keysOf(caches.orders) };
  },
};

export function orderReconciler(ctx: Context): (key: string) => Promise<Outcome> {
  // Fast at first (Pebble validates in milliseconds), capped later.
  const poller = new Backoff(ctx.config.pollMinMs, ctx.config.pollMaxMs);
  const created: CreatedOrders = new Map();
  const finalized: Finalized = new Map();
  const places = new OrderPlaces(ctx);
  return async (key) => {
    const { namespace, name } = splitKey(key);
    const order = ctx.caches.orders.get(namespace, name);
    if (!order) {
      poller.reset(key);
      finalized.delete(key);
      return done;
    }
    // The version our last write replaced: that write's watch event brings the next pass.
    if (ctx.caches.orders.isReplaced(order)) return done;
    const owner = controllerOf(order, 'CertificateRequest');
    if (owner && !ctx.caches.certificaterequests.get(namespace, owner)) {
      // Its request is gone (pruned or deleted): finish the garbage collector's job.
      await ctx.client.delete(Resources.orders, namespace, name, order.metadata.uid);
      finalized.delete(key);
      return done;
    }
    const state = order.status?.state;
    if (state && FINAL.has(state)) {
      poller.reset(key);
      finalized.delete(key);
      await cleanUpChallenges(ctx, order);
      return done;
    }
    const status: OrderStatus = structuredClone(order.status ?? {});
    try {
      return await step(ctx, order, status, { created, finalized, places }, () => poller.next(key), () => poller.reset(key));
    } catch (err) {
      await ctx.accounts.throwIfLost(issuerKey(order.spec.issuerRef, namespace), err);
      if (!(err instanceof AcmeProblemError)) throw err;
      status.state = 'errored';
      status.reason = err.message;
      status.failureTime = kubeTime(ctx.clock());
      await writeStatus(ctx, Resources.orders, order, status);
      ctx.events.event(order, Resources.orders, 'Warning', 'Errored', err.message);
      return done;
    }
  };
}

/**
 * ACME orders this process created, by Order uid, until the cache shows their URL. Creating an
 * order is the one step that cannot be repeated safely, and a pass can miss the URL the previous
 * one wrote (the status write failed while the apiserver was away, or the cache has not caught
 * up with it yet): such a pass resumes the order it already has instead of opening a duplicate.
 */
type CreatedOrders = Map<string, CreatedOrder>;
type CreatedOrder = Pick<AcmeOrder, 'url' | 'finalize' | 'status' | 'authorizations'> & { profile?: string; replaces?: string };

/**
 * Orders (key → uid) this process sent the CSR for while their status still says pending: later
 * passes read the order instead of finalizing again. After a restart the map is empty, and the
 * finalize sent again is refused by the CA; `finalize` then reads where the order went.
 */
type Finalized = Map<string, string>;

/**
 * What the Order reconciler remembers between passes: the ACME orders it created (above), the
 * Orders it sent the CSR for while their status still says pending, and the places at the CA.
 */
interface OrderMemory {
  created: CreatedOrders;
  finalized: Finalized;
  places: OrderPlaces;
}

/** How often an Order waiting for a place looks again, besides being woken when an order ends. */
const ORDER_PLACE_RECHECK_MS = 5_000;

/**
 * The places for open orders at the CA (`maxConcurrentOrders`): the Orders the cache shows with
 * a URL and not yet final, plus those this process is creating or created and the cache does not
 * show yet. Taken synchronously before newOrder is sent, so that concurrent workers cannot
 * both take the last place. When 200 certificates are revoked at once, their renewals queue
 * here instead of opening 200 orders (and 200 pending authorizations) at once.
 */
class OrderPlaces {
  private readonly ctx: Context;
  private readonly taken = new Set<string>();
  constructor(ctx: Context) {
    this.ctx = ctx;
  }

  take(uid: string): boolean {
    if (this.taken.has(uid)) return true;
    const open = new Set<string>();
    const cached = new Map<string, Order>();
    for (const o of this.ctx.caches.orders.list()) {
      const id = o.metadata.uid ?? objectKey(o);
      cached.set(id, o);
      if (o.status?.url && !(o.status.state && FINAL.has(o.status.state))) open.add(id);
    }
    // A place taken here is the cache's to count once the cache shows the URL (or the Order is gone).
    for (const id of this.taken) {
      if (!cached.has(id) || cached.get(id)?.status?.url) this.taken.delete(id);
      else open.add(id);
    }
    if (open.size >= this.ctx.config.maxConcurrentOrders) return false;
    this.taken.add(uid);
    return true;
  }

  release(uid: string): void {
    this.taken.delete(uid);
  }
}

/**
 * newOrder, with the profile the Order asks for and, for a renewal when the CA offers ARI, the
 * identifier of the certificate it replaces (RFC 9773 §5). A CA that refuses `replaces` (the
 * certificate was replaced already, it does not know the certificate, another account got it)
 * is asked again without it: `replaces` only helps the CA, and must never cost the renewal.
 */
async function createOrder(ctx: Context, order: Order, client: AcmeClient): Promise<CreatedOrder> {
  const identifiers = [
    ...(order.spec.dnsNames ?? []).map((value) => ({ type: 'dns', value })),
    ...(order.spec.ipAddresses ?? []).map((value) => ({ type: 'ip', value })),
  ];
  const notAfter = requestedNotAfter(ctx, order);
  const base = { identifiers, ...(order.spec.profile ? { profile: order.spec.profile } : {}), ...(notAfter ? { notAfter } : {}) };
  const replaces = ctx.config.ari ? await replacedCertificate(ctx, order, client) : undefined;
  const send = async (data: typeof base & { replaces?: string }) => {
    const made = await call('create order', () => client.createOrder(data as Parameters<AcmeClient['createOrder']>[0]));
    const profile = (made as { profile?: unknown }).profile;
    return { url: made.url, finalize: made.finalize, status: made.status, authorizations: made.authorizations, ...(typeof profile === 'string' ? { profile } : {}) };
  };
  if (replaces) {
    try {
      return { ...(await send({ ...base, replaces })), replaces };
    } catch (err) {
      if (!(err instanceof AcmeProblemError || err instanceof AcmeServerError)) throw err;
      ctx.events.event(order, Resources.orders, 'Normal', 'ReplacesRefused', `The ACME server refused replaces=${replaces} (${err.message}); ordering without it`);
    }
  }
  return send(base);
}

/**
 * The notAfter to ask for (RFC 8555 §7.4), only when the issuer sets cert-manager's
 * `enableDurationFeature`: many CAs (Let's Encrypt among them) refuse an order that names one.
 * RFC 3339 without fractions, as cert-manager's Go client writes it.
 */
function requestedNotAfter(ctx: Context, order: Order): string | undefined {
  const issuer = findIssuer(ctx, order.spec.issuerRef, order.metadata.namespace);
  if (!issuer?.spec.acme?.enableDurationFeature || !order.spec.duration) return undefined;
  return new Date(ctx.clock().getTime() + durationMs(order.spec.duration)).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The ARI identifier of the certificate the Order's renewal replaces: the one in the Secret of
 * the Certificate that made the request, when the issuer's CA offers renewalInfo.
 */
async function replacedCertificate(ctx: Context, order: Order, client: AcmeClient): Promise<string | undefined> {
  const ns = order.metadata.namespace;
  const crName = controllerOf(order, 'CertificateRequest');
  const cr = crName ? ctx.caches.certificaterequests.get(ns, crName) : undefined;
  const certName = cr?.metadata.annotations?.[CertificateRequestAnnotations.certificateName];
  const cert = certName ? ctx.caches.certificates.get(ns, certName) : undefined;
  const secret = cert ? ctx.caches.secrets.get(ns, cert.spec.secretName) : undefined;
  const id = secret ? secretFacts(secret).certificate?.renewalInfoId : undefined;
  if (!id) return undefined;
  const offers = await call('read directory', () => directoryOffers(client));
  return offers.renewalInfo ? id : undefined;
}

async function step(ctx: Context, order: Order, status: OrderStatus, memory: OrderMemory, poll: () => number, reset: () => void): Promise<Outcome> {
  const { created, finalized, places } = memory;
  const client = ctx.accounts.client(issuerKey(order.spec.issuerRef, order.metadata.namespace));
  const uid = order.metadata.uid ?? `${order.metadata.namespace}/${order.metadata.name}`;
  if (!status.url) {
    let acmeOrder = created.get(uid);
    if (!acmeOrder) {
      if (!places.take(uid)) return requeueAfter(ORDER_PLACE_RECHECK_MS);
      try {
        acmeOrder = await createOrder(ctx, order, client);
      } catch (err) {
        places.release(uid);
        throw err;
      }
      created.set(uid, acmeOrder);
    }
    status.url = acmeOrder.url;
    status.finalizeURL = acmeOrder.finalize;
    status.state = acmeOrder.status;
    if (acmeOrder.profile) status.profile = acmeOrder.profile;
    if (acmeOrder.replaces) status.replaces = acmeOrder.replaces;
    // The authorizations go into the same write, one write and one pass fewer; when reading
    // them fails, the URL is written all the same before the error goes to the queue.
    try {
      status.authorizations = await readAuthorizations(client, { ...acmeOrder, identifiers: [] });
    } catch (err) {
      await writeStatus(ctx, Resources.orders, order, status);
      throw err;
    }
    await writeStatus(ctx, Resources.orders, order, status);
    return done;
  }
  created.delete(uid);
  places.release(uid);
  const acmeOrder = (): AcmeOrder => ({ url: status.url!, finalize: status.finalizeURL ?? '', status: 'pending', identifiers: [], authorizations: (status.authorizations ?? []).map((a) => a.url) });
  if (!status.authorizations) {
    const fresh = await call('get order', () => client.getOrder(acmeOrder()));
    status.authorizations = await readAuthorizations(client, fresh);
    status.finalizeURL = fresh.finalize;
    status.state = fresh.status;
    await writeStatus(ctx, Resources.orders, order, status);
    return done;
  }
  if (status.state === 'pending') {
    const { created, waitMs } = await ensureChallenges(ctx, order, status.authorizations);
    if (created) return done;
    // A Challenge made moments ago is not in the cache yet: its event brings the next pass, and
    // should none come (deleted meanwhile, a watch away), the wait's end makes it again.
    if (waitMs !== undefined) return requeueAfter(waitMs);
    const mine = challengesOf(ctx, order);
    if (mine.some((c) => c.status?.state === 'invalid')) return refresh(ctx, order, status, client, poll, reset);
    const needed = status.authorizations.filter((a) => a.initialState !== 'valid').length;
    if (mine.filter((c) => c.status?.state === 'valid').length < needed) return done;
    const key = objectKey(order);
    if (finalized.get(key) === uid) return refresh(ctx, order, status, client, poll, reset);
    // Every authorization is valid, so the order is ready (RFC 8555 §7.1.6): finalized without
    // reading it first. A CA that does not have it ready yet (or has it already) refuses, and
    // `finalize` reads where the order is.
    finalized.set(key, uid);
    return finalize(ctx, order, { ...status, state: 'ready' }, client, poll, reset, true);
  }
  if (status.state === 'ready') return finalize(ctx, order, status, client, poll, reset);
  return refresh(ctx, order, status, client, poll, reset);
}

/** The order's authorizations as status records them: identifier, initial state, and each challenge offered. */
async function readAuthorizations(client: AcmeClient, order: AcmeOrder): Promise<AcmeAuthorization[]> {
  const authzs = await call('get authorizations', () => client.getAuthorizations(order));
  return authzs.map((a): AcmeAuthorization => ({
    url: a.url,
    identifier: a.identifier.value,
    wildcard: a.wildcard ?? false,
    initialState: a.status,
    challenges: a.challenges.map((c) => ({ url: c.url, token: 'token' in c ? String(c.token) : '', type: c.type })),
  }));
}

/** `unread`: sent without reading the order first, on the Challenges' word that it is ready. */
async function finalize(ctx: Context, order: Order, status: OrderStatus, client: AcmeClient, poll: () => number, reset: () => void, unread = false): Promise<Outcome> {
  const csr = decodeB64(order.spec.request);
  let finalized: AcmeOrder;
  try {
    finalized = await call('finalize order', () => client.finalizeOrder({ url: status.url!, finalize: status.finalizeURL ?? '', status: 'ready', identifiers: [], authorizations: [] }, csr));
  } catch (err) {
    // Finalizing cannot be repeated: once the CA has the CSR it answers orderNotReady (RFC 8555
    // §7.4). A pass whose predecessor finalized but never recorded it (a crash, a failed status
    // write, a stale cache) reads where the order went instead of failing it; so does any refusal
    // of an unread finalize, so that a CA wording it otherwise cannot fail an order it has in
    // fact finalized (after a restart, which forgets what was finalized).
    if (err instanceof AcmeProblemError && (unread || err.type === 'urn:ietf:params:acme:error:orderNotReady')) return refresh(ctx, order, status, client, poll, reset);
    throw err;
  }
  if (finalized.certificate) return download(ctx, order, status, client, finalized);
  if (finalized.status === 'processing') return requeueAfter(poll());
  // Any other answer (invalid, say) is recorded as a read of the order records it: with the CA's
  // reason, the failure time and the Event.
  return refresh(ctx, order, status, client, poll, reset);
}

/** Reads the order from the CA and records a state change, or polls again. */
async function refresh(ctx: Context, order: Order, status: OrderStatus, client: AcmeClient, poll: () => number, reset: () => void): Promise<Outcome> {
  const fresh = await call('get order', () => client.getOrder({ url: status.url!, finalize: status.finalizeURL ?? '', status: 'pending', identifiers: [], authorizations: [] }));
  if (fresh.status === 'valid' && fresh.certificate) return download(ctx, order, status, client, fresh);
  // "processing" (the CA signing after finalize) is not written down either: as in cert-manager,
  // which waits for the certificate after finalizing, status goes from pending to valid in one
  // write. Polling needs no record of it: a pass after a restart reads the order from the CA.
  if (fresh.status === status.state || fresh.status === 'processing') return requeueAfter(poll());
  reset();
  // "ready" is not written down: the same pass finalizes, one status write and one pass fewer.
  // A crash in between is safe: the next pass reads the order from the CA again. (A refresh
  // that finalize itself asked for has state "ready" already, so this cannot loop.)
  if (fresh.status === 'ready' && status.state !== 'ready') return finalize(ctx, order, { ...status, state: 'ready' }, client, poll, reset);
  status.state = fresh.status;
  if (fresh.status === 'invalid') {
    status.reason = describeAcmeError(fresh.error) ?? 'the ACME server marked the order invalid; see its Challenges for the failed validation';
    status.failureTime = kubeTime(ctx.clock());
    ctx.events.event(order, Resources.orders, 'Warning', 'Failed', `Order failed: ${status.reason}`);
  }
  await writeStatus(ctx, Resources.orders, order, status);
  return FINAL.has(fresh.status) ? done : requeueAfter(poll());
}

function describeAcmeError(error: unknown): string | undefined {
  if (!error || typeof error !== 'object') return undefined;
  const e = error as { type?: unknown; detail?: unknown };
  return [typeof e.type === 'string' ? e.type : '', typeof e.detail === 'string' ? e.detail : ''].filter(Boolean).join(': ') || undefined;
}

async function download(ctx: Context, order: Order, status: OrderStatus, client: AcmeClient, fresh: AcmeOrder): Promise<Outcome> {
  const issuer = findIssuer(ctx, order.spec.issuerRef, order.metadata.namespace);
  const preferred = issuer?.spec.acme?.preferredChain || undefined;
  const pem = await call('download certificate', () => client.getCertificate(fresh, preferred));
  status.state = 'valid';
  status.certificate = encodeB64(pem);
  delete status.reason;
  await writeStatus(ctx, Resources.orders, order, status);
  ctx.events.event(order, Resources.orders, 'Normal', 'Complete', 'Order completed successfully');
  return done;
}

export function challengesOf(ctx: Context, order: Order): Challenge[] {
  return ctx.caches.challenges.ownedBy(order);
}

/** cert-manager's DNSSafeShortenTo52Characters: cut, then drop a trailing '.' or '-'. */
export function shortenName(name: string): string {
  return name.slice(0, 52).replace(/[.-]+$/, '');
}

export function challengeName(order: Order, authzUrl: string): string {
  const hash = createHash('sha256').update(authzUrl).digest().readUInt32BE(0);
  return `${shortenName(order.metadata.name)}-${hash}`;
}

/**
 * Creates the Challenges the cache does not show. `created`: one was made in this pass.
 * `waitMs`: one this process made earlier is not in the cache yet, and is made again after it.
 */
async function ensureChallenges(ctx: Context, order: Order, authzs: AcmeAuthorization[]): Promise<{ created: boolean; waitMs?: number }> {
  const ns = order.metadata.namespace ?? 'default';
  const issuer = findIssuer(ctx, order.spec.issuerRef, ns);
  let created = false;
  let waitMs: number | undefined;
  for (const authz of authzs) {
    if (authz.initialState === 'valid') continue;
    const name = challengeName(order, authz.url);
    if (ctx.caches.challenges.get(ns, name)) continue;
    const left = ctx.caches.challenges.createdWaitMs(ns, name, ctx.clock().getTime());
    if (left !== undefined) {
      waitMs = Math.min(waitMs ?? left, left);
      continue;
    }
    const choice = chooseSolver(ctx.solvers, issuer, authz, order.metadata.labels);
    if (!choice) {
      throw new AcmeProblemError(`Failed to determine a valid solver configuration for the set of domains on the Order: ${noSolverReason(ctx.solvers, authz)}`, 400, 'certroute:noSolver');
    }
    const { config: solver, offer } = choice;
    const client = ctx.accounts.client(issuerKey(order.spec.issuerRef, ns));
    const key = await client.getChallengeKeyAuthorization(acmeChallengeOf(choice.solver.challengeType, offer.url, offer.token));
    try {
      await createObject<Challenge>(ctx, Resources.challenges, {
        // The finalizer holds the deletion until the solver's cleanUp ran; a solver with none needs no hold.
        metadata: { name, namespace: ns, ...(choice.solver.cleanUp ? { finalizers: [CHALLENGE_FINALIZER] } : {}), ownerReferences: [controllerReference(Resources.orders, order)] },
        spec: {
          url: offer.url,
          authorizationURL: authz.url,
          dnsName: authz.identifier ?? '',
          wildcard: authz.wildcard ?? false,
          type: choice.solver.specType,
          token: offer.token,
          key,
          solver,
          issuerRef: order.spec.issuerRef,
        },
      });
      created = true;
      // cert-manager's Event for this step (the ACME order itself gets none; its URL is in status).
      ctx.events.event(order, Resources.orders, 'Normal', 'Created', `Created Challenge resource "${name}" for domain "${authz.identifier ?? ''}"`);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
  return { created, waitMs };
}

async function cleanUpChallenges(ctx: Context, order: Order): Promise<void> {
  for (const ch of challengesOf(ctx, order)) {
    if (!ch.metadata.deletionTimestamp && !ctx.caches.challenges.isDeleting(ch)) await deleteObject(ctx, Resources.challenges, ch);
  }
}
