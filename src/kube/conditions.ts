/**
 * Conditions as cert-manager keeps them: `lastTransitionTime` moves only when
 * the status flips and `observedGeneration` is always stamped.
 */
import type { Condition, ConditionStatus } from '../api/types.ts';

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function getCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

/** Returns a new list; the input (possibly from a cache) is never mutated. */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  generation: number | undefined,
  now: Date,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === input.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime: prev && prev.status === input.status && prev.lastTransitionTime ? prev.lastTransitionTime : kubeTime(now),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** RFC3339 with second precision, as Kubernetes stores metav1.Time. */
export const kubeTime = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');
