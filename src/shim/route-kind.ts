/**
 * The route-kind seam. An IngressRoute, an Ingress and a Gateway each declare TLS in their own
 * words; a `RouteKind` reads only that: which Secrets the object names and the hosts for each,
 * and whether Traefik serves the object at all (its class). Everything else is shared and lives
 * here and in `annotations.ts` and `controller.ts`: the annotations → Certificate spec rule, one
 * Certificate per Secret named after it, the owner reference, the name checks, the Events.
 * A new kind of route is one new file.
 */
import { isIP } from 'node:net';
import type { CertificateSpec, KubeObject, OwnerReference, ResourceDef } from '../api/types.ts';
import { issuerRefsEqual } from '../api/issuer-ref.ts';
import { controllerReference, sameContent } from '../base/objects.ts';
import type { KubeClient } from '../kube/client.ts';
import { MAX_HOSTS } from '../traefik/rules.ts';
import {
  InvalidSecretName, isObjectName, NoHosts, NotServed, readAnnotations, TooManyHosts,
  type ExtraNames, type Findings, type ShimDefaults, type ShimWarning, type SkipReason,
} from './annotations.ts';

/** One Secret an object names, with the hosts it declares for it. */
export interface TlsEntry {
  secretName: string;
  /** DNS names and IP addresses, in the object's order. */
  hosts: string[];
  /** Where the entry comes from, for messages: `spec.tls[0]`, `spec.listeners[1] ("https")`. */
  where: string;
  /** The hosts could not all be read (a rule that does not parse): no NoHosts on top of that. */
  hostsUnreadable?: boolean;
}

export interface RouteKind<T extends KubeObject> {
  /** The controller's name: its queue, its log lines' `controller`. */
  name: string;
  /** The kind's resource: the informer, the Events, the owner references. */
  resource: ResourceDef;
  /** The label on the Certificates made for this kind; its value is the object's name. */
  label: string;
  /** cert-manager's ingress-shim defaults: the default issuer and the auto-certificate annotations (Ingresses only, as there). */
  defaults?: ShimDefaults;
  /** Why the shim leaves this object alone (a class Traefik does not serve), or undefined. */
  notServed?(obj: T): string | undefined;
  /** The Secrets the object names and the hosts for each; problems go to `findings`. */
  tlsEntries(obj: T, findings: Findings): TlsEntry[];
  /** Every Secret name the object still refers to: an owned Certificate named otherwise is removed. */
  secretNames(obj: T): string[];
  /** What to tell a user whose entry yields no name at all. */
  noHostsFix: string;
  /** What to tell a user whose entry names more hosts than a certificate holds. */
  tooManyHostsFix: string;
  /**
   * Kinds that name a default Secret when the object names none (the IngressRoute's
   * `<name>-tls`): the name to write into the object, and how to write it.
   */
  secretNameToWrite?(obj: T): string | undefined;
  writeSecretName?(client: KubeClient, obj: T, secretName: string): Promise<void>;
}

export interface DesiredCertificate {
  name: string;
  namespace: string;
  spec: CertificateSpec;
  ownerReference: OwnerReference;
}

/**
 * What the shim wants for one object. Read it as:
 * - `skip`: not managed; remove what the shim made for it, and say nothing else.
 * - `blocked`: a warning stops it; emit the warnings, change nothing.
 * - otherwise: create or update each of `certificates` (there may be none), remove the ones the
 *   object no longer names; write `secretNameToWrite` into the object when set; emit any
 *   (non-blocking) warnings.
 */
export interface ShimResult {
  certificates: DesiredCertificate[];
  blocked?: true;
  secretNameToWrite?: string;
  warnings: ShimWarning[];
  skip?: SkipReason;
}

/**
 * Decides the Certificates an object asks for. Pure: the same object always gives a deep-equal
 * result, with fields in a fixed order and no `undefined` members, so the reconciler can compare
 * it with what is in the cluster and skip needless writes.
 */
