/**
 * The host around the cluster: the Debian packages it needs, and the host state it changes and
 * must give back. `recordHost` notes, before the first `up`, the kernel settings kubelet, kube-proxy
 * and the CNI bridge plugin write, the iptables rules, the mounts, the cgroups and the paths the
 * node programs create outside `.cluster/`; `restoreHost` removes what was added since and writes
 * the settings back. Nothing here touches a rule, chain, mount or interface that was there before.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StackError } from '../env/proc.ts';
import { hostBeforeFile, network } from './paths.ts';

export async function run(command: string, args: string[], opts: { input?: string; cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { maxBuffer: 256 << 20, cwd: opts.cwd, env: opts.env ? { ...process.env, ...opts.env } : process.env }, (error, stdout, stderr) => {
      if (error) reject(new StackError(`${command} ${args.join(' ')} failed: ${(stderr || error.message).trim().split('\n').slice(-3).join(' / ')}`, { cause: error }));
      else resolve(stdout);
    });
    // A program that exits without reading its input must not fail the call with EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

/** Debian packages and the program each must provide. */
const debianPackages: Record<string, string> = {
  containerd: '/usr/bin/containerd',
  runc: '/usr/sbin/runc',
  buildah: '/usr/bin/buildah',
  'containernetworking-plugins': '/usr/lib/cni/bridge',
  iptables: '/usr/sbin/iptables',
  conntrack: '/usr/sbin/conntrack',
};

/** Installs the node's Debian packages when one is missing, saying so first. */
export async function ensurePackages(log: (line: string) => void): Promise<void> {
  const missing = Object.entries(debianPackages).filter(([, path]) => !existsSync(path)).map(([name]) => name);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new StackError(`the cluster needs Debian's ${missing.join(', ')}; run as root: apt-get update && apt-get install -y ${missing.join(' ')}`);
  log(`installing ${missing.join(', ')} from Debian (the cluster's container runtime, CNI plugins and image builder; first run only)…`);
  await run('apt-get', ['update', '-qq']);
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
}

/**
 * Kernel settings the node changes: kubelet sets the first four (its "kernel defaults"), the CNI
 * bridge plugin turns on forwarding, kube-proxy would touch the last two if told to.
 */
const sysctls = [
  'kernel/panic', 'kernel/panic_on_oops', 'vm/overcommit_memory', 'vm/panic_on_oom',
  'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward', 'net/ipv4/conf/all/route_localnet', 'net/netfilter/nf_conntrack_max',
];

/** Paths outside `.cluster/` that kubelet, containerd or the CNI plugins create when missing. */
const createdPaths = ['/var/log/containers', '/var/log/pods', '/run/containerd', '/run/netns', '/var/lib/cni', '/var/run/netns', '/etc/cni', '/opt/cni', '/var/lib/kubelet'];

const iptablesTables = ['filter', 'nat', 'mangle', 'raw'];
const iptablesFamilies = ['iptables', 'ip6tables'];

export interface HostState {
  sysctls: Record<string, string>;
  /** `iptables -t <table> -S` lines, by "<family> <table>". */
  rules: Record<string, string[]>;
  mounts: string[];
  /** First-level cgroups of every hierarchy. */
  cgroups: string[];
  paths: Record<string, boolean>;
  links: string[];
}

function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

async function iptablesRules(): Promise<Record<string, string[]>> {
  const rules: Record<string, string[]> = {};
  for (const family of iptablesFamilies) {
    for (const table of iptablesTables) {
      rules[`${family} ${table}`] = (await run(family, ['-w', '-t', table, '-S']).catch(() => '')).split('\n').filter(Boolean);
    }
  }
  return rules;
}

function mountPoints(): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter(Boolean).map((line) => line.split(' ')[1]!.replace(/\\040/g, ' '));
}

