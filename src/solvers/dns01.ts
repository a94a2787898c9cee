/**
 * DNS-01, as cert-manager solves it: present writes `_acme-challenge.<name>` TXT with the key
 * authorization digest through the solver's provider (RFC 2136 or Cloudflare); the readiness check
 * asks every authoritative nameserver of the zone until all of them return it; clean-up deletes
 * exactly that value and leaves any other value on the name (another Order's) alone.
 *
 * Only the leader reconciles Challenges, so only the leader writes DNS. What was written (the name
 * after CNAMEs, and the zone) is recorded in the Challenge's status by the reconciler, so the next
 * leader cleans up the same record after a crash even if the CNAME moved since.
 */
import type { Challenge, Dns01Solver as Dns01Config, PresentedRecord, Secret, SecretKeySelector } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { CloudflareClient, CLOUDFLARE_API } from '../dns/cloudflare.ts';
import { checkPropagation, followCnames, type ResolverConfig } from '../dns/propagation.ts';
import { addTxt, deleteTxt, zoneOf } from '../dns/rfc2136.ts';
import { DEFAULT_TSIG_ALGORITHM, isTsigAlgorithm, TsigAlgorithms } from '../dns/tsig.ts';
import { normalizeName, parseServer } from '../dns/wire.ts';
import type { ChallengeSolver, Readiness, SolverDeps, SolverRegistration } from './solver.ts';

/** A provider of TXT records in some zone. */
interface TxtProvider {
  add(fqdn: string, value: string): Promise<{ zone: string }>;
  remove(fqdn: string, value: string, zone?: string): Promise<void>;
}

/** A configuration or credential problem: retrying will not fix it until the user does. */
export class Dns01ConfigError extends Error {
  override name = 'Dns01ConfigError';
}

export class Dns01Solver {
  readonly configKind = 'dns01';
  readonly challengeType = 'dns-01';
  readonly specType = 'DNS-01';
  readonly wildcards = true;
  private readonly deps: SolverDeps;

  constructor(deps: SolverDeps) {
    this.deps = deps;
  }

  private get resolver(): ResolverConfig {
    const c = this.deps.config;
    return { recursive: c.dns01RecursiveNameservers.map((s) => parseServer(s)), recursiveOnly: c.dns01RecursiveNameserversOnly, authoritativePort: c.dns01AuthoritativePort };
  }

  private config(ch: Challenge): Dns01Config {
    const config = ch.spec.solver.dns01;
    if (!config) throw new Dns01ConfigError(`Challenge ${ch.metadata.namespace}/${ch.metadata.name} has no dns01 solver configuration`);
    return config;
  }

  /** `_acme-challenge.<name>`, or where its CNAMEs lead with `cnameStrategy: Follow`. */
  private async fqdn(ch: Challenge): Promise<string> {
    const name = `_acme-challenge.${normalizeName(ch.spec.dnsName).replace(/^\*\./, '')}`;
    return this.config(ch).cnameStrategy === 'Follow' ? followCnames(this.resolver, name) : name;
  }

  async present(ch: Challenge): Promise<PresentedRecord> {
    const fqdn = await this.fqdn(ch);
    const { zone } = await (await this.provider(ch)).add(fqdn, ch.spec.key);
    return { fqdn, zone };
  }

  async check(ch: Challenge): Promise<Readiness> {
    const fqdn = ch.status?.presentedRecord?.fqdn ?? (await this.fqdn(ch));
    const result = await checkPropagation(this.resolver, fqdn, ch.spec.key);
    return result.ok ? { kind: 'ready' } : { kind: 'notReady', message: result.message, retryMs: this.deps.config.dns01CheckRetryMs };
  }

  async cleanUp(ch: Challenge): Promise<void> {
    const recorded = ch.status?.presentedRecord;
    const fqdn = recorded?.fqdn ?? (await this.fqdn(ch));
    await (await this.provider(ch)).remove(fqdn, ch.spec.key, recorded?.zone);
  }