export function desiredCertificates<T extends KubeObject>(kind: RouteKind<T>, obj: T): ShimResult {
  if (kind.notServed?.(obj) !== undefined) return { certificates: [], warnings: [], skip: NotServed };
  const read = readAnnotations(obj, kind.resource.kind, kind.defaults);
  if ('skip' in read) return { certificates: [], warnings: [], skip: read.skip };
  const { findings, fields } = read;
  if (fields === undefined && findings.blocked) return { certificates: [], blocked: true, warnings: findings.warnings };
  const entries = kind.tlsEntries(obj, findings);
  const named = entries.map((entry) => ({ entry, names: namesFor(entry, read.extraNames, kind, findings) }));
  for (const { secretName, where } of entries) {
    if (!isObjectName(secretName)) {
      findings.add(InvalidSecretName, `the Secret name ${JSON.stringify(secretName)} (${where}) is not a valid object name; use lowercase letters, digits, "-" and "." (at most 253 characters)`);
    }
  }
  if (findings.blocked || fields === undefined) return { certificates: [], blocked: true, warnings: findings.warnings };
  if (obj.metadata.uid === undefined) throw new Error(`${kind.resource.kind} ${obj.metadata.namespace}/${obj.metadata.name} has no uid; the shim needs one for the owner reference`);
  const namespace = obj.metadata.namespace ?? 'default';
  const ownerReference = controllerReference(kind.resource, obj);
  const result: ShimResult = {
    certificates: named.map(({ entry, names }) => ({
      name: entry.secretName,
      namespace,
      spec: { secretName: entry.secretName, ...fields.leading, ...names, ...fields.trailing },
      ownerReference,
    })),
    warnings: findings.warnings,
  };
  const toWrite = kind.secretNameToWrite?.(obj);
  if (toWrite !== undefined) result.secretNameToWrite = toWrite;
  return result;
}

/** The entry's hosts, then the annotations' alt-names and ip-sans, each once, split by type. */
function namesFor<T extends KubeObject>(entry: TlsEntry, extra: ExtraNames, kind: RouteKind<T>, findings: Findings): Pick<CertificateSpec, 'dnsNames' | 'ipAddresses'> {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  const seen = new Set<string>();
  for (const host of [...entry.hosts, ...extra.dnsNames, ...extra.ipAddresses]) {
    if (seen.has(host)) continue;
    seen.add(host);
    (isIP(host) === 0 ? dnsNames : ipAddresses).push(host);
  }
  if (seen.size > MAX_HOSTS) {
    findings.add(TooManyHosts, `${entry.where} and the annotations name ${seen.size} hosts, more than the ${MAX_HOSTS} a certificate can hold; ${kind.tooManyHostsFix}`);
  }
  if (!entry.hostsUnreadable && seen.size === 0) findings.add(NoHosts, `${entry.where}: ${kind.noHostsFix}`);
  const names: Pick<CertificateSpec, 'dnsNames' | 'ipAddresses'> = {};
  if (dnsNames.length > 0) names.dnsNames = dnsNames;
  if (ipAddresses.length > 0) names.ipAddresses = ipAddresses;
  return names;
}

/**
 * The spec to write over an existing Certificate's, or undefined when it already says what the
 * object asks for. An issuer reference that differs only by cert-manager's defaults (cert-manager's
 * shims write `group: cert-manager.io`, certroute leaves it out) is the same issuer and is kept as
 * written, so taking over a Certificate cert-manager made writes nothing.
 */
export function specToWrite(existing: CertificateSpec, want: CertificateSpec): CertificateSpec | undefined {
  const spec = issuerRefsEqual(existing.issuerRef, want.issuerRef) ? { ...want, issuerRef: existing.issuerRef } : want;
  return sameContent(existing, spec) ? undefined : spec;
}

/** How many findings of one reason an Event quotes before it only counts the rest. */
const QUOTED_PER_EVENT = 5;

/**
 * One Warning per reason, whatever the number of findings: a rule with thousands of bad hosts
 * must not write thousands of Events to etcd. Each message quotes the first few findings and
 * counts the rest.
 */
export function foldWarnings(warnings: readonly ShimWarning[]): Map<string, string> {
  const byReason = new Map<string, string[]>();
  for (const w of warnings) {
    const messages = byReason.get(w.reason) ?? [];
    messages.push(w.message);
    byReason.set(w.reason, messages);
  }
  const folded = new Map<string, string>();
  for (const [reason, messages] of byReason) {
    const quoted = messages.slice(0, QUOTED_PER_EVENT).join('; ');
    const rest = messages.length - QUOTED_PER_EVENT;
    folded.set(reason, rest > 0 ? `${quoted}; and ${rest} more like these` : quoted);
  }
  return folded;
}
