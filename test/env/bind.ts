/**
 * BIND 9 in the stack: the DNS that Pebble asks. It is authoritative for the DNS-01 test zones,
 * takes TSIG-signed dynamic updates for them, and forwards every other name to challtestsrv,
 * which answers 127.0.0.1 for everything, so HTTP-01 validation still reaches Traefik.
 *
 * named runs in the foreground from a config in `.stack/bind`, on a free port, with no rndc
 * channel and nothing written outside that directory.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TsigAlgorithms, type TsigAlgorithm } from '../../src/dns/tsig.ts';
import { stackDir } from './paths.ts';
import { StackError, type LaunchSpec } from './proc.ts';

const loopback = '127.0.0.1';
/**
 * The lagging zone's primary as its NS record names it, on the stack BIND's port: the
 * authoritative servers of a zone are all asked on one port (--dns01-authoritative-port), so they
 * differ by address. named itself listens on another port of 127.0.0.1 (it binds only interface
 * addresses), behind a relay (dns-relay.ts) on this one.
 */
export const LAGGING_PRIMARY_ADDRESS = '127.0.0.2';

/** The zones, the TSIG key and its secret; chosen once per stack start and kept in its state. */
export interface StackDns {
  /** The zone RFC 2136 tests update directly. */
  zone: string;
  /** The zone the Cloudflare stand-in serves, which it changes in BIND through RFC 2136. */
  cloudflareZone: string;
  /**
   * A zone with two authoritative servers, one of them late: updates go to its primary (a second
   * named, at LAGGING_PRIMARY_ADDRESS); the stack's BIND, which Pebble asks, holds a secondary copy
   * that catches up only when a test sends it a NOTIFY (`catchUp`).
   */
  laggingZone: string;
  tsigKeyName: string;
  tsigAlgorithm: TsigAlgorithm;
  /** Base64, as a Kubernetes Secret and BIND's `key` statement hold it. */
  tsigSecret: string;
  /** One more key per other algorithm (same secret, named by `keyNameFor`), so tests can try every `tsigAlgorithm`. */
  extraKeys: Record<string, TsigAlgorithm>;
  /** The Cloudflare stand-in's API token. */
  cloudflareToken: string;
}

/** The name of the stack's key for another algorithm; it holds the same secret as the main key. */
export function keyNameFor(dns: Pick<StackDns, 'tsigKeyName'>, algorithm: TsigAlgorithm): string {
  return `${dns.tsigKeyName}-${algorithm.toLowerCase()}`;
}

export function newStackDns(): StackDns {
  const tsigKeyName = 'certroute-stack';
  const others = (Object.keys(TsigAlgorithms) as TsigAlgorithm[]).filter((a) => a !== 'HMACSHA256');
  return {
    zone: 'dns01.test',
    cloudflareZone: 'cloudflare.test',
    laggingZone: 'lagging.test',
    tsigKeyName,
    tsigAlgorithm: 'HMACSHA256',
    tsigSecret: randomBytes(32).toString('base64'),
    extraKeys: Object.fromEntries(others.map((a) => [keyNameFor({ tsigKeyName }, a), a])),
    cloudflareToken: randomBytes(24).toString('base64url'),
  };
}

const candidates = ['/usr/sbin/named', '/usr/bin/named'];