  /** The Secret a solver names lives beside an Issuer, or in the cluster resource namespace for a ClusterIssuer. */
  private async secretValue(ch: Challenge, ref: SecretKeySelector | undefined, field: string, defaultKey?: string): Promise<string> {
    if (!ref?.name) throw new Dns01ConfigError(`dns01 solver of ${ch.spec.issuerRef.kind ?? 'Issuer'} ${ch.spec.issuerRef.name}: ${field} names no Secret`);
    const ns = ch.spec.issuerRef.kind === 'ClusterIssuer' ? this.deps.config.clusterResourceNamespace : (ch.metadata.namespace ?? 'default');
    const key = ref.key || defaultKey;
    const secret = await this.deps.client.find<Secret>(Resources.secrets, ns, ref.name);
    if (!secret) throw new Dns01ConfigError(`Secret ${ns}/${ref.name} named by ${field} does not exist; create it${key ? ` with the value under key "${key}"` : ''}`);
    const raw = key ? secret.data?.[key] : undefined;
    if (!key || raw === undefined) throw new Dns01ConfigError(`Secret ${ns}/${ref.name} named by ${field} has no key "${key ?? ''}"; set ${field}.key or add that key`);
    return Buffer.from(raw, 'base64').toString('utf8').trim();
  }

  private async provider(ch: Challenge): Promise<TxtProvider> {
    const config = this.config(ch);
    if (config.rfc2136) return this.rfc2136(ch, config.rfc2136);
    if (config.cloudflare) return this.cloudflare(ch, config.cloudflare);
    throw new Dns01ConfigError('dns01 needs exactly one provider, cloudflare or rfc2136');
  }

  private async rfc2136(ch: Challenge, config: NonNullable<Dns01Config['rfc2136']>): Promise<TxtProvider> {
    const algorithm = config.tsigAlgorithm || DEFAULT_TSIG_ALGORITHM;
    if (!isTsigAlgorithm(algorithm)) throw new Dns01ConfigError(`dns01.rfc2136.tsigAlgorithm "${algorithm}" is not one of ${Object.keys(TsigAlgorithms).join(', ')}`);
    let server;
    try {
      server = parseServer(config.nameserver);
    } catch (error) {
      throw new Dns01ConfigError(`dns01.rfc2136.nameserver: ${(error as Error).message}`);
    }
    const key = config.tsigKeyName
      ? { name: config.tsigKeyName, algorithm, secret: Buffer.from(await this.secretValue(ch, config.tsigSecretSecretRef, 'dns01.rfc2136.tsigSecretSecretRef'), 'base64') }
      : undefined;
    const target = { server, key, clock: this.deps.clock, transport: config.protocol === 'UDP' ? 'udp' as const : 'tcp' as const };
    return {
      add: async (fqdn, value) => {
        const zone = await zoneOf(target, fqdn);
        await addTxt(target, fqdn, value, 60, zone);
        return { zone };
      },
      remove: (fqdn, value, zone) => deleteTxt(target, fqdn, value, zone),
    };
  }

  private async cloudflare(ch: Challenge, config: NonNullable<Dns01Config['cloudflare']>): Promise<TxtProvider> {
    const auth = config.apiTokenSecretRef
      ? { token: await this.secretValue(ch, config.apiTokenSecretRef, 'dns01.cloudflare.apiTokenSecretRef') }
      : { key: await this.secretValue(ch, config.apiKeySecretRef, 'dns01.cloudflare.apiKeySecretRef'), email: config.email ?? '' };
    const client = new CloudflareClient({ baseUrl: this.deps.config.cloudflareApiUrl || CLOUDFLARE_API, auth });
    return {
      add: async (fqdn, value) => {
        const zone = await client.findZone(fqdn);
        await client.createTxt(zone, fqdn, value);
        return { zone: zone.name };
      },
      remove: async (fqdn, value) => client.deleteTxt(await client.findZone(fqdn), fqdn, value),
    };
  }
}

export const dns01 = {
  configKind: 'dns01',
  create: (deps: SolverDeps) => new Dns01Solver(deps) satisfies ChallengeSolver,
} satisfies SolverRegistration;
