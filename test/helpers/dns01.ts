/**
 * DNS-01 around the stack's BIND and Cloudflare stand-in: the controller flags that point
 * certroute's propagation check at BIND, ClusterIssuers with each provider written as a user
 * would, and readers of what the zone holds.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { kubectl, type StackEnv } from '../env/stack.ts';
import { standInEmail } from './cloudflare.ts';
import { parseServer, query, txtValues } from '../../src/dns/wire.ts';
import { pebbleClusterIssuer, waitFor } from './controller.ts';

const execFileP = promisify(execFile);

/** Where the ClusterIssuers' Secrets live: the controller's cluster resource namespace. */
export const SECRET_NAMESPACE = 'certroute';

/**
 * BIND is the recursive nameserver, and the authoritative one on its own port (NS records name
 * 127.0.0.1, with no port); the Cloudflare client talks to the stand-in.
 */
export function dns01Flags(env: StackEnv): string[] {
  const port = env.bind.address.split(':').at(-1)!;
  return [
    `--dns01-recursive-nameservers=${env.bind.address}`,
    `--dns01-authoritative-port=${port}`,
    '--dns01-check-retry-period=1s',
    `--dns01-cloudflare-api-url=${env.cloudflare.api}`,
  ];
}

/** `rfc2136-lagging` updates the lagging zone's primary (see `catchUp`). */
export type Dns01Provider = 'rfc2136' | 'rfc2136-lagging' | 'cloudflare' | 'cloudflare-key';

/** The Secret a provider reads, in the namespace ClusterIssuers read from. */
export async function providerSecret(name: string, key: string, value: string): Promise<void> {
  await kubectl(['-n', SECRET_NAMESPACE, 'delete', 'secret', name, '--ignore-not-found']);
  await kubectl(['-n', SECRET_NAMESPACE, 'create', 'secret', 'generic', name, `--from-literal=${key}=${value}`]);
}

/** The dns01 block of a solver for one provider, as cert-manager's documentation writes it. */
export function dns01Block(provider: Dns01Provider, env: StackEnv, secretName: string, indent: string): string {
  const lines = provider === 'rfc2136' || provider === 'rfc2136-lagging'
    ? ['rfc2136:', `  nameserver: ${provider === 'rfc2136' ? env.bind.address : env.bind.laggingPrimary}`, `  tsigKeyName: ${env.bind.tsigKeyName}`, `  tsigAlgorithm: ${env.bind.tsigAlgorithm}`,
      '  tsigSecretSecretRef:', `    name: ${secretName}`, '    key: tsig-secret-key']
    : provider === 'cloudflare'
      ? ['cloudflare:', '  apiTokenSecretRef:', `    name: ${secretName}`, '    key: api-token']
      : ['cloudflare:', `  email: ${standInEmail(env.cloudflare.zone)}`, '  apiKeySecretRef:', `    name: ${secretName}`, '    key: api-key'];
  return lines.map((l) => `${indent}${l}`).join('\n');
}

/** Creates the provider's Secret (with `value`, or the stack's real credential) and returns its dns01 block. */
export async function dns01Solver(name: string, env: StackEnv, provider: Dns01Provider, indent: string, value?: string): Promise<string> {
  const secretName = `${name}-dns`;
  if (provider === 'rfc2136' || provider === 'rfc2136-lagging') await providerSecret(secretName, 'tsig-secret-key', value ?? env.bind.tsigSecret);
  else await providerSecret(secretName, provider === 'cloudflare' ? 'api-token' : 'api-key', value ?? env.cloudflare.token);
  return `${indent}dns01:\n${dns01Block(provider, env, secretName, `${indent}  `)}`;
}

/** The stack's Pebble ClusterIssuer with these solver entries (each a YAML list item at 6 spaces). */
export function withSolvers(issuerYaml: string, solvers: string): string {
  return issuerYaml.replace(/ {4}solvers:\n[\s\S]*$/, `    solvers:\n${solvers}\n`);
}

/** A ClusterIssuer for Pebble whose one solver is DNS-01 through `provider`. */
export async function dns01Issuer(name: string, env: StackEnv, provider: Dns01Provider, value?: string): Promise<string> {
  const block = await dns01Solver(name, env, provider, '        ', value);
  return withSolvers(pebbleClusterIssuer(name, env), `      -${block.slice(7)}`);
}

/** Every record of a zone, one per line, read with `dig AXFR` straight from BIND (or `server`). */
export async function zoneRecords(env: StackEnv, zone: string, server = env.bind.address): Promise<string[]> {
  const { host, port } = parseServer(server);
  const { stdout } = await execFileP('dig', [`@${host}`, '-p', String(port), zone, 'AXFR', '+nocmd', '+nostats', '+nocomments']);
  const records = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith(';'));
  if (!records.some((r) => r.includes('SOA'))) throw new Error(`dig AXFR ${zone} from ${server} returned no SOA: ${stdout}`);
  return records;
}

/** The TXT values of `_acme-challenge` names in the zone. */
export async function challengeRecords(env: StackEnv, zone: string, server = env.bind.address): Promise<string[]> {
  return (await zoneRecords(env, zone, server)).filter((r) => r.startsWith('_acme-challenge') && /\sTXT\s/.test(r));
}

/** The TXT values one server answers for `name`, asked directly (no recursion). */
export async function txtAt(server: string, name: string): Promise<string[]> {
  return txtValues(await query(parseServer(server), name, 'TXT', { recursive: false }), name);
}

async function serial(server: string, zone: string): Promise<number | undefined> {
  const answer = await query(parseServer(server), zone, 'SOA', { recursive: false });
  const soa = (answer.answers ?? []).find((a) => a.type === 'SOA');
  return soa?.type === 'SOA' ? soa.data.serial : undefined;
}

/**
 * Lets the stack's BIND, the lagging zone's late secondary, catch up with the primary: a NOTIFY,
 * as a primary would send, then wait until it serves the primary's serial.
 */
export async function catchUp(env: StackEnv): Promise<void> {
  const { host, port } = parseServer(env.bind.address);
  const zone = env.bind.laggingZone;
  const want = await serial(env.bind.laggingPrimary, zone);
  await execFileP('dig', [`@${host}`, '-p', String(port), '+opcode=notify', '+norecurse', zone, 'SOA']);
  await waitFor(`BIND's copy of ${zone} to reach the primary's serial ${want}`, async () => (await serial(env.bind.address, zone)) === want, 30_000);
}

/**
 * Gives `name` an A record for 127.0.0.1 in BIND, as a real zone has for a host it serves: the
 * zone's `*` record stops covering a name once a challenge record makes its parent exist
 * (RFC 4592), e.g. web.x.<zone> beside _acme-challenge.x.<zone>.
 */
export async function addAddress(env: StackEnv, name: string): Promise<void> {
  await addRecord(env, name, 'A', '127.0.0.1');
}

/** Adds one record to a zone of the stack's BIND with `nsupdate`, signed with the stack's key. */
export async function addRecord(env: StackEnv, name: string, type: 'A' | 'CNAME', data: string): Promise<void> {
  const { host, port } = parseServer(env.bind.address);
  const algorithm = env.bind.tsigAlgorithm.replace(/^HMAC/, 'hmac-').toLowerCase();
  const child = execFile('nsupdate', ['-y', `${algorithm}:${env.bind.tsigKeyName}:${env.bind.tsigSecret}`]);
  const done = new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nsupdate exited ${code}`)))));
  child.stdin?.end(`server ${host} ${port}\nupdate add ${name} 60 ${type} ${data}\nsend\n`);
  await done;
}
