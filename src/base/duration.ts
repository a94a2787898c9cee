/**
 * Go duration strings, the syntax of every duration in the cert-manager API
 * (metav1.Duration) and of certroute's own flags, so manifests and command
 * lines written for cert-manager read the same here. One parser for all of
 * them: the API types, the CLI and the annotation shim must never disagree on
 * what "2160h" means.
 */

/** cert-manager's default `spec.duration`: 90 days. */
export const DEFAULT_DURATION = '2160h';
export const DEFAULT_DURATION_MS = 90 * 24 * 3600 * 1000;

/** A `spec.duration` in milliseconds, cert-manager's 90 days when unset or empty. Throws when it is not a Go duration. */
export function durationMs(duration?: string): number {
  return duration ? parseGoDuration(duration) : DEFAULT_DURATION_MS;
}

/** A Go duration in milliseconds, or undefined where Go's time.ParseDuration would fail. */
export function tryParseGoDuration(text: string): number | undefined {
  try {
    return parseGoDuration(text);
  } catch {
    return undefined;
  }
}

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go `time.ParseDuration` string ("2160h30m1.5s", "-1m", "0") to
 * milliseconds. Kubernetes' metav1.Duration fields use this syntax, so
 * manifests written for cert-manager must parse the same way here.
 */
export function parseGoDuration(text: string): number {
  const fail = (): never => {
    throw new Error(`${JSON.stringify(text)} is not a duration: use Go syntax such as "2160h" or "1h30m"`);
  };
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') fail();
  let total = 0;
  const part = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest.length > 0) {
    const match = part.exec(rest);
    if (!match || !match[1] || !match[2]) return fail();
    total += Number(match[1]) * (UNIT_MS[match[2]] ?? fail());
    rest = rest.slice(match[0].length);
  }
  return sign * total;
}

/**
 * Formats milliseconds as Go's `Duration.String()` does ("2160h0m0s", "1.5s",
 * "250ms", "0s"), so durations written to status or events read the same as
 * cert-manager's. Works in integer nanoseconds, as Go does, so there is no
 * floating-point noise in the output.
 */
export function formatGoDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new Error(`cannot format ${ms} as a duration`);
  const whole = Math.trunc(ms);
  let ns = BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
  const negative = ns < 0n;
  if (negative) ns = -ns;
  const sign = negative ? '-' : '';
  if (ns === 0n) return '0s';
  if (ns < 1_000n) return `${sign}${ns}ns`;
  if (ns < 1_000_000n) return `${sign}${fraction(ns, 1_000n)}µs`;
  if (ns < 1_000_000_000n) return `${sign}${fraction(ns, 1_000_000n)}ms`;
  const hours = ns / 3_600_000_000_000n;
  const minutes = (ns / 60_000_000_000n) % 60n;
  const seconds = fraction(ns % 60_000_000_000n, 1_000_000_000n);
  if (hours > 0n) return `${sign}${hours}h${minutes}m${seconds}s`;
  if (minutes > 0n) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${seconds}s`;
}

/** `value / unit` as a decimal with trailing zeros dropped. */
function fraction(value: bigint, unit: bigint): string {
  const integer = value / unit;
  const remainder = value % unit;
  if (remainder === 0n) return integer.toString();
  const digits = (unit.toString().length - 1);
  const frac = remainder.toString().padStart(digits, '0').replace(/0+$/, '');
  return `${integer}.${frac}`;
}
