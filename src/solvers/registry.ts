/**
 * The solvers certroute has, built once per process and looked up by the
 * key of their configuration in an issuer (`http01`, `dns01`, `certroute.tlsAlpn01`) or by the type
 * a Challenge carries (`HTTP-01`). Adding a solver: write it next to
 * `http01.ts` and add its registration to `REGISTERED`.
 */
import type { AcmeSolver, Challenge } from '../api/types.ts';
import { dns01 } from './dns01.ts';
import { http01 } from './http01.ts';
import { tlsAlpn01 } from './tls-alpn01.ts';
import { configPath, configures, watchesChallenges, type ChallengeSolver, type SolverConfigKind, type SolverDeps, type SolverRegistration, type WatchesChallenges } from './solver.ts';

export const REGISTERED: readonly SolverRegistration[] = [http01, dns01, tlsAlpn01];

export class SolverRegistry {
  private readonly byKind = new Map<SolverConfigKind, ChallengeSolver>();
  private readonly bySpecType = new Map<string, ChallengeSolver>();

  constructor(deps: SolverDeps, registrations: readonly SolverRegistration[] = REGISTERED) {
    for (const r of registrations) {
      const solver = r.create(deps);
      if (this.byKind.has(r.configKind) || this.bySpecType.has(solver.specType)) {
        throw new Error(`two solvers registered for ${r.configKind} (${solver.specType}); keep one registration per challenge type`);
      }
      this.byKind.set(r.configKind, solver);
      this.bySpecType.set(solver.specType, solver);
    }
  }

  /** The configuration keys that have a solver, in registration order. */
  get kinds(): SolverConfigKind[] {
    return [...this.byKind.keys()];
  }

  /** The same, as a user writes them in a solver entry (`certroute.tlsAlpn01`). */
  get paths(): string[] {
    return this.kinds.map(configPath);
  }

  get(kind: SolverConfigKind): ChallengeSolver | undefined {
    return this.byKind.get(kind);
  }

  /** The solver an issuer's solver entry configures, if certroute has one for its kind. */
  forConfig(config: AcmeSolver): ChallengeSolver | undefined {
    for (const [kind, solver] of this.byKind) if (configures(config, kind)) return solver;
    return undefined;
  }

  /** The solver for a Challenge's `spec.type`. */
  forChallenge(ch: Challenge): ChallengeSolver | undefined {
    return this.bySpecType.get(ch.spec.type);
  }

  /** The solvers that keep their own view of the Challenges (see `WatchesChallenges`). */
  watchers(): Array<ChallengeSolver & WatchesChallenges> {
    return [...this.byKind.values()].filter(watchesChallenges);
  }
}
