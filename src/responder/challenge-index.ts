/**
 * The responder's view of which HTTP-01 tokens may be answered, and for which
 * host. It is fed incrementally from the Challenge informer (add/update →
 * `upsert`, delete → `remove`; a relist sends both) so a request costs one Map
 * lookup no matter how many Challenges exist.
 */
import type { Challenge } from '../api/types.ts';
import { objectKey } from '../base/objects.ts';

/** An ACME token is base64url (RFC 8555 §8.3); anything else is never looked up. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,256}$/;

interface Entry {
  host: string;
  keyAuthorization: string;
}

/**
 * Lowercases a host name and drops a trailing dot and any port, so that
 * `A.Test.:80`, `a.test` and `a.test:8080` compare equal. IPv6 literals keep
 * their address without brackets.
 */
export function normalizeHost(raw: string): string {
  let host = raw.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end === -1 ? host.slice(1) : host.slice(1, end);
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  while (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}

/**
 * Whether the responder may answer for this Challenge: HTTP-01, not a
 * wildcard (HTTP-01 cannot validate one), presented, and carrying a
 * well-formed token and a key authorization.
 */
export function isServable(ch: Challenge): boolean {
  const spec = ch.spec;
  return (
    spec?.type === 'HTTP-01' &&
    spec.wildcard !== true &&
    !spec.dnsName?.startsWith('*.') &&
    ch.status?.presented === true &&
    typeof spec.token === 'string' &&
    TOKEN_PATTERN.test(spec.token) &&
    typeof spec.key === 'string' &&
    spec.key.length > 0 &&
    typeof spec.dnsName === 'string' &&
    spec.dnsName.length > 0
  );
}

/**
 * Token → (Challenge → host and key authorization). Tokens are random, so
 * the inner map almost always holds one entry; it exists so that two
 * Challenges can never overwrite each other's answer.
 */
export class ChallengeIndex {
  private readonly byToken = new Map<string, Map<string, Entry>>();
  private readonly tokenOf = new Map<string, string>();
  private readonly trusted: (ch: Challenge) => boolean;

  /** `trusted` says whether certroute's own ACME flow made the Challenge (challenge-owner.ts). */
  constructor(trusted: (ch: Challenge) => boolean = () => true) {
    this.trusted = trusted;
  }

  /** Adds, updates or (when it is no longer servable) drops one Challenge. */
  upsert(ch: Challenge): void {
    const key = objectKey(ch);
    this.removeKey(key);
    if (!isServable(ch) || !this.trusted(ch)) return;
    const token = ch.spec.token;
    let entries = this.byToken.get(token);
    if (entries === undefined) {
      entries = new Map();
      this.byToken.set(token, entries);
    }
    entries.set(key, { host: normalizeHost(ch.spec.dnsName), keyAuthorization: ch.spec.key });
    this.tokenOf.set(key, token);
  }

  remove(ch: Challenge): void {
    this.removeKey(objectKey(ch));
  }

  /** The key authorization to serve, only when both token and host match. */
  lookup(token: string, host: string): string | undefined {
    const entries = this.byToken.get(token);
    if (entries === undefined) return undefined;
    const wanted = normalizeHost(host);
    for (const entry of entries.values()) {
      if (entry.host === wanted) return entry.keyAuthorization;
    }
    return undefined;
  }

  get size(): number {
    return this.tokenOf.size;
  }

  private removeKey(key: string): void {
    const token = this.tokenOf.get(key);
    if (token === undefined) return;
    this.tokenOf.delete(key);
    const entries = this.byToken.get(token);
    entries?.delete(key);
    if (entries?.size === 0) this.byToken.delete(token);
  }
}
