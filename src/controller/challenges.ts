/**
 * The Challenge reconciler: presented → ready → accepted → valid or invalid.
 * What presenting, the readiness check and the clean-up mean for a challenge
 * type is its solver's business (`src/solvers/`); this file only drives
 * them in order and talks to the CA.
 */
import type { Challenge, ChallengeStatus, Order } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { Backoff } from '../base/backoff.ts';
import { controllerOf, objectKey, splitKey } from '../base/objects.ts';
import { acmeChallengeOf, AcmeProblemError, call, type AcmeClient } from '../acme/client.ts';
import { keysOf, type ControllerRegistration } from '../kube/controller.ts';
import { done, requeueAfter, type Outcome } from '../kube/queue.ts';
import type { ChallengeSolver } from '../solvers/solver.ts';
import { challengeOwnerProblem, type OwnerLookup } from '../responder/challenge-owner.ts';
import { issuerKey, type Caches, type Context } from './context.ts';
import { CHALLENGE_FINALIZER } from './orders.ts';
import { writeStatus } from './status.ts';

export const ChallengeReasons = {
  Presented: 'Presented',
  PresentError: 'PresentError',
  SelfCheckFailed: 'SelfCheckFailed',
  DomainVerified: 'DomainVerified',
  Failed: 'Failed',
  /** Not a Challenge of certroute's own Order: never presented or served. */
  NotPresented: 'NotPresented',
} as const;

/** The Orders and CertificateRequests a Challenge's ownership is checked against (challenge-owner.ts). */
export function ownerLookup(caches: Pick<Caches, 'orders' | 'certificaterequests'>): OwnerLookup {
  return {
    order: (ns, name) => caches.orders.get(ns, name),
    certificateRequest: (ns, name) => caches.certificaterequests.get(ns, name),
  };
}

/**
 * Watches its Challenges. Solvers that keep their own view of them (HTTP-01's responder index)
 * are fed here on every replica, leader or not, because every replica answers challenges.
 */
export const challengesController: ControllerRegistration<Context> = {
  name: 'challenges',
  register(ctx, { queue }) {
    const { caches } = ctx;
    const watchers = ctx.solvers.watchers();
    caches.challenges.on((ch, ev) => {
      for (const w of watchers) w.onChallenge(ch, ev);
      if (ev === 'delete') ctx.metrics.forgetChallenge(ch);
      queue.add(objectKey(ch));
    });
    // Whether a Challenge is served follows its Order (state, authorizations) and that Order's
    // CertificateRequest: the solvers' views look at its Challenges again when either changes.
    const recheck = (order: Order) => {
      for (const ch of caches.challenges.controlledBy(order.metadata.namespace, 'Order', order.metadata.name)) {
        for (const w of watchers) w.onChallenge(ch, 'update');
      }
    };
    caches.orders.on(recheck);
    caches.certificaterequests.on((cr) => {
      for (const o of caches.orders.controlledBy(cr.metadata.namespace, 'CertificateRequest', cr.metadata.name)) recheck(o);
    });
    return { reconcile: challengeReconciler(ctx), resync: () => keysOf(caches.challenges) };
  },
};

