/**
 * Issuer and ClusterIssuer readiness. For ACME this registers the account
 * once and re-registers only when the server, the email or the key changed
 * (the hash of the key and the email are remembered in status.acme, as
 * cert-manager does), so a restart never talks to the CA.
 */
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Issuer, ResourceDef, Secret } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { decodeB64, objectKey, splitKey } from '../base/objects.ts';
import type { AccountSpec, IssuerHooks, IssuerKey } from '../acme/accounts.ts';
import { acme, AcmeProblemError, call, directoryOffers } from '../acme/client.ts';
import { getCondition, setCondition, type ConditionInput } from '../kube/conditions.ts';
import { keysOf, type ControllerRegistration } from '../kube/controller.ts';
import { done, requeueAfter, type Outcome } from '../kube/queue.ts';
import { certificateMatchesKey, parseCertificateChain } from '../pki/cert.ts';
import type { SolverRegistry } from '../solvers/registry.ts';
import { findIssuer, issuerKey, type Context } from './context.ts';
import { writeStatus } from './status.ts';

export const IssuerReasons = {
  AccountRegistered: 'ACMEAccountRegistered',
  RegisterFailed: 'ErrRegisterACMEAccount',
  InitFailed: 'ErrInitIssuer',
  KeyPairVerified: 'KeyPairVerified',
  GetKeyPairFailed: 'ErrGetKeyPair',
  InvalidKeyPair: 'ErrInvalidKeyPair',
  IsReady: 'IsReady',
  /** spec.acme.profile names a profile the server's directory does not list (certroute's reason). */
  UnknownProfile: 'ErrUnknownProfile',
} as const;

const CA_RECHECK_MS = 60_000;

/**
 * Watches its issuers and the Secrets of CA issuers: a CA issuer whose Secret certroute just
 * issued (bootstrapping a CA) is ready now, not at its next periodic recheck a minute later.
 */
function issuersController(kind: 'Issuer' | 'ClusterIssuer'): ControllerRegistration<Context> {
  return {
    name: kind === 'Issuer' ? 'issuers' : 'clusterissuers',
    workers: 2,
    register(ctx, { queue }) {
      const cache = kind === 'Issuer' ? ctx.caches.issuers : ctx.caches.clusterissuers;
      cache.on((i, ev) => {
        if (ev === 'delete') ctx.metrics.forgetIssuer(kind, i.metadata.namespace, i.metadata.name);
        queue.add(objectKey(i));
      });
      ctx.caches.secrets.on((s) => {
        if (kind === 'ClusterIssuer' && s.metadata.namespace !== ctx.config.clusterResourceNamespace) return;
        for (const i of cache.list(kind === 'Issuer' ? s.metadata.namespace : undefined)) {
          if (i.spec.ca?.secretName === s.metadata.name) queue.add(objectKey(i));
        }
      });
      return { reconcile: issuerReconciler(ctx, kind), resync: () => keysOf(cache) };
    },
  };
}

export const issuerController = issuersController('Issuer');
export const clusterIssuerController = issuersController('ClusterIssuer');

export function issuerReconciler(ctx: Context, kind: 'Issuer' | 'ClusterIssuer'): (key: string) => Promise<Outcome> {
  const def: ResourceDef = kind === 'Issuer' ? Resources.issuers : Resources.clusterissuers;
  const cache = kind === 'Issuer' ? ctx.caches.issuers : ctx.caches.clusterissuers;
  return async (key) => {
    const { namespace, name } = splitKey(key);
    const issuer = cache.get(namespace, name);
    if (!issuer) {
      ctx.accounts.forget(issuerKey({ name, kind }, namespace));
      return done;
    }
    const secretNs = kind === 'ClusterIssuer' ? ctx.config.clusterResourceNamespace : (namespace ?? 'default');
    const result = await evaluate(ctx, issuer, kind, secretNs);
    const status = { ...structuredClone(issuer.status ?? {}), ...(result.acme ? { acme: result.acme } : {}) };
    const prevReady = getCondition(issuer.status?.conditions, 'Ready');
    status.conditions = setCondition(issuer.status?.conditions, { type: 'Ready', ...result.ready }, issuer.metadata.generation, ctx.clock());
    await writeStatus(ctx, def, issuer, status);
    if (prevReady?.status !== result.ready.status || prevReady?.reason !== result.ready.reason) {
      ctx.events.event(issuer, def, result.ready.status === 'True' ? 'Normal' : 'Warning', result.ready.reason, result.ready.message);
    }
    ctx.metrics.observeIssuer(kind, namespace, name, status.conditions);
    if (result.error) throw result.error;
    return result.requeueMs ? requeueAfter(result.requeueMs) : done;
  };
}

