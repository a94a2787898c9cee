/**
 * Several processes share one `.stack/`: `npm test`, ava workers that restart a component, a
 * developer's `npm run stack`, and other checkouts' sessions working in the same tree. Three rules
 * keep them from pulling the stack out from under each other:
 *
 * - `withLock` serializes whatever starts or stops processes (up, down, restart).
 * - A test run holds a lease (`.stack/users/<pid>`) while it uses the stack. It tears the stack down
 *   at the end only if a test run started it and no other live test run holds a lease, so a
 *   stack started by hand stays up, and a concurrent `npm test` keeps its stack.
 * - Test runs take turns with the stack's tests (`testsLockFile`): every test file's leader
 *   reconciles every Certificate in the cluster, so two runs' files at once would act on each
 *   other's objects. A second `npm test` on the same stack waits for the first one's tests.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stackDir } from './paths.ts';
import { isAlive } from './proc.ts';

export const lockFile = join(stackDir, 'lock');
/** Held by a test run while its integration and e2e tests run on the stack. */
export const testsLockFile = join(stackDir, 'tests.lock');
const usersDir = join(stackDir, 'users');

interface Holder {
  pid: number;
  what: string;
}

function holder(file: string): Holder | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Holder;
  } catch {
    return undefined;
  }
}

/** How deep this process is in each lock it holds: the locks are re-entrant within one process. */
const held = new Map<string, number>();

/** Runs `fn` holding the stack's lock; re-entrant within one process. Waits as long as it takes. */
export function withLock<T>(what: string, fn: () => Promise<T>, log: (line: string) => void = console.error): Promise<T> {
  return withFileLock(lockFile, what, fn, log);
}

/**
 * Runs `fn` holding the lock `file` (created with O_EXCL, naming this pid); re-entrant within one
 * process. Waits as long as it takes; a lock left by a dead process is taken over.
 */
export async function withFileLock<T>(file: string, what: string, fn: () => Promise<T>, log: (line: string) => void = console.error): Promise<T> {
  const depth = held.get(file) ?? 0;
  if (depth === 0) await acquire(file, what, log);
  held.set(file, depth + 1);
  try {
    return await fn();
  } finally {
    held.set(file, (held.get(file) ?? 1) - 1);
    if (held.get(file) === 0 && holder(file)?.pid === process.pid) rmSync(file, { force: true });
  }
}

async function acquire(file: string, what: string, log: (line: string) => void): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  let warned = false;
  for (;;) {
    try {
      writeFileSync(file, JSON.stringify({ pid: process.pid, what } satisfies Holder), { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const current = holder(file);
      if (current && !isAlive(current.pid)) {
        rmSync(file, { force: true }); // left by a process that died holding it
        continue;
      }
      if (!warned && current) log(`waiting for pid ${current.pid} (${current.what}) to finish…`);
      warned = true;
      await sleep(200);
    }
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