export function challengeReconciler(ctx: Context): (key: string) => Promise<Outcome> {
  const poller = new Backoff(ctx.config.pollMinMs, ctx.config.pollMaxMs);
  // The first misses are usually route propagation in Traefik (~100 ms).
  const notReady = new Backoff(100, ctx.config.selfCheckRetryMs);
  const accepted: Accepted = new Map();
  return async (key) => {
    const { namespace, name } = splitKey(key);
    const ch = ctx.caches.challenges.get(namespace, name);
    if (!ch) {
      poller.reset(key);
      notReady.reset(key);
      accepted.delete(key);
      return done;
    }
    if (ctx.caches.challenges.isReplaced(ch)) return done;
    const solver = ctx.solvers.forChallenge(ch);
    if (ch.metadata.deletionTimestamp) {
      if (ch.metadata.finalizers?.includes(CHALLENGE_FINALIZER)) {
        await solver?.cleanUp?.(ch);
        await ctx.client.mergePatch(Resources.challenges, namespace, name, {
          metadata: { finalizers: ch.metadata.finalizers.filter((f) => f !== CHALLENGE_FINALIZER), resourceVersion: ch.metadata.resourceVersion },
        });
      }
      return done;
    }
    const owner = controllerOf(ch, 'Order');
    if (owner && !ctx.caches.orders.get(namespace, owner)) {
      await ctx.client.delete(Resources.challenges, namespace, name, ch.metadata.uid);
      return done;
    }
    ctx.metrics.observeChallenge(ch);
    const state = ch.status?.state;
    if (state === 'valid' || state === 'invalid' || state === 'errored' || state === 'expired') {
      accepted.delete(key);
      return done;
    }
    const status: ChallengeStatus = structuredClone(ch.status ?? {});
    // Only a Challenge of certroute's own Order is presented (and served: the solvers' views apply
    // the same check).
    const untrusted = challengeOwnerProblem(ch, ownerLookup(ctx.caches));
    if (untrusted !== undefined) {
      const reason = `not presented: ${untrusted}; certroute answers only the challenges of its own Orders`;
      if (status.reason !== reason || status.presented) {
        ctx.events.event(ch, Resources.challenges, 'Warning', ChallengeReasons.NotPresented, reason);
        await writeStatus(ctx, Resources.challenges, ch, { ...status, presented: false, processing: false, reason });
      }
      return done;
    }
    if (!solver) {
      status.state = 'errored';
      status.processing = false;
      status.reason = `certroute has no solver for ${ch.spec.type} challenges; use one of: ${ctx.solvers.paths.join(', ')}`;
      await writeStatus(ctx, Resources.challenges, ch, status);
      return done;
    }
    if (!status.presented) {
      let record;
      try {
        record = await solver.present(ch);
      } catch (err) {
        // A provider that refuses (bad credentials, a missing Secret, a zone the token cannot
        // see) or cannot be reached: say so on the Challenge, then retry with back-off.
        const message = `Error presenting challenge: ${(err as Error).message}`;
        if (status.reason !== message) {
          status.reason = message;
          await writeStatus(ctx, Resources.challenges, ch, status);
          ctx.events.event(ch, Resources.challenges, 'Warning', ChallengeReasons.PresentError, message);
        }
        throw err;
      }
      if (record) status.presentedRecord = record;
      status.presented = true;
      status.processing = true;
      status.state = 'pending';
      status.reason = '';
      await writeStatus(ctx, Resources.challenges, ch, status);
      ctx.events.event(ch, Resources.challenges, 'Normal', ChallengeReasons.Presented, `Presented challenge using ${ch.spec.type} challenge mechanism for ${ch.spec.dnsName}`);
      return done;
    }
    try {
      if (status.state === 'pending' && accepted.get(key) !== ch.metadata.uid) return await accept(ctx, solver, ch, status, key, notReady, poller, accepted);
      return await pollAuthorization(ctx, ch, status, () => poller.next(key));
    } catch (err) {
      await ctx.accounts.throwIfLost(issuerKey(ch.spec.issuerRef, namespace), err);
      if (!(err instanceof AcmeProblemError)) throw err;
      status.state = 'errored';
      status.processing = false;
      status.reason = err.message;
      await writeStatus(ctx, Resources.challenges, ch, status);
      ctx.events.event(ch, Resources.challenges, 'Warning', ChallengeReasons.Failed, err.message);
      ctx.enqueue.order(namespace ?? 'default', owner ?? '');
      return done;
    }
  };
}

/**
 * Challenges this process accepted at the CA (key → uid) while their status still says pending:
 * "processing" is not written down, as in cert-manager, which waits for the authorization after
 * accepting and writes its final state once. The next passes poll the authorization. A pass
 * that does not know of the accept (another process, after a restart) accepts again, and the
 * CA's refusal leads it to the CA's state (see `accept`).
 */
type Accepted = Map<string, string | undefined>;

