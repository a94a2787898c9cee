/** What every benchmark scenario receives and returns. */
import type { KubeClient } from '../../src/kube/client.ts';
import type { StackEnv } from '../../test/env/stack.ts';

/** One figure, printed beside its target; `met` is null where there is no target. */
export interface Result {
  scenario: string;
  value: number;
  unit: string;
  target: string | null;
  met: boolean | null;
}

export interface BenchContext {
  quick: boolean;
  /** A workload size: `full`, or about a tenth of it with --quick (never below `min`). */
  scale(full: number, min?: number): number;
  env: StackEnv;
  client: KubeClient;
  /** The run's ClusterIssuer for the stack's Pebble; Ready before any scenario runs. */
  issuer: string;
  /** Issuance pipelines in flight for the raw floor; the controller runs with --workers=C. */
  concurrency: number;
  /** Filled by the raw-floor scenario, read by the ratios of the others. */
  floor: { p50Ms?: number; ratePerSecond?: number };
  /** Setup timings (object creation and the like): reported, never a figure. */
  setup: Record<string, number>;
  log(line: string): void;
}

export interface Scenario {
  /** Name for --only. */
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<Result[]>;
}

export function figure(scenario: string, value: number, unit: string): Result {
  return { scenario, value, unit, target: null, met: null };
}

export function atMost(scenario: string, value: number, limit: number, unit: string): Result {
  return { scenario, value, unit, target: `≤ ${limit} ${unit}`, met: value <= limit };
}

export function atLeast(scenario: string, value: number, limit: number, unit: string): Result {
  return { scenario, value, unit, target: `≥ ${limit} ${unit}`, met: value >= limit };
}