function cgroups(): string[] {
  const found: string[] = [];
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    const root = join('/sys/fs/cgroup', hierarchy);
    try {
      for (const entry of readdirSync(root, { withFileTypes: true })) if (entry.isDirectory()) found.push(join(root, entry.name));
    } catch {
      // not a directory (a file of the unified hierarchy mounted at the root)
    }
  }
  return found;
}

function links(): string[] {
  return readdirSync('/sys/class/net');
}

export async function snapshotHost(): Promise<HostState> {
  return {
    sysctls: Object.fromEntries(sysctls.flatMap((key) => {
      const value = readSysctl(key);
      return value === undefined ? [] : [[key, value]];
    })),
    rules: await iptablesRules(),
    mounts: mountPoints(),
    cgroups: cgroups(),
    paths: Object.fromEntries(createdPaths.map((path) => [path, existsSync(path)])),
    links: links(),
  };
}

/**
 * Notes the host as it is, once: a snapshot left by an `up` that never reached `down` is the
 * true "before" and is kept.
 */
export async function recordHost(): Promise<HostState> {
  if (existsSync(hostBeforeFile)) return JSON.parse(readFileSync(hostBeforeFile, 'utf8')) as HostState;
  const state = await snapshotHost();
  writeFileSync(hostBeforeFile, JSON.stringify(state, null, 2) + '\n');
  return state;
}

export function recordedHost(): HostState | undefined {
  try {
    return JSON.parse(readFileSync(hostBeforeFile, 'utf8')) as HostState;
  } catch {
    return undefined;
  }
}

/**
 * Creates the pod bridge with the node's address, so the control plane can listen on it first.
 * A bridge that was there before `up` belongs to another cluster on this machine (another
 * checkout): the addresses are fixed, so only one can run.
 */
export async function createBridge(before: HostState): Promise<void> {
  if (before.links.includes(network.bridge)) {
    throw new StackError(`${network.bridge} already exists: another cluster runs on this machine; run \`npm run cluster -- down\` in its checkout first`);
  }
  if (!links().includes(network.bridge)) {
    await run('ip', ['link', 'add', network.bridge, 'type', 'bridge']);
  }
  const addresses = await run('ip', ['-4', '-o', 'addr', 'show', 'dev', network.bridge]);
  if (!addresses.includes(`${network.nodeIp}/`)) await run('ip', ['addr', 'add', `${network.nodeIp}/24`, 'dev', network.bridge]);
  await run('ip', ['link', 'set', network.bridge, 'up']);
}

/** Rule lines added since `before`, as delete commands; jumps first, so chains can be removed. */
async function removeAddedRules(before: HostState): Promise<void> {
  const now = await iptablesRules();
  for (const [key, lines] of Object.entries(now)) {
    const [family, table] = key.split(' ') as [string, string];
    const had = new Set(before.rules[key] ?? []);
    const added = lines.filter((line) => !had.has(line));
    const newChains = added.filter((line) => line.startsWith('-N ')).map((line) => line.slice(3));
    for (const rule of added.filter((line) => line.startsWith('-A '))) {
      // Rules inside a chain we delete go with it; others are removed one by one.
      const chain = rule.split(' ')[1]!;
      if (newChains.includes(chain)) continue;
      await run(family, ['-w', '-t', table, '-D', ...splitRule(rule.slice(3))]).catch(() => {});
    }
    for (const chain of newChains) await run(family, ['-w', '-t', table, '-F', chain]).catch(() => {});
    for (const chain of newChains) await run(family, ['-w', '-t', table, '-X', chain]).catch(() => {});
  }
}

