/**
 * Where a target's CA comes from: the annotation is read once here (`sourceOf`, pure), then the
 * CA is read from what it names (`readCA`). Every refusal is a `Problem` whose reason is one of
 * `Reasons`, with a message that names the object and the fix; the reconciler turns it into one
 * Warning Event on the target.
 */
import type { X509Certificate } from 'node:crypto';
import { InjectAnnotations as A } from '../api/cainjector.ts';
import { SecretAnnotations, type Certificate, type Secret } from '../api/types.ts';
import { caOfSecret } from './bundle.ts';

/** Event reasons, documented for operators who filter on them. */
export const Reasons = {
  /** The bundle of the target changed (Normal). */
  injected: 'CAInjected',
  /** The Certificate exists but its Secret is not issued yet (Normal): injection follows issuance. */
  waiting: 'WaitingForCA',
  /** A malformed annotation value, or more than one source annotation. */
  invalidAnnotation: 'InvalidInjectAnnotation',
  certificateNotFound: 'CertificateNotFound',
  secretNotFound: 'SecretNotFound',
  /** The Certificate's Secret does not carry `cert-manager.io/certificate-name` naming it. */
  secretNotOwned: 'SecretNotOwnedByCertificate',
  /** inject-ca-from-secret names a Secret without `cert-manager.io/allow-direct-injection: "true"`. */
  directInjectionNotAllowed: 'DirectInjectionNotAllowed',
  noCAData: 'NoCAData',
  /** inject-apiserver-ca, but the controller's kubeconfig has no CA (it trusts the system roots). */
  noAPIServerCA: 'NoAPIServerCA',
  /** The target has no field a CA bundle goes into (a CRD without webhook conversion, …). */
  notInjectable: 'NotInjectable',
} as const;

export interface Problem {
  reason: string;
  message: string;
  /** Normal, not Warning: a state that resolves by itself. */
  normal?: boolean;
  /** About a Secret no informer watches: its fix raises no event, so it is read again later. */
  recheck?: boolean;
}

export type Source =
  | { kind: 'Certificate'; namespace: string; name: string }
  | { kind: 'Secret'; namespace: string; name: string }
  | { kind: 'APIServer' };

export const describeSource = (s: Source): string => (s.kind === 'APIServer' ? 'the API server CA' : `${s.kind} ${s.namespace}/${s.name}`);

/** Index key of the object a source names; the API server CA has none. */
export const sourceKey = (s: Source): string | undefined => (s.kind === 'APIServer' ? undefined : `${s.kind}/${s.namespace}/${s.name}`);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function namespacedName(annotation: string, value: string, what: string): { namespace: string; name: string } | Problem {
  const [namespace = '', name = '', ...rest] = value.trim().split('/');
  if (rest.length === 0 && DNS_LABEL.test(namespace) && DNS_SUBDOMAIN.test(name)) return { namespace, name };
  return { reason: Reasons.invalidAnnotation, message: `annotation ${annotation}: ${JSON.stringify(value)} is not <namespace>/<${what}>; write it as, e.g., my-namespace/my-${what}` };
}

/** The source a target's annotations ask for; undefined when it asks for none. */
export function sourceOf(annotations: Readonly<Record<string, string>> | undefined): Source | Problem | undefined {
  const a = annotations ?? {};
  const asked: string[] = [A.fromCertificate, A.fromSecret].filter((k) => k in a);
  if (a[A.apiserverCA] === 'true') asked.push(A.apiserverCA);
  if (asked.length === 0) return undefined;
  if (asked.length > 1) return { reason: Reasons.invalidAnnotation, message: `annotations ${asked.join(' and ')} each name a CA; keep only one` };
  const [key] = asked as [string];
  if (key === A.apiserverCA) return { kind: 'APIServer' };
  const ref = namespacedName(key, a[key] ?? '', key === A.fromCertificate ? 'certificate' : 'secret');
  if ('reason' in ref) return ref;
  return { kind: key === A.fromCertificate ? 'Certificate' : 'Secret', ...ref };
}

/** How `readCA` reaches the objects a source names. */
export interface SourceReader {
  certificate(namespace: string, name: string): Certificate | undefined;
  /** The Secret as the API server has it; `watched` when an informer reports its changes. */
  secret(namespace: string, name: string): Promise<{ secret: Secret; watched: boolean } | undefined>;
  /** PEM from the controller's own kubeconfig; undefined when it has none. */
  apiserverCA: X509Certificate[] | undefined;
}

export interface CA {
  certificates: X509Certificate[];
  /** Read from a Secret the informers do not watch: look again later, a change raises no event. */
  unwatched?: boolean;
}

export async function readCA(source: Source, reader: SourceReader): Promise<CA | Problem> {
  if (source.kind === 'APIServer') {
    return reader.apiserverCA?.length
      ? { certificates: reader.apiserverCA }
      : { reason: Reasons.noAPIServerCA, message: "the controller's kubeconfig names no certificate authority for the API server, so there is no CA to inject; remove cert-manager.io/inject-apiserver-ca or give the controller a kubeconfig with certificate-authority data" };
  }
  if (source.kind === 'Certificate') {
    const cert = reader.certificate(source.namespace, source.name);
    if (!cert) return { reason: Reasons.certificateNotFound, message: `Certificate ${source.namespace}/${source.name} named by ${A.fromCertificate} does not exist; create it or fix the annotation` };
    const secretName = cert.spec.secretName;
    const found = await reader.secret(source.namespace, secretName);
    if (!found) return { reason: Reasons.waiting, normal: true, message: `Certificate ${source.namespace}/${source.name} has not issued its Secret ${secretName} yet; its CA is injected once it does` };
    const owner = found.secret.metadata.annotations?.[SecretAnnotations.certificateName];
    if (owner !== source.name) {
      return { reason: Reasons.secretNotOwned, message: `Secret ${source.namespace}/${secretName} is not Certificate ${source.name}'s (its ${SecretAnnotations.certificateName} is ${JSON.stringify(owner ?? '')}); only a Secret issued for the Certificate is trusted` };
    }
    return fromSecret(found.secret, `Secret ${source.namespace}/${secretName} of Certificate ${source.namespace}/${source.name}`, found.watched, true);
  }
  const found = await reader.secret(source.namespace, source.name);
  if (!found) return { reason: Reasons.secretNotFound, recheck: true, message: `Secret ${source.namespace}/${source.name} named by ${A.fromSecret} does not exist; create it or fix the annotation` };
  if (found.secret.metadata.annotations?.[A.allowDirectInjection] !== 'true') {
    return { reason: Reasons.directInjectionNotAllowed, recheck: !found.watched, message: `Secret ${source.namespace}/${source.name} does not allow direct injection; annotate it with ${A.allowDirectInjection}: "true" to let its ca.crt be injected` };
  }
  return fromSecret(found.secret, `Secret ${source.namespace}/${source.name}`, found.watched, false);
}

/** A Certificate's Secret may fall back to its chain's root, as cert-manager reads it; a plain Secret offers ca.crt only. */
function fromSecret(secret: Secret, what: string, watched: boolean, rootFallback: boolean): CA | Problem {
  const ca = caOfSecret(secret.data, rootFallback);
  if (!ca.ok) return { reason: Reasons.noCAData, recheck: !watched, message: `${what} has no CA to inject: ${ca.message}` };
  return { certificates: ca.certificates, ...(watched ? {} : { unwatched: true }) };
}
