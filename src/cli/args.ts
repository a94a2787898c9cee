/**
 * Flag parsing shared by every sub-command: node:util parseArgs plus Go-style
 * durations, so `--min-backoff=30s` reads like cert-manager's flags.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseGoDuration } from '../base/duration.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function durationFlag(name: string, value: string | undefined, fallback: string): number {
  try {
    return parseGoDuration(value ?? fallback);
  } catch {
    throw new UsageError(`--${name}=${value}: not a duration; use Go syntax such as 30s, 5m or 1h`);
  }
}

export function portFlag(name: string, value: string | undefined, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name}=${value}: not a port number (0-65535)`);
  return n;
}

export function countFlag(name: string, value: string | undefined, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name}=${value}: not a whole number of at least 1`);
  return n;
}

export function booleanFlag(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new UsageError(`--${name}=${value}: use true or false`);
}
