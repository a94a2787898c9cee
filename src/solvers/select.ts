/**
 * Which of an issuer's solvers answers one ACME authorization. This is the
 * one place that decides it: the Order reconciler asks `chooseSolver` and
 * records the answer on the Challenge it creates.
 */
import type { AcmeAuthorization, AcmeChallengeRef, AcmeSolver, Issuer } from '../api/types.ts';
import type { SolverRegistry } from './registry.ts';
import { configPath, type ChallengeSolver } from './solver.ts';

export interface SolverChoice {
  /** The issuer's solver entry, copied onto the Challenge. */
  config: AcmeSolver;
  solver: ChallengeSolver;
  /** The challenge the CA offered for that solver's type. */
  offer: AcmeChallengeRef;
}

/**
 * Picks the solver cert-manager would among `candidates`: a dnsNames match
 * beats the longest dnsZones match, which beats a matchLabels-only selector,
 * which beats none; between equals the first listed wins. Labels are the
 * Certificate's, carried down to the Order.
 */
export function selectSolver(candidates: readonly AcmeSolver[], dnsName: string, labels: Record<string, string> = {}): AcmeSolver | undefined {
  let best: { s: AcmeSolver; score: number } | undefined;
  for (const s of candidates) {
    const sel = s.selector;
    const wanted = Object.entries(sel?.matchLabels ?? {});
    if (!wanted.every(([k, v]) => labels[k] === v)) continue;
    // More matching labels is more specific, but never outweighs a name or a zone.
    let score = wanted.length;
    if (sel?.dnsNames?.length) {
      if (!sel.dnsNames.includes(dnsName)) continue;
      score += 1_000_000;
    } else if (sel?.dnsZones?.length) {
      const zone = sel.dnsZones.filter((z) => dnsName === z || dnsName.endsWith(`.${z}`)).sort((a, b) => b.length - a.length)[0];
      if (!zone) continue;
      score += 1_000 * (1 + zone.length);
    }
    if (!best || score > best.score) best = { s, score };
  }
  return best?.s;
}

/**
 * The solver for an authorization: among the issuer's solvers that certroute
 * has, that can validate this name (a wildcard needs one that can) and whose
 * challenge type the CA offered, the one `selectSolver` prefers.
 */
export function chooseSolver(registry: SolverRegistry, issuer: Issuer | undefined, authz: AcmeAuthorization, labels?: Record<string, string>): SolverChoice | undefined {
  const usable = new Map<AcmeSolver, Omit<SolverChoice, 'config'>>();
  for (const config of issuer?.spec.acme?.solvers ?? []) {
    const solver = registry.forConfig(config);
    if (!solver || (authz.wildcard && !solver.wildcards)) continue;
    const offer = authz.challenges?.find((c) => c.type === solver.challengeType);
    if (offer) usable.set(config, { solver, offer });
  }
  // cert-manager matches a wildcard authorization as `*.<name>`: dnsNames must list it that way.
  const name = authz.wildcard ? `*.${authz.identifier ?? ''}` : (authz.identifier ?? '');
  const config = selectSolver([...usable.keys()], name, labels);
  const chosen = config && usable.get(config);
  return config && chosen ? { config, ...chosen } : undefined;
}

/** Why `chooseSolver` found nothing, and what to add. */
export function noSolverReason(registry: SolverRegistry, authz: AcmeAuthorization): string {
  const name = authz.identifier ?? '';
  if (authz.wildcard) {
    const kinds = registry.kinds.filter((k) => registry.get(k)?.wildcards).map(configPath);
    return kinds.length
      ? `${name} is a wildcard; no ${kinds.join(' or ')} solver on the issuer matches it; add one to spec.acme.solvers`
      : `${name} is a wildcard; HTTP-01 cannot validate wildcards, so add a dns01 solver that matches it`;
  }
  return `no ${registry.paths.join(' or ')} solver on the issuer matches ${name}; add one to spec.acme.solvers`;
}
