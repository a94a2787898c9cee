/**
 * Several processes share one `.stack/`: `npm test`, ava workers that restart a component, a
 * developer's `npm run stack`, and other checkouts' sessions working in the same tree. Two rules
 * keep them from pulling the stack out from under each other:
 *
 * - `withLock` serializes whatever starts or stops processes (up, down, restart).
 * - A test run holds a lease (`.stack/users/<pid>`) while it uses the stack. It tears the stack down
 *   at the end only if a test run started it and no other live test run holds a lease, so a
 *   stack started by hand stays up, and a concurrent `npm test` keeps its stack.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stackDir } from './paths.ts';
import { isAlive } from './proc.ts';

export const lockFile = join(stackDir, 'lock');
const usersDir = join(stackDir, 'users');

interface Holder {
  pid: number;
  what: string;
}

function holder(): Holder | undefined {
  try {
    return JSON.parse(readFileSync(lockFile, 'utf8')) as Holder;
  } catch {
    return undefined;
  }
}

let held = 0;

/** Runs `fn` holding the stack's lock; re-entrant within one process. Waits as long as it takes. */
export async function withLock<T>(what: string, fn: () => Promise<T>, log: (line: string) => void = console.error): Promise<T> {
  if (held > 0) {
    held++;
    try {
      return await fn();
    } finally {
      held--;
    }
  }
  mkdirSync(stackDir, { recursive: true });
  let warned = false;
  for (;;) {
    try {
      writeFileSync(lockFile, JSON.stringify({ pid: process.pid, what } satisfies Holder), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const current = holder();
      if (current && !isAlive(current.pid)) {
        rmSync(lockFile, { force: true }); // left by a process that died holding it
        continue;
      }
      if (!warned && current) log(`waiting for pid ${current.pid} (${current.what}) to finish with the local stack…`);
      warned = true;
      await sleep(200);
    }
  }
  held++;
  try {
    return await fn();
  } finally {
    held--;
    if (holder()?.pid === process.pid) rmSync(lockFile, { force: true });
  }
}

/** Marks this process as using the stack until `dropLease`. */
export function takeLease(): void {
  mkdirSync(usersDir, { recursive: true });
  writeFileSync(join(usersDir, String(process.pid)), '');
}

export function dropLease(): void {
  rmSync(join(usersDir, String(process.pid)), { force: true });
}

/** Pids of live processes other than this one that hold a lease. */
export function otherUsers(): number[] {
  let entries: string[];
  try {
    entries = readdirSync(usersDir);
  } catch {
    return [];
  }
  return entries.map(Number).filter((pid) => pid !== process.pid && Number.isInteger(pid) && isAlive(pid));
}
