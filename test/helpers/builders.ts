/**
 * Small fixture builders for unit tests: `certificate('web', withDnsNames('a.test'))`. Every
 * builder starts from the smallest valid object and each `with…` option changes one thing, so a
 * test names only what it is about. Also: throw-away keys and certificates made with `src/pki`.
 */
import type {
  AcmeSolver, Certificate, CertificateRequest, Challenge, ChallengeState, Condition, ConditionStatus, Issuer, KubeObject, Order,
  OrderState, ResourceDef,
} from '../../src/api/types.ts';
import { Resources } from '../../src/api/types.ts';
import type { Context, ControllerConfig } from '../../src/controller/context.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { signCsr } from '../../src/pki/sign.ts';

export type Option<T> = (o: T) => void;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function build<T>(o: T, options: ReadonlyArray<Option<T>>): T {
  for (const option of options) option(o);
  return o;
}

// ── options that fit any object ──────────────────────────────────────────────

export const inNamespace = <T extends KubeObject>(namespace: string): Option<T> => (o) => {
  o.metadata.namespace = namespace;
};
export const withUid = <T extends KubeObject>(uid: string): Option<T> => (o) => {
  o.metadata.uid = uid;
};
export const withGeneration = <T extends KubeObject>(generation: number): Option<T> => (o) => {
  o.metadata.generation = generation;
};
export const withLabels = <T extends KubeObject>(labels: Record<string, string>): Option<T> => (o) => {
  o.metadata.labels = { ...o.metadata.labels, ...labels };
};
export const withAnnotations = <T extends KubeObject>(annotations: Record<string, string>): Option<T> => (o) => {
  o.metadata.annotations = { ...o.metadata.annotations, ...annotations };
};
/** A controller owner reference, as the reconcilers set them. */
export const ownedBy = <T extends KubeObject>(owner: KubeObject, def: ResourceDef): Option<T> => (o) => {
  o.metadata.ownerReferences = [
    ...(o.metadata.ownerReferences ?? []),
    { apiVersion: `${def.group}/${def.version}`, kind: def.kind, name: owner.metadata.name, uid: owner.metadata.uid ?? '', controller: true, blockOwnerDeletion: true },
  ];
};

export function condition(type: string, status: ConditionStatus, reason = '', message = '', extra: Partial<Condition> = {}): Condition {
  return { type, status, ...(reason ? { reason } : {}), ...(message ? { message } : {}), ...extra };
}

/** Adds or replaces a condition on anything with `status.conditions`. */
export const withCondition = <T extends KubeObject & { status?: { conditions?: Condition[] } }>(c: Condition): Option<T> => (o) => {
  const status = (o.status ??= {});
  status.conditions = [...(status.conditions ?? []).filter((x) => x.type !== c.type), c];
};

// ── cert-manager.io ─────────────────────────────────────────────────────────