interface Evaluation {
  ready: Omit<ConditionInput, 'type'>;
  acme?: NonNullable<Issuer['status']>['acme'];
  requeueMs?: number;
  /** A transient failure: status is written, then the queue retries. */
  error?: Error;
}

async function evaluate(ctx: Context, issuer: Issuer, kind: string, secretNs: string): Promise<Evaluation> {
  const { spec } = issuer;
  const configured = [spec.acme, spec.selfSigned, spec.ca].filter((x) => x !== undefined).length;
  if (configured !== 1) {
    return { ready: { status: 'False', reason: IssuerReasons.InitFailed, message: `${kind} ${issuer.metadata.name} must configure exactly one of spec.acme, spec.selfSigned or spec.ca` } };
  }
  if (spec.selfSigned) return { ready: { status: 'True', reason: IssuerReasons.IsReady, message: '' } };
  if (spec.ca) return evaluateCa(ctx, spec.ca.secretName, secretNs);
  return evaluateAcme(ctx, issuer, kind, secretNs);
}


async function evaluateCa(ctx: Context, secretName: string, ns: string): Promise<Evaluation> {
  const secret = await ctx.client.find<Secret>(Resources.secrets, ns, secretName);
  const fail = (reason: string, message: string): Evaluation => ({ ready: { status: 'False', reason, message }, requeueMs: CA_RECHECK_MS });
  if (!secret) return fail(IssuerReasons.GetKeyPairFailed, `Error getting keypair for CA issuer: secret "${ns}/${secretName}" not found; create it with tls.crt and tls.key`);
  const crt = decodeB64(secret.data?.['tls.crt']);
  const keyPem = decodeB64(secret.data?.['tls.key']);
  if (!crt || !keyPem) return fail(IssuerReasons.GetKeyPairFailed, `Error getting keypair for CA issuer: secret "${ns}/${secretName}" lacks tls.crt or tls.key`);
  try {
    const chain = parseCertificateChain(crt);
    if (!chain.leaf.isCA) return fail(IssuerReasons.InvalidKeyPair, `certificate in secret "${ns}/${secretName}" is not a CA (basicConstraints CA:false)`);
    if (!certificateMatchesKey(crt, keyPem)) return fail(IssuerReasons.InvalidKeyPair, `tls.crt and tls.key in secret "${ns}/${secretName}" do not match`);
    // Nothing can be signed with an expired CA: say so here, rather than on every request.
    if (chain.leaf.notAfter.getTime() <= ctx.clock().getTime()) {
      return fail(IssuerReasons.InvalidKeyPair, `the CA certificate in secret "${ns}/${secretName}" expired at ${chain.leaf.notAfter.toISOString()}; put a valid CA key pair in the Secret`);
    }
  } catch (err) {
    return fail(IssuerReasons.InvalidKeyPair, `secret "${ns}/${secretName}" holds no valid certificate and key: ${(err as Error).message}`);
  }
  return { ready: { status: 'True', reason: IssuerReasons.KeyPairVerified, message: 'Signing CA verified' }, requeueMs: CA_RECHECK_MS };
}