function findNamed(): string | undefined {
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // try the next one
    }
  }
  try {
    return execFileSync('sh', ['-c', 'command -v named'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const execFileP = promisify(execFile);

/**
 * Path of BIND's `named`. On a Debian machine where we are root and it is missing, installs
 * Debian's bind9 (and dig, which the DNS-01 tests read the zone with), saying so first.
 */
export async function namedPath(log: (line: string) => void): Promise<string> {
  const found = findNamed();
  if (found) return found;
  const canInstall = process.getuid?.() === 0 && findAptGet();
  if (!canInstall) {
    throw new StackError('BIND 9 (named) is not installed; the stack needs it for DNS-01: apt-get install -y bind9 bind9-dnsutils');
  }
  log('BIND 9 (named) is not installed; installing Debian\'s bind9 and bind9-dnsutils with apt-get (once)…');
  try {
    await execFileP('apt-get', ['update'], { maxBuffer: 16 << 20 });
    await execFileP('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', 'bind9', 'bind9-dnsutils'], {
      maxBuffer: 16 << 20, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (error) {
    throw new StackError('installing bind9 with apt-get failed; run apt-get install -y bind9 bind9-dnsutils by hand', { cause: error });
  }
  const installed = findNamed();
  if (!installed) throw new StackError('apt-get installed bind9 but named is not on PATH or in /usr/sbin');
  return installed;
}

function findAptGet(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function zoneFile(zone: string): string {
  // TTL 1: tests read each change at once, through BIND's cache as well as directly.
  return [
    '$TTL 1',
    `@ IN SOA ns1.${zone}. hostmaster.${zone}. 1 60 60 3600 1`,
    `@ IN NS ns1.${zone}.`,
    `ns1 IN A ${loopback}`,
    ...hostRecords,
  ].join('\n');
}

const hostRecords = [
  `@ IN A ${loopback}`,
  // Every other name of the zone reaches Traefik too, so HTTP-01 works for it as well.
  `* IN A ${loopback}`,
  '',
];

/**
 * The lagging zone: two nameservers, ns1 its primary and ns2 the stack's BIND. A refresh of a day
 * and an expiry of four weeks: the secondary never catches up on its own timer during a run,
 * and never drops the zone either.
 */
function laggingZoneFile(zone: string): string {
  return [
    '$TTL 1',
    `@ IN SOA ns1.${zone}. hostmaster.${zone}. 1 86400 1 2419200 1`,
    `@ IN NS ns1.${zone}.`,
    `@ IN NS ns2.${zone}.`,
    `ns1 IN A ${LAGGING_PRIMARY_ADDRESS}`,
    `ns2 IN A ${loopback}`,
    ...hostRecords,
  ].join('\n');
}

/** The key statements and the update-policy grants for every stack key. */
function keys(dns: StackDns): { statements: string[]; grants: string } {
  const all = { [dns.tsigKeyName]: dns.tsigAlgorithm, ...dns.extraKeys };
  return {
    statements: Object.entries(all).map(([name, algorithm]) =>
      `key "${name}" { algorithm ${TsigAlgorithms[algorithm].name.replace('.sig-alg.reg.int', '')}; secret "${dns.tsigSecret}"; };`),
    grants: Object.keys(all).map((name) => `grant ${name} zonesub ANY;`).join(' '),
  };
}

/** Options both named processes share: foreground, nothing written outside `dir`, no NOTIFY sent. */
function commonOptions(dir: string, address: string, port: number): string[] {
  return [
    `  directory "${dir}";`,
    '  pid-file none;',
    '  session-keyfile none;',
    `  listen-on port ${port} { ${address}; };`,
    '  listen-on-v6 { none; };',
    '  dnssec-validation no;',
    '  notify no;',
    '  empty-zones-enable no;',
  ];
}

/** A zone this named is the primary of, updated with the stack's keys. */
function primaryZone(dir: string, zone: string, grants: string): string {
  return [
    `zone "${zone}" {`,
    '  type primary;',
    `  file "${join(dir, `${zone}.db`)}";`,
    `  update-policy { ${grants} };`,
    // Tests read the whole zone with AXFR to show that no challenge record is left; the
    // lagging zone's secondary transfers it from here.
    `  allow-transfer { ${loopback}; };`,
    '};',
  ].join('\n');
}

function namedConf(dir: string, port: number, forwardPort: number, primaryPort: number, dns: StackDns): string {
  const { statements, grants } = keys(dns);
  const zones = [dns.zone, dns.cloudflareZone].map((zone) => primaryZone(dir, zone, grants));
  const lagging = [
    `zone "${dns.laggingZone}" {`,
    '  type secondary;',
    `  primaries port ${primaryPort} { ${loopback}; };`,
    // Catches up when a test sends a NOTIFY from the loopback address, not before.
    `  allow-notify { ${loopback}; };`,
    `  allow-transfer { ${loopback}; };`,
    // The first transfer, at start-up, is retried at once should the primary be late.
    '  min-retry-time 1;',
    '  max-retry-time 2;',
    '};',
  ].join('\n');
  return [
    'options {',
    ...commonOptions(dir, loopback, port),
    '  recursion yes;',
    `  allow-recursion { ${loopback}; };`,
    `  forwarders port ${forwardPort} { ${loopback}; };`,
    '  forward only;',
    // Names that tests point somewhere else through challtestsrv must not stick in the cache.
    '  max-cache-ttl 1;',
    '  max-ncache-ttl 1;',
    '};',
    // No rndc control channel: nothing listens but the DNS port.
    'controls { };',
    ...statements,
    ...zones,
    lagging,
    '',
  ].join('\n');
}

/** The lagging zone's primary: authoritative only, takes the stack's signed updates, sends no NOTIFY. */
function laggingPrimaryConf(dir: string, port: number, dns: StackDns): string {
  const { statements, grants } = keys(dns);
  return [
    'options {',
    ...commonOptions(dir, loopback, port),
    '  recursion no;',
    '};',
    'controls { };',
    ...statements,
    primaryZone(dir, dns.laggingZone, grants),
    '',
  ].join('\n');
}

/** Writes BIND's config and fresh zone files; named runs in the foreground (-g) with one worker. */
export function bindSpec(named: string, port: number, forwardPort: number, primaryPort: number, dns: StackDns): LaunchSpec {
  const dir = freshDir('bind');
  for (const zone of [dns.zone, dns.cloudflareZone]) writeFileSync(join(dir, `${zone}.db`), zoneFile(zone));
  const conf = join(dir, 'named.conf');
  writeFileSync(conf, namedConf(dir, port, forwardPort, primaryPort, dns), { mode: 0o600 });
  return { command: named, args: ['-g', '-n', '1', '-c', conf], env: {}, cwd: dir };
}

/** The lagging zone's primary, a second named on its own port of 127.0.0.1. */
export function laggingPrimarySpec(named: string, port: number, dns: StackDns): LaunchSpec {
  const dir = freshDir('bind-primary');
  writeFileSync(join(dir, `${dns.laggingZone}.db`), laggingZoneFile(dns.laggingZone));
  const conf = join(dir, 'named.conf');
  writeFileSync(conf, laggingPrimaryConf(dir, port, dns), { mode: 0o600 });
  return { command: named, args: ['-g', '-n', '1', '-c', conf], env: {}, cwd: dir };
}

function freshDir(name: string): string {
  const dir = join(stackDir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