async function accept(ctx: Context, solver: ChallengeSolver, ch: Challenge, status: ChallengeStatus, key: string, notReady: Backoff, poller: Backoff, accepted: Accepted): Promise<Outcome> {
  const readiness = await solver.check(ch);
  if (readiness.kind === 'wait') return requeueAfter(readiness.ms);
  if (readiness.kind === 'notReady') {
    const wait = notReady.next(key);
    if (status.reason !== readiness.message) {
      status.reason = readiness.message;
      await writeStatus(ctx, Resources.challenges, ch, status);
      ctx.events.event(ch, Resources.challenges, 'Warning', ChallengeReasons.SelfCheckFailed, readiness.message);
    }
    // A solver that knows its own pace (DNS-01's --dns01-check-retry-period) says so.
    return requeueAfter(readiness.retryMs ?? wait);
  }
  notReady.reset(key);
  const client = ctx.accounts.client(issuerKey(ch.spec.issuerRef, ch.metadata.namespace));
  let answered: { status: string };
  try {
    answered = await call('accept challenge', () => client.completeChallenge(acmeChallengeOf(solver.challengeType, ch.spec.url, ch.spec.token)));
  } catch (err) {
    // Accepting cannot be repeated: a CA that already has it refuses a second POST ("Cannot
    // update challenge with status valid"). When an earlier pass's answer was lost (a crash, a
    // failed status write, a stale cache), carry on from the CA's state instead of failing.
    if (!(err instanceof AcmeProblemError) || (await challengeStateAtCa(client, ch)) === 'pending') throw err;
    answered = { status: 'processing' };
  }
  poller.reset(key);
  if (answered.status !== 'valid') {
    if (status.reason) {
      // A self-check failure the status still shows is not left standing while the CA validates.
      status.state = 'processing';
      status.reason = 'Challenge accepted; waiting for the ACME server to validate';
      await writeStatus(ctx, Resources.challenges, ch, status);
    } else {
      accepted.set(key, ch.metadata.uid);
    }
    return requeueAfter(poller.next(key));
  }
  status.state = 'valid';
  status.reason = 'Successfully authorized domain';
  status.processing = false;
  await writeStatus(ctx, Resources.challenges, ch, status);
  // cert-manager's Events only: accepting is not one; a CA that validates at once gets the
  // DomainVerified the polling pass would otherwise record.
  verified(ctx, ch);
  return done;
}

async function challengeStateAtCa(client: AcmeClient, ch: Challenge): Promise<string | undefined> {
  const [authz] = await call('get authorization', () => client.getAuthorizations({ url: '', finalize: '', status: 'pending', identifiers: [], authorizations: [ch.spec.authorizationURL] }));
  return authz?.challenges.find((c) => c.url === ch.spec.url)?.status ?? authz?.status;
}

async function pollAuthorization(ctx: Context, ch: Challenge, status: ChallengeStatus, poll: () => number): Promise<Outcome> {
  const client = ctx.accounts.client(issuerKey(ch.spec.issuerRef, ch.metadata.namespace));
  const [authz] = await call('get authorization', () => client.getAuthorizations({ url: '', finalize: '', status: 'pending', identifiers: [], authorizations: [ch.spec.authorizationURL] }));
  const acmeChallenge = authz?.challenges.find((c) => c.url === ch.spec.url);
  const state = acmeChallenge?.status ?? authz?.status;
  if (state === 'valid') {
    status.state = 'valid';
    status.processing = false;
    status.reason = 'Successfully authorized domain';
    await writeStatus(ctx, Resources.challenges, ch, status);
    verified(ctx, ch);
    return done;
  }
  if (state === 'invalid' || authz?.status === 'invalid') {
    const err = acmeChallenge && 'error' in acmeChallenge ? (acmeChallenge.error as { detail?: string; type?: string } | undefined) : undefined;
    status.state = 'invalid';
    status.processing = false;
    status.reason = `Error accepting authorization: acme: authorization error for ${ch.spec.dnsName}: ${err?.type ?? ''}: ${err?.detail ?? 'invalid'}`;
    await writeStatus(ctx, Resources.challenges, ch, status);
    ctx.events.event(ch, Resources.challenges, 'Warning', ChallengeReasons.Failed, status.reason);
    return done;
  }
  return requeueAfter(poll());
}

function verified(ctx: Context, ch: Challenge): void {
  ctx.events.event(ch, Resources.challenges, 'Normal', ChallengeReasons.DomainVerified, `Domain "${ch.spec.dnsName}" verified with "${ch.spec.type}" validation`);
}