export function certificate(name: string, ...options: Array<Option<Certificate>>): Certificate {
  return build<Certificate>({
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: { name, namespace: 'apps', uid: `uid-${name}`, generation: 1 },
    spec: { secretName: `${name}-tls`, issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer' }, dnsNames: [`${name}.test`] },
  }, options);
}

export const withDnsNames = (...dnsNames: string[]): Option<Certificate> => (c) => {
  c.spec.dnsNames = dnsNames;
};
export const withCommonName = (commonName: string): Option<Certificate> => (c) => {
  c.spec.commonName = commonName;
};
export const withIssuer = (name: string, kind?: string, group?: string): Option<Certificate> => (c) => {
  c.spec.issuerRef = { name, ...(kind ? { kind } : {}), ...(group ? { group } : {}) };
};
export const withSecretName = (secretName: string): Option<Certificate> => (c) => {
  c.spec.secretName = secretName;
};
export const withSpec = (spec: Partial<Certificate['spec']>): Option<Certificate> => (c) => {
  c.spec = { ...c.spec, ...spec };
};
export const withCertificateStatus = (status: NonNullable<Certificate['status']>): Option<Certificate> => (c) => {
  c.status = { ...c.status, ...status };
};
export const ready = (status: ConditionStatus = 'True', reason = status === 'True' ? 'Ready' : 'DoesNotExist', message = ''): Option<Certificate> =>
  withCondition<Certificate>(condition('Ready', status, reason, message));
export const issuing = (status: ConditionStatus = 'True', reason = 'Issuing', message = '', observedGeneration?: number): Option<Certificate> =>
  withCondition<Certificate>(condition('Issuing', status, reason, message, observedGeneration === undefined ? {} : { observedGeneration }));
/** `failedIssuanceAttempts` and `lastFailureTime`, as the issuing path records a failure. */
export const failed = (attempts: number, at: Date | string): Option<Certificate> =>
  withCertificateStatus({ failedIssuanceAttempts: attempts, lastFailureTime: typeof at === 'string' ? at : at.toISOString() });

export function certificateRequest(name: string, ...options: Array<Option<CertificateRequest>>): CertificateRequest {
  return build<CertificateRequest>({
    apiVersion: 'cert-manager.io/v1',
    kind: 'CertificateRequest',
    metadata: { name, namespace: 'apps', uid: `uid-${name}` },
    spec: { request: '', issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer', group: 'cert-manager.io' } },
  }, options);
}

export function issuer(name: string, ...options: Array<Option<Issuer>>): Issuer {
  return build<Issuer>({
    apiVersion: 'cert-manager.io/v1',
    kind: 'ClusterIssuer',
    metadata: { name, uid: `uid-${name}` },
    spec: { acme: { server: 'https://acme.test/dir', privateKeySecretRef: { name: `${name}-account` }, solvers: [] } },
  }, options);
}

export const withSolvers = (...solvers: AcmeSolver[]): Option<Issuer> => (i) => {
  if (i.spec.acme) i.spec.acme.solvers = solvers;
};

/** An HTTP-01 solver with an optional selector; `name` lands in the ingress name so tests can tell solvers apart. */
export function http01Solver(name: string, selector?: AcmeSolver['selector']): AcmeSolver {
  return { ...(selector ? { selector } : {}), http01: { ingress: { name } } };
}

// ── acme.cert-manager.io ────────────────────────────────────────────────────

export function order(name: string, ...options: Array<Option<Order>>): Order {
  return build<Order>({
    apiVersion: 'acme.cert-manager.io/v1',
    kind: 'Order',
    metadata: { name, namespace: 'apps', uid: `uid-${name}` },
    spec: { request: '', issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer', group: 'cert-manager.io' }, dnsNames: ['a.test'] },
  }, options);
}

export const withOrderState = (state: OrderState, reason?: string): Option<Order> => (o) => {
  o.status = { ...o.status, state, ...(reason ? { reason } : {}) };
};

export function challenge(name: string, dnsName: string, ...options: Array<Option<Challenge>>): Challenge {
  return build<Challenge>({
    apiVersion: 'acme.cert-manager.io/v1',
    kind: 'Challenge',
    metadata: { name, namespace: 'apps', uid: `uid-${name}` },
    spec: {
      url: `https://acme.test/chall/${name}`,
      authorizationURL: `https://acme.test/authz/${name}`,
      dnsName,
      type: 'HTTP-01',
      token: 'token',
      key: 'token.thumbprint',
      solver: http01Solver('default'),
      issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer', group: 'cert-manager.io' },
    },
  }, options);
}

export const withChallengeState = (state: ChallengeState, reason?: string, extra: { presented?: boolean; processing?: boolean } = {}): Option<Challenge> => (c) => {
  c.status = { ...c.status, state, ...(reason ? { reason } : {}), ...extra };
};

// ── controller ──────────────────────────────────────────────────────────────

export const testConfig: ControllerConfig = {
  clusterResourceNamespace: 'cert-manager',
  minBackoffMs: HOUR,
  maxBackoffMs: 32 * HOUR,
  selfCheckWebAddress: 'http://127.0.0.1:1',
  pollMinMs: 25,
  pollMaxMs: 5_000,
  selfCheckRetryMs: 1_000,
  autoApprove: true,
  ari: true,
  ariPollMaxMs: 6 * 3600_000,
  maxConcurrentOrders: 100,
  dns01RecursiveNameservers: ['127.0.0.1:53'],
  dns01RecursiveNameserversOnly: false,
  dns01CheckRetryMs: 1_000,
  dns01AuthoritativePort: 53,
  cloudflareApiUrl: 'http://127.0.0.1:1/client/v4',
};

/**
 * A Context for pure helpers that read only `config`. Anything else they touch
 * throws, so a test learns at once when a helper starts depending on more.
 */
export function configOnlyContext(config: Partial<ControllerConfig> = {}): Context {
  const merged = { ...testConfig, ...config };
  return new Proxy({ config: merged } as Context, {
    get(target, prop) {
      if (prop === 'config') return merged;
      if (prop === 'then') return undefined;
      throw new Error(`configOnlyContext: the code under test read ctx.${String(prop)}`);
    },
  });
}

// ── keys and certificates ───────────────────────────────────────────────────

export interface KeyAndChain {
  keyPem: string;
  /** The certificate, PEM. */
  certificatePem: string;
}

export interface SelfSignedOptions {
  dnsNames?: string[];
  ipAddresses?: string[];
  commonName?: string;
  /** notBefore; default an hour ago, so that clocks a little apart agree. */
  notBefore?: Date;
  durationMs?: number;
  algorithm?: 'RSA' | 'ECDSA' | 'Ed25519';
}

/** A fresh key and a self-signed certificate for it, made with certroute's own pki. */
export async function selfSigned(options: SelfSignedOptions = {}): Promise<KeyAndChain> {
  const keyPem = await generatePrivateKey({ algorithm: options.algorithm ?? 'ECDSA' });
  const csrPem = await createCsr({
    keyPem,
    ...(options.commonName ? { commonName: options.commonName } : {}),
    dnsNames: options.dnsNames ?? ['a.test'],
    ...(options.ipAddresses ? { ipAddresses: options.ipAddresses } : {}),
  });
  const signed = await signCsr({ csrPem, durationMs: options.durationMs ?? 90 * DAY, selfSignKeyPem: keyPem, now: options.notBefore ?? new Date(Date.now() - HOUR) });
  return { keyPem, certificatePem: signed.certificatePem };
}

export { HOUR, DAY, Resources };