/** Splits an `iptables -S` rule into arguments, keeping quoted comments whole. */
function splitRule(rule: string): string[] {
  const args: string[] = [];
  for (const match of rule.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) args.push(match[1] !== undefined ? match[1].replace(/\\"/g, '"') : match[2]!);
  return args;
}

async function unmountAdded(before: HostState): Promise<void> {
  const had = new Set(before.mounts);
  // Deepest first, and the same mount point may be stacked: repeat until nothing new is left.
  for (let pass = 0; pass < 5; pass++) {
    const added = mountPoints().filter((point) => !had.has(point)).sort((a, b) => b.length - a.length);
    if (added.length === 0) return;
    for (const point of added) await run('umount', [point]).catch(() => run('umount', ['-l', point]).catch(() => {}));
  }
  const left = mountPoints().filter((point) => !had.has(point));
  if (left.length > 0) throw new StackError(`mounts left after down: ${left.join(', ')}; unmount them by hand`);
}

/** Removes a cgroup and its children, deepest first; fails if a process still lives in one. */
function removeCgroup(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeCgroup(join(dir, entry.name));
  rmdirSync(dir);
}

function removeAddedCgroups(before: HostState): void {
  const had = new Set(before.cgroups);
  const failed: string[] = [];
  for (const dir of cgroups().filter((d) => !had.has(d))) {
    try {
      removeCgroup(dir);
    } catch {
      failed.push(dir);
    }
  }
  if (failed.length > 0) throw new StackError(`cgroups left after down (a process still runs in them): ${failed.join(', ')}`);
}

async function removeAddedLinks(before: HostState): Promise<void> {
  const had = new Set(before.links);
  for (const link of links().filter((l) => !had.has(l))) {
    // Only what the cluster made: its bridge and the veth halves its pods left behind.
    if (link === network.bridge || link.startsWith('veth')) await run('ip', ['link', 'delete', link]).catch(() => {});
  }
}

function restoreSysctls(before: HostState): string[] {
  const restored: string[] = [];
  for (const [key, value] of Object.entries(before.sysctls)) {
    if (readSysctl(key) === value) continue;
    writeFileSync(`/proc/sys/${key}`, value);
    restored.push(`${key.replaceAll('/', '.')}=${value}`);
  }
  return restored;
}

function removeCreatedPaths(before: HostState): void {
  for (const [path, existed] of Object.entries(before.paths)) {
    if (!existed && existsSync(path)) rmSync(path, { recursive: true, force: true });
  }
}

/**
 * Gives the host back: every mount, iptables rule and chain, cgroup, link and path added since
 * the snapshot goes, and the kernel settings get their old values. Call with no process of the
 * cluster left. Returns what was restored, for the log.
 */
export async function restoreHost(before: HostState): Promise<string[]> {
  await unmountAdded(before);
  await removeAddedRules(before);
  await removeAddedLinks(before);
  removeAddedCgroups(before);
  removeCreatedPaths(before);
  const restored = restoreSysctls(before);
  rmSync(hostBeforeFile, { force: true });
  return restored;
}

/** What differs from the snapshot now, one line per difference; empty when the host is as it was. */
export async function hostDifferences(before: HostState): Promise<string[]> {
  const now = await snapshotHost();
  const diff: string[] = [];
  for (const [key, value] of Object.entries(before.sysctls)) if (now.sysctls[key] !== value) diff.push(`sysctl ${key}: ${value} → ${now.sysctls[key]}`);
  for (const [key, lines] of Object.entries(now.rules)) {
    const had = new Set(before.rules[key] ?? []);
    for (const line of lines) if (!had.has(line)) diff.push(`${key}: ${line}`);
  }
  const hadMounts = new Set(before.mounts);
  for (const point of now.mounts) if (!hadMounts.has(point)) diff.push(`mount ${point}`);
  const hadCgroups = new Set(before.cgroups);
  for (const dir of now.cgroups) if (!hadCgroups.has(dir)) diff.push(`cgroup ${dir}`);
  const hadLinks = new Set(before.links);
  for (const link of now.links) if (!hadLinks.has(link)) diff.push(`link ${link}`);
  for (const [path, existed] of Object.entries(before.paths)) if (!existed && existsSync(path)) diff.push(`path ${path}`);
  return diff;
}
