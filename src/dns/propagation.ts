/**
 * Whether a TXT value can be seen the way the CA will look for it, before certroute asks the CA
 * to validate: as cert-manager does, find the zone's authoritative nameservers through the
 * recursive nameservers (SOA, then NS), and ask each of them directly until all of them return
 * the value. With `recursiveOnly`, ask the recursive nameservers alone.
 */
import { readFileSync } from 'node:fs';
import type * as packet from 'dns-packet';
import { formatServer, normalizeName, parseServer, query, txtValues, type Response, type Server } from './wire.ts';

export interface ResolverConfig {
  /** Where SOA, NS, CNAME and A lookups go (cert-manager's --dns01-recursive-nameservers). */
  recursive: Server[];
  /** Check through the recursive nameservers only (--dns01-recursive-nameservers-only). */
  recursiveOnly: boolean;
  /** Port on which authoritative nameservers are asked: 53, except on test beds. */
  authoritativePort: number;
  timeoutMs?: number;
}

/** The nameservers of /etc/resolv.conf, cert-manager's default when no flag names any. */
export function systemNameservers(resolvConf = '/etc/resolv.conf'): Server[] {
  let text = '';
  try {
    text = readFileSync(resolvConf, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').flatMap((line) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    return m ? [parseServer(m[1]!.includes(':') && !m[1]!.includes('.') ? `[${m[1]}]` : m[1]!)] : [];
  });
}

/** Asks each recursive nameserver in turn until one answers; the last failure otherwise. */
async function ask(config: ResolverConfig, name: string, type: 'SOA' | 'NS' | 'A' | 'CNAME' | 'TXT'): Promise<Response> {
  if (config.recursive.length === 0) throw new Error('no recursive nameservers: set --dns01-recursive-nameservers');
  let last: unknown;
  for (const server of config.recursive) {
    try {
      const answer = await query(server, name, type, { recursive: true, timeoutMs: config.timeoutMs });
      if (answer.rcode === 'NOERROR' || answer.rcode === 'NXDOMAIN') return answer;
      last = new Error(`${formatServer(server)} answered ${answer.rcode} for ${name} ${type}`);
    } catch (error) {
      last = error;
    }
  }
  throw last;
}

/**
 * `cnameStrategy: Follow`: where `fqdn` leads through CNAMEs (at most 8, against loops), so the
 * record is written in the zone the name is delegated to.
 */
export async function followCnames(config: ResolverConfig, fqdn: string): Promise<string> {
  let name = normalizeName(fqdn);
  for (let hops = 0; hops < 8; hops++) {
    const answer = await ask(config, name, 'CNAME');
    const cname = (answer.answers ?? []).find((a): a is packet.StringAnswer => a.type === 'CNAME' && normalizeName(a.name) === name);
    if (!cname) return name;
    name = normalizeName(cname.data);
  }
  throw new Error(`${normalizeName(fqdn)} leads through more than 8 CNAMEs; check for a loop`);
}

/** The zone apex holding `fqdn`: the SOA owner in the answer, or in the authority section of a negative answer. */
export async function findZone(config: ResolverConfig, fqdn: string): Promise<string> {
  const labels = normalizeName(fqdn).split('.');
  for (let i = 0; i < labels.length; i++) {
    const candidate = labels.slice(i).join('.');
    const answer = await ask(config, candidate, 'SOA');
    const soa = [...(answer.answers ?? []), ...(answer.authorities ?? [])].find((r) => r.type === 'SOA');
    if (soa) return normalizeName(soa.name);
  }
  throw new Error(`no SOA record found for ${normalizeName(fqdn)} or any parent; is the zone delegated?`);
}

/** Addresses of the zone's nameservers (NS, then each one's A records), on the authoritative port. */
export async function authoritativeServers(config: ResolverConfig, zone: string): Promise<Server[]> {
  const ns = (await ask(config, zone, 'NS')).answers?.flatMap((a) => (a.type === 'NS' && typeof a.data === 'string' ? [a.data] : [])) ?? [];
  if (ns.length === 0) throw new Error(`zone ${zone} has no NS records`);
  const servers: Server[] = [];
  for (const host of ns) {
    const addresses = (await ask(config, host, 'A')).answers?.flatMap((a) => (a.type === 'A' && typeof a.data === 'string' ? [a.data] : [])) ?? [];
    for (const address of addresses) servers.push({ host: address, port: config.authoritativePort });
  }
  if (servers.length === 0) throw new Error(`the nameservers of zone ${zone} (${ns.join(', ')}) have no A records`);
  return servers;
}

export type Propagation = { ok: true } | { ok: false; message: string };

/** Whether every server that matters returns `value` among the TXT records of `fqdn`. */
export async function checkPropagation(config: ResolverConfig, fqdn: string, value: string): Promise<Propagation> {
  const name = normalizeName(fqdn);
  try {
    const servers = config.recursiveOnly ? config.recursive : await authoritativeServers(config, await findZone(config, name));
    for (const server of servers) {
      const answer = await query(server, name, 'TXT', { recursive: config.recursiveOnly, timeoutMs: config.timeoutMs });
      if (!txtValues(answer, name).includes(value)) {
        return { ok: false, message: `DNS record for "${name}" not yet propagated: nameserver ${formatServer(server)} does not return the challenge value (answered ${answer.rcode})` };
      }
    }
    return { ok: true };
  } catch (error) {
    return { ok: false, message: `DNS propagation check for "${name}" failed: ${(error as Error).message}` };
  }
}
