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

/** The zones, the TSIG key and its secret; chosen once per stack start and kept in its state. */
export interface StackDns {
  /** The zone RFC 2136 tests update directly. */
  zone: string;
  /** The zone the Cloudflare stand-in serves, which it changes in BIND through RFC 2136. */
  cloudflareZone: string;
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
    `@ IN A ${loopback}`,
    // Every other name of the zone reaches Traefik too, so HTTP-01 works for it as well.
    `* IN A ${loopback}`,
    '',
  ].join('\n');
}

function namedConf(dir: string, port: number, forwardPort: number, dns: StackDns): string {
  const keys = { [dns.tsigKeyName]: dns.tsigAlgorithm, ...dns.extraKeys };
  const keyStatements = Object.entries(keys).map(([name, algorithm]) =>
    `key "${name}" { algorithm ${TsigAlgorithms[algorithm].name.replace('.sig-alg.reg.int', '')}; secret "${dns.tsigSecret}"; };`);
  const grants = Object.keys(keys).map((name) => `grant ${name} zonesub ANY;`).join(' ');
  const zones = [dns.zone, dns.cloudflareZone].map((zone) => [
    `zone "${zone}" {`,
    '  type primary;',
    `  file "${join(dir, `${zone}.db`)}";`,
    `  update-policy { ${grants} };`,
    // Tests read the whole zone with AXFR to show that no challenge record is left.
    `  allow-transfer { ${loopback}; };`,
    '};',
  ].join('\n'));
  return [
    'options {',
    `  directory "${dir}";`,
    '  pid-file none;',
    '  session-keyfile none;',
    `  listen-on port ${port} { ${loopback}; };`,
    '  listen-on-v6 { none; };',
    '  recursion yes;',
    `  allow-recursion { ${loopback}; };`,
    `  forwarders port ${forwardPort} { ${loopback}; };`,
    '  forward only;',
    '  dnssec-validation no;',
    '  notify no;',
    '  empty-zones-enable no;',
    // Names that tests point somewhere else through challtestsrv must not stick in the cache.
    '  max-cache-ttl 1;',
    '  max-ncache-ttl 1;',
    '};',
    // No rndc control channel: nothing listens but the DNS port.
    'controls { };',
    ...keyStatements,
    ...zones,
    '',
  ].join('\n');
}

/** Writes BIND's config and fresh zone files; named runs in the foreground (-g) with one worker. */
export function bindSpec(named: string, port: number, forwardPort: number, dns: StackDns): LaunchSpec {
  const dir = join(stackDir, 'bind');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const zone of [dns.zone, dns.cloudflareZone]) writeFileSync(join(dir, `${zone}.db`), zoneFile(zone));
  const conf = join(dir, 'named.conf');
  writeFileSync(conf, namedConf(dir, port, forwardPort, dns), { mode: 0o600 });
  return { command: named, args: ['-g', '-n', '1', '-c', conf], env: {}, cwd: dir };
}
