/**
 * ACME accounts, one per issuer. The issuer reconciler registers an
 * issuer's account (or recalls the one its status remembers) here; the
 * Order and Challenge reconcilers ask here for that issuer's client. An
 * entry is keyed by the issuer (kind, namespace, name) and stamped with the
 * uid and generation it was registered for, never keyed by CA: two issuers
 * at the same CA have two clients, two Transports (see `client.ts`) and two
 * accounts, so one issuer's caBundle or skipTLSVerify never reaches another.
 */
import { createHash } from 'node:crypto';
import { AcmeProblemError, createClient, type TlsSettings } from './client.ts';
import type acme from 'acme-client';

/** An issuer, as accounts are keyed: a ClusterIssuer has no namespace. */
export interface IssuerKey {
  kind: 'Issuer' | 'ClusterIssuer';
  namespace?: string;
  name: string;
}

/** The issuer object an account was registered for. */
export interface IssuerVersion {
  uid?: string;
  generation?: number;
}

export interface AccountSpec {
  directoryUrl: string;
  accountKeyPem: string;
  tls: TlsSettings;
  eab?: { kid: string; hmacKey: string };
}

/** What the registry needs from the issuers' side, injected so that it holds no Kubernetes client. */
export interface IssuerHooks {
  /** The issuer as cached now, or undefined when there is none. */
  current(key: IssuerKey): IssuerVersion | undefined;
  /** Asks the issuer's reconciler to look again (register, or recall its account). */
  refresh(key: IssuerKey): void;
  /** Drops what the issuer's status remembers of its account, so that it registers anew. */
  forgetRemembered(key: IssuerKey): Promise<void>;
}

const describe = (k: IssuerKey) => `${k.kind} ${k.namespace ? `${k.namespace}/` : ''}${k.name}`;

/** No account for this issuer yet: it has not registered (or not since it was created again). Transient. */
export class AccountNotRegisteredError extends Error {
  constructor(key: IssuerKey) {
    super(`ACME account of ${describe(key)} is not registered yet; waiting for the issuer to become Ready`);
    this.name = 'AccountNotRegisteredError';
  }
}

/** The account was registered for an older generation of the issuer, which has not been looked at since. Transient. */
export class AccountNotUpToDateError extends Error {
  constructor(key: IssuerKey, had: number | undefined, now: number | undefined) {
    super(`ACME account of ${describe(key)} was set up for generation ${had ?? '?'} of the issuer, which is at ${now ?? '?'} now; waiting for the issuer to catch up`);
    this.name = 'AccountNotUpToDateError';
  }
}

/** The CA no longer knows the account (a reset staging CA, a restarted Pebble). Transient: the issuer registers again. */
export class AccountLostError extends Error {
  constructor(key: IssuerKey, options?: ErrorOptions) {
    super(`the ACME server no longer knows the account of ${describe(key)}; registering it again`, options);
    this.name = 'AccountLostError';
  }
}

interface Entry {
  version: IssuerVersion;
  fingerprint: string;
  accountUrl: string;
  client: acme.Client;
  /** The e-mail the account's contact was registered or recalled with. */
  email: string;
}

const keyOf = (k: IssuerKey) => `${k.kind}/${k.kind === 'ClusterIssuer' ? '' : (k.namespace ?? '')}/${k.name}`;

/** Everything that makes a client: a change to any of them is a new client. Hashed, so no key material sits in a map key. */
function fingerprint(spec: AccountSpec): string {
  const parts = [spec.directoryUrl, spec.accountKeyPem, spec.tls.caBundlePem ?? '', spec.tls.skipTLSVerify ? '1' : '0', spec.eab?.kid ?? '', spec.eab?.hmacKey ?? ''];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export class AccountRegistry {
  private readonly hooks: IssuerHooks;
  private readonly entries = new Map<string, Entry>();

  constructor(hooks: IssuerHooks) {
    this.hooks = hooks;
  }

  /**
   * Registers the issuer's account with the CA through a fresh client (`register` calls
   * newAccount, and updates the contact if it must) and keeps that client for the issuer.
   */
  async register(key: IssuerKey, version: IssuerVersion, spec: AccountSpec, email: string, register: (client: acme.Client) => Promise<void>): Promise<string> {
    this.entries.delete(keyOf(key));
    const client = createClient(spec);
    await register(client);
    const accountUrl = client.getAccountUrl();
    this.entries.set(keyOf(key), { version, fingerprint: fingerprint(spec), accountUrl, client, email });
    return accountUrl;
  }

  /**
   * The account URL this process already registered (or recalled) for this issuer, with this
   * account spec and e-mail. A pass that reads the issuer from a cache older than the status write
   * of that registration takes it up from here instead of asking the CA a second time.
   */
  known(key: IssuerKey, uid: string | undefined, spec: AccountSpec, email: string): string | undefined {
    const had = this.entries.get(keyOf(key));
    if (!had || had.fingerprint !== fingerprint(spec) || had.email !== email) return undefined;
    return !had.version.uid || !uid || had.version.uid === uid ? had.accountUrl : undefined;
  }

  /** Takes up the account the issuer's status remembers, without asking the CA; the client is kept when nothing changed. */
  recall(key: IssuerKey, version: IssuerVersion, spec: AccountSpec, email: string, accountUrl: string): void {
    const had = this.entries.get(keyOf(key));
    const print = fingerprint(spec);
    const client = had && had.fingerprint === print && had.accountUrl === accountUrl ? had.client : createClient({ ...spec, accountUrl });
    this.entries.set(keyOf(key), { version, fingerprint: print, accountUrl, client, email });
  }

  forget(key: IssuerKey): void {
    this.entries.delete(keyOf(key));
  }

  /** The issuer's client, for the account set up for the issuer as it is now; else the issuer is asked to catch up. */
  client(key: IssuerKey): acme.Client {
    const entry = this.entries.get(keyOf(key));
    const now = this.hooks.current(key);
    const sameIssuer = entry !== undefined && now !== undefined && (!entry.version.uid || !now.uid || entry.version.uid === now.uid);
    if (sameIssuer && entry.version.generation === now.generation) return entry.client;
    this.hooks.refresh(key);
    if (!sameIssuer) throw new AccountNotRegisteredError(key);
    throw new AccountNotUpToDateError(key, entry.version.generation, now.generation);
  }

  /**
   * Call with any error a step met. When it says the CA forgot the account, the account is
   * dropped here and from the issuer's status, and an AccountLostError is thrown so that the
   * step is retried once the issuer has registered again, instead of failing for good.
   */
  async throwIfLost(key: IssuerKey, err: unknown): Promise<void> {
    if (!(err instanceof AcmeProblemError) || err.type !== 'urn:ietf:params:acme:error:accountDoesNotExist') return;
    this.forget(key);
    await this.hooks.forgetRemembered(key);
    throw new AccountLostError(key, { cause: err });
  }
}
