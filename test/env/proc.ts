/**
 * Starting and stopping the stack's processes. Each runs in its own process group (detached), so
 * `down` can kill a component together with anything it forked, and outlives the Node process
 * that started it: `npm run stack -- up` returns while the stack keeps running.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { logFile } from './paths.ts';

/** Everything needed to start a component again, persisted so another process can restart it. */
export interface LaunchSpec {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

/** An error whose one-line message tells the user what to do; the CLI prints only that line. */
export class StackError extends Error {
  override name = 'StackError';
}

/** Variables that would make a child talk to some other cluster than ours. */
const inheritedButHarmful = ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'KUBECONFIG'];

export function launch(name: string, spec: LaunchSpec, log = logFile(name)): number {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const key of inheritedButHarmful) delete env[key];
  const fd = openSync(log, 'a');
  try {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: { ...env, ...spec.env },
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    if (child.pid === undefined) throw new StackError(`could not start ${name} (${spec.command}); see ${log}`);
    child.on('error', () => {}); // surfaced by the readiness wait as "exited during start"
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

interface ProcStat {
  pid: number;
  state: string;
  pgrp: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return { pid, state: fields[0] ?? '?', pgrp: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

/** Zombies count as dead: they hold no port and do nothing. */
export function isAlive(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** Live processes of a process group, read from /proc because kill(-pgid, 0) also sees zombies. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') members.push(stat.pid);
  }
  return members;
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** The group's live members, or the process alone if it does not lead a group of its own. */
function targets(pgid: number): number[] {
  const members = groupMembers(pgid);
  return members.length > 0 || !isAlive(pgid) ? members : [pgid];
}

function signal(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(groupMembers(pgid).length > 0 ? -pgid : pgid, sig);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** SIGTERM the group, then SIGKILL what is left after `graceMs`; resolves once nothing is left. */
export async function killGroup(pgid: number, graceMs = 5000): Promise<void> {
  if (targets(pgid).length === 0) return;
  signal(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (targets(pgid).length > 0 && Date.now() < deadline) await sleep(50);
  if (targets(pgid).length === 0) return;
  signal(pgid, 'SIGKILL');
  const hardDeadline = Date.now() + 5000;
  while (targets(pgid).length > 0) {
    if (Date.now() > hardDeadline) throw new StackError(`process group ${pgid} survived SIGKILL; check \`ps -g ${pgid}\``);
    await sleep(50);
  }
}

/** Size of a component's log now, so that a later look reads only what this run wrote. */
export function logSize(name: string): number {
  try {
    return statSync(logFile(name)).size;
  } catch {
    return 0;
  }
}

function logSince(name: string, offset: number): string {
  try {
    return readFileSync(logFile(name)).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

/** Why a component died during start, as one actionable line. */
export function diedMessage(name: string, logOffset = 0): string {
  const tail = logSince(name, logOffset);
  const inUse = /(?:127\.0\.0\.1|localhost|\[::\]|0\.0\.0\.0)?:(\d+):? bind: address already in use|address already in use.*?:(\d+)/.exec(tail);
  if (inUse || tail.includes('address already in use')) {
    const port = inUse?.[1] ?? inUse?.[2];
    return `${name} could not listen: port ${port ?? '(see log)'} is already in use; stop whatever holds it (\`ss -ltnp\`) and run \`npm run stack -- up\` again; log: ${logFile(name)}`;
  }
  return `${name} exited during start; see ${logFile(name)}`;
}

/**
 * Polls `ready` until it returns true. Fails fast, with the log path, if the process dies first:
 * waiting out a timeout for a process that is already gone only hides the cause.
 */
export async function waitReady(
  name: string,
  pid: number,
  ready: () => Promise<boolean>,
  timeoutMs: number,
  logOffset = 0,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(pid)) throw new StackError(diedMessage(name, logOffset));
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new StackError(`${name} did not become ready within ${Math.round(timeoutMs / 1000)} s; see ${logFile(name)}`);
    }
    await sleep(100);
  }
}
