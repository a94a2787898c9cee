/**
 * The CA injector's vocabulary: cert-manager's cainjector annotations, unchanged, so an operator's
 * webhook configurations, CRDs and APIServices keep their `caBundle` filled after switching to
 * certroute, and the slices of the four target kinds the injector reads and writes.
 */
import type { KubeObject } from './types.ts';

export const InjectAnnotations = {
  /** `<namespace>/<certificate>`: the CA of that Certificate's Secret. */
  fromCertificate: 'cert-manager.io/inject-ca-from',
  /** `<namespace>/<secret>`: that Secret's `ca.crt`, when the Secret allows it. */
  fromSecret: 'cert-manager.io/inject-ca-from-secret',
  /** `"true"`: the CA the controller trusts the API server with. */
  apiserverCA: 'cert-manager.io/inject-apiserver-ca',
  /** On a Secret: `"true"` lets inject-ca-from-secret read it. */
  allowDirectInjection: 'cert-manager.io/allow-direct-injection',
} as const;

export interface WebhookClientConfig {
  url?: string;
  service?: { namespace: string; name: string; path?: string; port?: number };
  /** Base64 of PEM. */
  caBundle?: string;
}

/** Validating and mutating webhook configurations have the same shape where it matters here. */
export interface WebhookConfiguration extends KubeObject {
  webhooks?: Array<{ name: string; clientConfig: WebhookClientConfig } & Record<string, unknown>>;
}

export interface CustomResourceDefinition extends KubeObject {
  spec: {
    group: string;
    names: { plural: string; kind: string };
    conversion?: { strategy: 'None' | 'Webhook'; webhook?: { clientConfig?: WebhookClientConfig; conversionReviewVersions?: string[] } };
  } & Record<string, unknown>;
}

export interface APIService extends KubeObject {
  spec: {
    group?: string;
    version?: string;
    service?: { namespace: string; name: string; port?: number };
    /** Base64 of PEM. */
    caBundle?: string;
    insecureSkipTLSVerify?: boolean;
  } & Record<string, unknown>;
}