async function evaluateAcme(ctx: Context, issuer: Issuer, kind: string, secretNs: string): Promise<Evaluation> {
  const spec = issuer.spec.acme!;
  const keyName = spec.privateKeySecretRef.key || 'tls.key';
  const secretName = spec.privateKeySecretRef.name;
  let secret = await ctx.client.find<Secret>(Resources.secrets, secretNs, secretName);
  let keyPem = decodeB64(secret?.data?.[keyName]);
  if (!keyPem) {
    if (spec.disableAccountKeyGeneration) {
      return { ready: { status: 'False', reason: IssuerReasons.RegisterFailed, message: `account key secret "${secretNs}/${secretName}" (key ${keyName}) not found and disableAccountKeyGeneration is set; create it` }, requeueMs: CA_RECHECK_MS };
    }
    keyPem = (await acme.crypto.createPrivateRsaKey(2048)).toString('utf8');
    const data = { ...(secret?.data ?? {}), [keyName]: Buffer.from(keyPem).toString('base64') };
    if (secret) secret = await ctx.client.replace<Secret>(Resources.secrets, { ...structuredClone(secret), data });
    else secret = await ctx.client.create<Secret>(Resources.secrets, { metadata: { name: secretName, namespace: secretNs }, type: 'Opaque', data });
    ctx.events.event(issuer, kind === 'Issuer' ? Resources.issuers : Resources.clusterissuers, 'Normal', 'GeneratedKey', `Generated a new ACME account key in secret ${secretNs}/${secretName}`);
  }
  const keyHash = createHash('sha256').update(keyPem).digest('hex');
  const caBundlePem = spec.caBundle ? decodeB64(spec.caBundle) : undefined;
  let eab: AccountSpec['eab'];
  if (spec.externalAccountBinding) {
    const ref = spec.externalAccountBinding.keySecretRef;
    const eabSecret = await ctx.client.find<Secret>(Resources.secrets, secretNs, ref.name);
    const hmac = decodeB64(eabSecret?.data?.[ref.key || 'secret']).trim();
    if (!hmac) {
      return { ready: { status: 'False', reason: IssuerReasons.RegisterFailed, message: `external account binding secret "${secretNs}/${ref.name}" (key ${ref.key || 'secret'}) not found or empty` }, requeueMs: CA_RECHECK_MS };
    }
    eab = { kid: spec.externalAccountBinding.keyID, hmacKey: hmac };
  }
  const email = spec.email ?? '';
  const prev = issuer.status?.acme;
  const account: AccountSpec = { directoryUrl: spec.server, accountKeyPem: keyPem, tls: { caBundlePem, skipTLSVerify: spec.skipTLSVerify }, eab };
  const version = { uid: issuer.metadata.uid, generation: issuer.metadata.generation };
  const sameServer = prev?.uri ? new URL(prev.uri).host === new URL(spec.server).host : false;
  const key = issuerKey({ name: issuer.metadata.name, kind }, issuer.metadata.namespace);
  const registered = `The ACME account was registered with the ACME server${unsupportedNote(spec, ctx.solvers)}`;
  const ready = (acme: NonNullable<typeof prev>) =>
    checkProfile(ctx, key, spec, { ready: { status: 'True', reason: IssuerReasons.AccountRegistered, message: registered }, acme });
  if (prev?.uri && sameServer && prev.lastRegisteredEmail === email && prev.lastPrivateKeyHash === keyHash) {
    ctx.accounts.recall(key, version, account, email, prev.uri);
    return ready(prev);
  }
  // Registered by this process a moment ago, and the cache has not seen that status yet.
  const known = ctx.accounts.known(key, issuer.metadata.uid, account, email);
  if (known) {
    ctx.accounts.recall(key, version, account, email, known);
    return ready({ uri: known, lastRegisteredEmail: email, lastPrivateKeyHash: keyHash });
  }
  try {
    const contact = email ? [`mailto:${email}`] : [];
    const accountUrl = await ctx.accounts.register(key, version, account, email, async (client) => {
      const created = await call('register account', () => client.createAccount({ termsOfServiceAgreed: true, contact }));
      // An existing key returns the existing account unchanged: a new email needs an update.
      if (!isDeepStrictEqual([...(created.contact ?? [])].sort(), contact)) {
        await call('update account contact', () => client.updateAccount({ contact }));
      }
    });
    return ready({ uri: accountUrl, lastRegisteredEmail: email, lastPrivateKeyHash: keyHash });
  } catch (err) {
    ctx.accounts.forget(key);
    const hint = err instanceof AcmeProblemError && err.type === 'urn:ietf:params:acme:error:externalAccountRequired'
      ? '; this CA requires external account binding: set spec.acme.externalAccountBinding to the key ID and HMAC key Secret it gave you'
      : '';
    const message = `Failed to register ACME account with ${spec.server}: ${(err as Error).message}${hint}`;
    if (err instanceof AcmeProblemError) return { ready: { status: 'False', reason: IssuerReasons.RegisterFailed, message }, requeueMs: 5 * 60_000 };
    return { ready: { status: 'False', reason: IssuerReasons.RegisterFailed, message }, error: err as Error };
  }
}

