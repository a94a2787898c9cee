/**
 * The four kinds a CA is injected into, and where their caBundle fields are: every webhook's
 * `clientConfig.caBundle` of a Validating/MutatingWebhookConfiguration, a CRD's
 * `spec.conversion.webhook.clientConfig.caBundle`, an APIService's `spec.caBundle`.
 *
 * `inject` is pure: it returns the merge patch that makes every field hold the merged bundle, or
 * none when they all do already. The patch carries the resourceVersion it was computed from, so
 * a stale cache turns into a 409 rather than a write over someone else's change (the webhooks
 * list is replaced as a whole by a merge patch).
 */
import type { X509Certificate } from 'node:crypto';
import type { APIService, CustomResourceDefinition, WebhookConfiguration } from '../api/cainjector.ts';
import { Resources, type KubeObject, type ResourceDef } from '../api/types.ts';
import { bundlePem, mergeBundle } from './bundle.ts';
import { Reasons, sourceOf, type Problem } from './sources.ts';

export interface Injection {
  /** Undefined when every field already holds the bundle. */
  patch: Record<string, unknown> | undefined;
  /** Where the bundle went, for logs and Events ("2 webhooks"). */
  fields: string;
  /** The largest bundle written: more than one certificate during a CA rotation. */
  certificates: number;
}

export interface TargetKind {
  def: ResourceDef;
  inject(o: KubeObject, ca: readonly X509Certificate[], now: Date): Injection | Problem;
}

/**
 * What the informers keep of a target, trimmed in place before it is cached. A cluster holds many
 * CRDs and webhook configurations that ask for nothing, and a CRD's schemas are most of its bytes:
 * one that asks for nothing keeps its metadata only (an annotation added later arrives with the
 * whole object), and an annotated CRD keeps what `inject` reads, since its merge patch touches
 * nothing else. An annotated webhook configuration is kept whole: its patch replaces the webhooks
 * list from this copy.
 */
export const trimTarget = (def: ResourceDef) => (o: object): void => {
  const target = o as KubeObject & { spec?: Record<string, unknown>; status?: unknown; webhooks?: unknown };
  delete target.status;
  if (sourceOf(target.metadata.annotations) === undefined) {
    delete target.spec;
    delete target.webhooks;
    return;
  }
  if (def === Resources.customresourcedefinitions && target.spec) {
    const { group, names, conversion } = target.spec;
    target.spec = { group, names, conversion };
  }
};

const decode = (b64: string | undefined): string | undefined => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : undefined);
const encode = (certs: readonly X509Certificate[]): string => Buffer.from(bundlePem(certs), 'utf8').toString('base64');

/** The merged bundle for one field, base64 as the API holds it. */
function merged(current: string | undefined, ca: readonly X509Certificate[], now: Date): { b64: string; count: number } {
  const certs = mergeBundle(decode(current), ca, now);
  return { b64: encode(certs), count: certs.length };
}

const precondition = (o: KubeObject) => ({ resourceVersion: o.metadata.resourceVersion });

function webhookKind(def: ResourceDef): TargetKind {
  return {
    def,
    inject(o, ca, now) {
      const webhooks = (o as WebhookConfiguration).webhooks ?? [];
      if (webhooks.length === 0) return { reason: Reasons.notInjectable, message: `${def.kind} ${o.metadata.name} has no webhooks to inject a CA into` };
      let changed = false;
      let certificates = 0;
      const next = webhooks.map((w) => {
        const b = merged(w.clientConfig.caBundle, ca, now);
        certificates = Math.max(certificates, b.count);
        if (b.b64 === w.clientConfig.caBundle) return w;
        changed = true;
        return { ...w, clientConfig: { ...w.clientConfig, caBundle: b.b64 } };
      });
      const fields = `${webhooks.length} webhook${webhooks.length === 1 ? '' : 's'}`;
      return { patch: changed ? { metadata: precondition(o), webhooks: next } : undefined, fields, certificates };
    },
  };
}

const crdKind: TargetKind = {
  def: Resources.customresourcedefinitions,
  inject(o, ca, now) {
    const crd = o as CustomResourceDefinition;
    const conversion = crd.spec.conversion;
    if (conversion?.strategy !== 'Webhook') {
      return { reason: Reasons.notInjectable, message: `CustomResourceDefinition ${o.metadata.name} has no conversion webhook (spec.conversion.strategy is ${conversion?.strategy ?? 'None'}); set strategy Webhook or remove the annotation` };
    }
    const current = conversion.webhook?.clientConfig?.caBundle;
    const b = merged(current, ca, now);
    const patch = b.b64 === current ? undefined : { metadata: precondition(o), spec: { conversion: { webhook: { clientConfig: { caBundle: b.b64 } } } } };
    return { patch, fields: 'the conversion webhook', certificates: b.count };
  },
};

const apiServiceKind: TargetKind = {
  def: Resources.apiservices,
  inject(o, ca, now) {
    const spec = (o as APIService).spec;
    if (!spec.service) return { reason: Reasons.notInjectable, message: `APIService ${o.metadata.name} is served by the API server itself (no spec.service), so it has no CA bundle to fill; remove the annotation` };
    if (spec.insecureSkipTLSVerify) {
      return { reason: Reasons.notInjectable, message: `APIService ${o.metadata.name} sets insecureSkipTLSVerify, which the API server refuses beside a caBundle; remove insecureSkipTLSVerify to have the CA injected` };
    }
    const b = merged(spec.caBundle, ca, now);
    const patch = b.b64 === spec.caBundle ? undefined : { metadata: precondition(o), spec: { caBundle: b.b64 } };
    return { patch, fields: 'spec.caBundle', certificates: b.count };
  },
};

/** By the plural that starts a queue key ("apiservices/v1.example.com"). */
export const targetKinds: ReadonlyMap<string, TargetKind> = new Map(
  [webhookKind(Resources.validatingwebhookconfigurations), webhookKind(Resources.mutatingwebhookconfigurations), crdKind, apiServiceKind].map((k) => [k.def.plural, k]),
);

export const targetKey = (def: ResourceDef, name: string): string => `${def.plural}/${name}`;

export function splitTargetKey(key: string): { kind: TargetKind; name: string } | undefined {
  const i = key.indexOf('/');
  const kind = targetKinds.get(key.slice(0, i));
  return kind && i > 0 ? { kind, name: key.slice(i + 1) } : undefined;
}
