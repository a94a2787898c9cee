/**
 * HTTP-01 with no per-challenge object anywhere: every replica's responder
 * answers from an index it keeps of the presented Challenges, and one
 * Traefik route (or the entrypoint middleware) already sends the challenge
 * path there. So presenting is nothing more than the reconciler marking the
 * Challenge presented, and cleaning up is the Challenge leaving the index
 * when it is deleted. The readiness check asks Traefik for the token the way
 * the CA will, or waits a configured time instead
 * (`http01.certroute.waitInsteadOfSelfCheck`).
 */
import type { Challenge } from '../api/types.ts';
import { parseGoDuration } from '../base/duration.ts';
import { ChallengeIndex } from '../responder/challenge-index.ts';
import { challengeOwnerProblem } from '../responder/challenge-owner.ts';
import { describeSelfCheckFailure, selfCheck } from '../responder/selfcheck.ts';
import type { ChallengeSolver, Readiness, SolverDeps, SolverRegistration, WatchesChallenges } from './solver.ts';

export class Http01Solver {
  readonly configKind = 'http01';
  readonly challengeType = 'http-01';
  readonly specType = 'HTTP-01';
  readonly wildcards = false;
  /** What the responder serves: token and Host → key authorization, for certroute's own Challenges only. */
  readonly index = new ChallengeIndex((ch) => challengeOwnerProblem(ch, this.deps.owners) === undefined);
  private readonly deps: SolverDeps;

  constructor(deps: SolverDeps) {
    this.deps = deps;
  }

  /** The responder serves a Challenge once its status says presented; there is nothing to create. */
  async present(_ch: Challenge): Promise<void> {}

  async check(ch: Challenge): Promise<Readiness> {
    const wait = ch.spec.solver.http01?.certroute?.waitInsteadOfSelfCheck;
    if (wait) {
      const left = Date.parse(ch.metadata.creationTimestamp ?? '') + parseGoDuration(wait) - this.deps.clock().getTime();
      return left > 0 ? { kind: 'wait', ms: left } : { kind: 'ready' };
    }
    const result = await selfCheck({
      webAddress: this.deps.config.selfCheckWebAddress,
      websecureAddress: this.deps.config.selfCheckWebsecureAddress,
      host: ch.spec.dnsName,
      token: ch.spec.token,
      expectedKeyAuth: ch.spec.key,
    });
    return result.ok ? { kind: 'ready' } : { kind: 'notReady', message: describeSelfCheckFailure(result) };
  }

  // No cleanUp: a deleted Challenge leaves the index through `onChallenge`; nothing outside it holds the answer.

  onChallenge(ch: Challenge, event: 'add' | 'update' | 'delete'): void {
    if (event === 'delete') this.index.remove(ch);
    else this.index.upsert(ch);
  }
}

export const http01 = {
  configKind: 'http01',
  create: (deps: SolverDeps) => new Http01Solver(deps) satisfies ChallengeSolver & WatchesChallenges,
} satisfies SolverRegistration;