/**
 * An issuer that asks for a profile is Ready only when the server lists it in meta.profiles:
 * otherwise every order would fail with invalidProfile, one Certificate at a time. The
 * directory is read afresh (the account itself is not touched), so a CA that starts offering
 * the profile is seen at the next look, a few minutes later.
 */
async function checkProfile(ctx: Context, key: IssuerKey, spec: NonNullable<Issuer['spec']['acme']>, registered: Evaluation): Promise<Evaluation> {
  const profile = spec.profile;
  if (!profile) return registered;
  let offered: Record<string, string> | undefined;
  try {
    offered = (await call('read directory', () => directoryOffers(ctx.accounts.client(key), true))).profiles;
  } catch (err) {
    const message = `Failed to read the ACME directory of ${spec.server} to check spec.acme.profile "${profile}": ${(err as Error).message}`;
    return { ...registered, ready: { status: 'False', reason: IssuerReasons.UnknownProfile, message }, error: err as Error };
  }
  if (offered && Object.hasOwn(offered, profile)) return registered;
  const names = Object.keys(offered ?? {}).sort();
  const message = names.length
    ? `spec.acme.profile "${profile}" is not offered by ${spec.server}; it offers: ${names.join(', ')}. Set one of them, or remove spec.acme.profile to let the server choose`
    : `spec.acme.profile "${profile}" is set, but ${spec.server} offers no profiles (its directory has no meta.profiles); remove spec.acme.profile`;
  return { ...registered, ready: { status: 'False', reason: IssuerReasons.UnknownProfile, message }, requeueMs: 5 * 60_000 };
}

/**
 * Fields the CRD accepts for compatibility but certroute does not act on are
 * named on the Ready condition, so nothing is silently ignored: solver
 * Ingress and HTTPRoute tuning (there are no solver pods, Ingresses or
 * HTTPRoutes per challenge) and a solver kind no
 * registered solver handles (names only it could validate fail on their Order).
 */
export function unsupportedNote(spec: NonNullable<Issuer['spec']['acme']>, solvers: SolverRegistry): string {
  const notes: string[] = [];
  (spec.solvers ?? []).forEach((s, i) => {
    const ingress = (s.http01?.ingress ?? {}) as Record<string, unknown>;
    const inert = ['name', 'serviceType', 'podTemplate', 'ingressTemplate'].filter((f) => ingress[f] !== undefined);
    if (inert.length) notes.push(`solvers[${i}].http01.ingress.${inert.join('/')} has no effect (certroute creates no solver Ingress or pod)`);
    const gateway = Object.keys(s.http01?.gatewayHTTPRoute ?? {}).sort();
    if (gateway.length) notes.push(`solvers[${i}].http01.gatewayHTTPRoute.${gateway.join('/')} has no effect (certroute answers through its one challenge HTTPRoute, --wiring=gateway, or Traefik's route, and creates no HTTPRoute or pod per challenge)`);
    if (s.dns01 && !solvers.get('dns01')) notes.push(`solvers[${i}].dns01 is not implemented yet and is not used`);
  });
  return notes.length ? `; note: ${notes.join('; ')}` : '';
}

/** How the account registry sees the issuers: through the caches, the issuer queues and the issuer's status. */
export function issuerHooks(context: () => Context): IssuerHooks {
  const refOf = (key: IssuerKey) => ({ name: key.name, kind: key.kind });
  return {
    current: (key) => findIssuer(context(), refOf(key), key.namespace)?.metadata,
    refresh: (key) => context().enqueue.issuer(key.namespace, key.name, key.kind),
    async forgetRemembered(key) {
      const ctx = context();
      const issuer = findIssuer(ctx, refOf(key), key.namespace);
      if (!issuer?.status?.acme) return;
      const status = structuredClone(issuer.status);
      delete status.acme;
      await writeStatus(ctx, key.kind === 'ClusterIssuer' ? Resources.clusterissuers : Resources.issuers, issuer, status);
    },
  };
}
