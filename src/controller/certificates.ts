/**
 * The Certificate reconciler: readiness, trigger and issuing, as cert-manager's
 * certificates controllers split them; a pass takes one step, except that the
 * trigger makes the next key in the same pass and write (docs/ARCHITECTURE.md).
 *
 * - Readiness: Ready reflects the Secret as it is now, and never flips to
 *   False just because a renewal is under way.
 * - Trigger: the re-issue policy chain decides when to set Issuing=True,
 *   respecting the failure back-off (1h doubling to 32h by default); a spec
 *   change retries at once.
 * - Issuing: next private key Secret → CertificateRequest `<name>-<rev>` →
 *   the Secret, written once, with its resourceVersion precondition, only
 *   when the new certificate matches its key and has not expired.
 */
import type { AriStatus, Certificate, CertificateRequest, CertificateStatus, Secret } from '../api/types.ts';
import { CertificateRequestAnnotations as CRA, MANAGED_LABEL, Resources, SecretAnnotations } from '../api/types.ts';
import { exponentialDelay } from '../base/backoff.ts';
import { controllerOf, controllerReference, decodeB64, isOwnedBy, objectKey, sameContent, splitKey } from '../base/objects.ts';
import { isAlreadyExists } from '../kube/client.ts';
import { getCondition, kubeTime, removeCondition, setCondition } from '../kube/conditions.ts';
import { enqueueOwner, keysOf, type ControllerRegistration } from '../kube/controller.ts';
import { done, requeueAfter, type Outcome } from '../kube/queue.ts';
import { parseCsr } from '../pki/csr.ts';
import { generatePrivateKey, keyMatchesSpec, publicKeyFingerprint } from '../pki/keys.ts';
import { Reasons, readinessReason, shouldReissue } from '../pki/policies.ts';
import { certificateRenewalTime } from '../pki/renewal.ts';
import { outputFacts } from '../pki/outputs.ts';
import { factsInPlaceOfPem, secretFacts } from '../pki/secret-facts.ts';
import { trimSecret } from '../kube/secret-cache.ts';
import { checkRenewalInfo } from './ari-check.ts';
import { findIssuer, issuerKey, type Context } from './context.ts';
import { buildCertificateRequest, buildSecret, requestMatchesSpec } from './issuing.ts';
import { keystoreOutputs, keystoreReader, PASSWORD_RETRY_MS } from './keystores.ts';
import { refreshOutputs } from './secret-outputs.ts';
import { writeStatus } from './status.ts';

export const NEXT_KEY_LABEL = 'cert-manager.io/next-private-key';

/** The Certificates index by the Secret they name: `<namespace>/<spec.secretName>`. */
const BY_SECRET = 'secretName';
const secretIndexValue = (namespace: string | undefined, secretName: string): string => `${namespace ?? ''}/${secretName}`;

/**
 * Watches its Certificates, the CertificateRequests they own (a request's progress moves the
 * issuance on) and the Secrets they name or that name them (a Secret edited or deleted by hand
 * is repaired at once, not at the next renewal).
 */
export const certificatesController: ControllerRegistration<Context> = {
  name: 'certificates',
  register(ctx, { queue }) {
    const { caches } = ctx;
    const reconcile = certificateReconciler(ctx);
    caches.certificates.on((c, ev) => {
      queue.add(objectKey(c));
      // Certificates naming the same Secret decide together (see refuseSharedSecret).
      for (const other of namingSecret(ctx, c.metadata.namespace, c.spec.secretName)) {
        if (other.metadata.name !== c.metadata.name) queue.add(objectKey(other));
      }
    });
    caches.certificaterequests.on(enqueueOwner(queue, 'Certificate'));
    caches.secrets.on((s) => {
      const cert = s.metadata.annotations?.[SecretAnnotations.certificateName] ?? controllerOf(s, 'Certificate');
      if (cert) queue.add(`${s.metadata.namespace}/${cert}`);
      for (const c of namingSecret(ctx, s.metadata.namespace, s.metadata.name)) queue.add(objectKey(c));
    });
    return { reconcile, resync: () => keysOf(caches.certificates) };
  },
};

/** The reconciler; it adds the index it reads (by spec.secretName) to the Certificate cache, so call it before the caches start. */
export function certificateReconciler(ctx: Context): (key: string) => Promise<Outcome> {
  indexBySecretName(ctx);
  return async (key) => {
    const { namespace, name } = splitKey(key);
    const cert = ctx.caches.certificates.get(namespace, name);
    if (!cert || cert.metadata.deletionTimestamp) return done;
    // The version our last write replaced: that write's watch event brings the next pass.
    if (ctx.caches.certificates.isReplaced(cert)) return done;
    const twins = sharingSecret(ctx, cert);
    if (twins.length > 0) return refuseSharedSecret(ctx, cert, twins);
    const issuing = getCondition(cert.status?.conditions, 'Issuing')?.status === 'True';
    return issuing ? issue(ctx, cert) : trigger(ctx, cert);
  };
}

function secretOf(ctx: Context, cert: Certificate): Secret | undefined {
  return ctx.caches.secrets.get(cert.metadata.namespace, cert.spec.secretName);
}

/** cert-manager's name for the CertificateRequest of one revision. */
export function requestName(cert: Certificate, revision: number): string {
  return `${cert.metadata.name}-${revision}`;
}

/**
 * The CertificateRequest of a revision: the one of that name, when this
 * Certificate (by uid) owns it. The only way certroute finds "the current
 * request"; a namesake left by a deleted Certificate of the same name is not it.
 */
function requestFor(ctx: Context, cert: Certificate, revision: number): CertificateRequest | undefined {
  const cr = ctx.caches.certificaterequests.get(cert.metadata.namespace, requestName(cert, revision));
  if (!cr || !isOwnedBy(cr, cert)) return undefined;
  return cr;
}

/** The failure back-off: minBackoff · 2^(n−1), capped, from lastFailureTime (at the latest `now`). */
export function retryAt(ctx: Context, cert: Certificate, now: Date): number | undefined {
  const n = cert.status?.failedIssuanceAttempts ?? 0;
  const last = cert.status?.lastFailureTime;
  if (n === 0 || !last) return undefined;
  const failedGeneration = getCondition(cert.status?.conditions, 'Issuing')?.observedGeneration;
  if (failedGeneration !== undefined && cert.metadata.generation !== undefined && cert.metadata.generation > failedGeneration) return undefined;
  const delay = exponentialDelay(n, ctx.config.minBackoffMs, ctx.config.maxBackoffMs);
  // Anyone who can write certificates/status can set lastFailureTime; one in the future (or
  // unparsable) counts from now, so it can delay a retry by one back-off and no more.
  const failedAt = Date.parse(last);
  return (Number.isNaN(failedAt) || failedAt > now.getTime() ? now.getTime() : failedAt) + delay;
}

async function trigger(ctx: Context, cert: Certificate): Promise<Outcome> {
  const now = ctx.clock();
  let secret = secretOf(ctx, cert);
  const currentRequest = cert.status?.revision ? requestFor(ctx, cert, cert.status.revision) : undefined;
  let input = { certificate: cert, secret, now, currentRequest };
  let decision = shouldReissue(input);
  if (decision) {
    // An issuance goes to the CA, so it is decided on the Secret as it is, not as the cache has
    // it: the Secret just written can reach the cache after the Certificate's own update (or
    // while a watch is away), and a missing or old Secret there would start a second issuance.
    const live = await ctx.client.find<Secret>(Resources.secrets, cert.metadata.namespace, cert.spec.secretName);
    if (live?.metadata.resourceVersion !== secret?.metadata.resourceVersion) {
      secret = live;
      input = { certificate: cert, secret, now, currentRequest };
      decision = shouldReissue(input);
    }
  }
  const status: CertificateStatus = { ...structuredClone(cert.status ?? {}), ...timesFromSecret(cert, secret) };
  const notReady = readinessReason(input);
  status.conditions = setCondition(
    status.conditions,
    notReady
      ? { type: 'Ready', status: 'False', reason: notReady.reason, message: notReady.message }
      : { type: 'Ready', status: 'True', reason: 'Ready', message: 'Certificate is up to date and has not expired' },
    cert.metadata.generation,
    now,
  );
  if (!decision) {
    const outputs = await refreshOutputs(ctx, cert, secret);
    await writeStatus(ctx, Resources.certificates, cert, status);
    const renewAt = status.renewalTime ? Date.parse(status.renewalTime) : undefined;
    const retry = outputs.passwordMissing ? PASSWORD_RETRY_MS : Infinity;
    return renewAt ? requeueAfter(Math.min(renewAt - now.getTime(), 24 * 3600_000, retry)) : outputs.passwordMissing ? requeueAfter(retry) : done;
  }
  const at = retryAt(ctx, cert, now);
  if (at !== undefined && at > now.getTime()) {
    await writeStatus(ctx, Resources.certificates, cert, status);
    return requeueAfter(at - now.getTime());
  }
  status.conditions = setCondition(status.conditions, { type: 'Issuing', status: 'True', reason: decision.reason, message: decision.message }, cert.metadata.generation, now);
  ctx.events.event(cert, Resources.certificates, 'Normal', 'Issuing', decision.message);
  // The issuance's first step (the next key) in this pass: Issuing=True is written with it.
  return issue(ctx, cert, status);
}

/** notBefore, notAfter and renewalTime of the certificate in the Secret, as status shows them; nothing when there is none. */
export function timesFromSecret(cert: Certificate, secret: Secret | undefined): Pick<CertificateStatus, 'notBefore' | 'notAfter' | 'renewalTime'> {
  const leaf = secret ? secretFacts(secret).certificate : undefined;
  if (!leaf) return {};
  try {
    const renew = certificateRenewalTime(cert, leaf);
    return { notBefore: kubeTime(leaf.notBefore), notAfter: kubeTime(leaf.notAfter), renewalTime: kubeTime(renew) };
  } catch {
    return {};
  }
}

/**
 * What the Secret cache keeps of a certroute Secret: a next-key Secret whole
 * (its key goes into the request), every other one with its certificate and
 * key as facts, not PEM. The one pass that needs a stored key itself
 * (rotationPolicy Never) reads it from the API server.
 */
export function cachedSecret(o: object): void {
  const secret = o as Secret;
  const outputs = outputFacts(secret.data, keystoreReader());
  trimSecret(o);
  if (secret.metadata.labels?.[NEXT_KEY_LABEL] !== 'true') factsInPlaceOfPem(secret, outputs);
}

/**
 * The issuing steps. `status` is what this pass will write (the trigger hands over its own, with
 * Issuing=True); `cert` is the object as read, whose resourceVersion the write carries. Every
 * step that returns writes `status` first, when it differs from what was read.
 */
async function issue(ctx: Context, cert: Certificate, status: CertificateStatus = structuredClone(cert.status ?? {})): Promise<Outcome> {
  const ns = cert.metadata.namespace ?? 'default';
  // The Issuing condition says which generation this issuance has seen, so a
  // spec edit that leaves the request in flight is acknowledged all the same.
  const issuing = getCondition(status.conditions, 'Issuing');
  if (issuing) {
    status.conditions = setCondition(status.conditions, { ...issuing, reason: issuing.reason ?? '', message: issuing.message ?? '' }, cert.metadata.generation, ctx.clock());
  }
  // 1. The next private key lives in a Secret, so any replica can carry on.
  const nextName = status.nextPrivateKeySecretName;
  let nextKey = nextName ? ctx.caches.secrets.get(ns, nextName) : undefined;
  if (nextName && !nextKey) nextKey = await ctx.client.find<Secret>(Resources.secrets, ns, nextName);
  // Anyone who may write certificates/status can name any Secret here: only a next-key Secret
  // this Certificate owns is used (or deleted); any other name is forgotten, the Secret untouched.
  if (nextName && (!nextKey || !isNextKeyOf(nextKey, cert))) {
    if (nextKey) ctx.events.event(cert, Resources.certificates, 'Warning', 'NextPrivateKeyIgnored', `status.nextPrivateKeySecretName names Secret ${nextName}, which is not a next-private-key Secret of this Certificate; it is left alone and a new key is made`);
    delete status.nextPrivateKeySecretName;
    await writeStatus(ctx, Resources.certificates, cert, status);
    return done;
  }
  if (!nextKey) {
    // Recorded now; the request is the next pass's step, once the key's own write has gone
    // round the caches: a Certificate naming the same Secret that the cache does not show yet
    // is seen by then, and no request (no order at the CA) is made for either.
    await createNextKey(ctx, cert, status);
    await writeStatus(ctx, Resources.certificates, cert, status);
    return done;
  }
  const keyPem = decodeB64(nextKey.data?.['tls.key']);
  if (!keyPem || !keyMatchesSpec(keyPem, cert.spec.privateKey)) {
    await ctx.client.delete(Resources.secrets, ns, nextKey.metadata.name, nextKey.metadata.uid);
    delete status.nextPrivateKeySecretName;
    await writeStatus(ctx, Resources.certificates, cert, status);
    return done;
  }
  // 2. One CertificateRequest per revision.
  const revision = (status.revision ?? 0) + 1;
  const crName = requestName(cert, revision);
  const cr = ctx.caches.certificaterequests.get(ns, crName);
  if (cr && (!isOwnedBy(cr, cert) || !requestMatchesSpec(cr, cert, keyPem))) {
    await ctx.client.delete(Resources.certificaterequests, ns, crName, cr.metadata.uid);
    await writeStatus(ctx, Resources.certificates, cert, status);
    return requeueAfter(100);
  }
  if (!cr) {
    if (!findIssuer(ctx, cert.spec.issuerRef, ns) && cert.spec.issuerRef.group && cert.spec.issuerRef.group !== 'cert-manager.io') {
      ctx.events.event(cert, Resources.certificates, 'Warning', 'IssuerNotFound', `issuerRef group ${cert.spec.issuerRef.group} is not served by certroute`);
    }
    let request: CertificateRequest;
    try {
      request = await buildCertificateRequest(cert, crName, revision, nextKey.metadata.name, keyPem);
    } catch (err) {
      // A spec no CSR can carry (a name constraint Go would not read, say): a failed issuance,
      // with the reason, backed off as any other.
      return recordFailure(ctx, cert, status, undefined, `no CSR can be made from the spec: ${(err as Error).message}`);
    }
    await ctx.client.create(Resources.certificaterequests, request);
    ctx.events.event(cert, Resources.certificates, 'Normal', 'Requested', `Created new CertificateRequest resource "${crName}"`);
    await writeStatus(ctx, Resources.certificates, cert, status);
    return done;
  }
  const ready = getCondition(cr.status?.conditions, 'Ready');
  const denied = getCondition(cr.status?.conditions, 'Denied')?.status === 'True';
  if (denied || (ready?.status === 'False' && (ready.reason === 'Failed' || ready.reason === 'Denied'))) {
    return recordFailure(ctx, cert, status, cr, ready?.message ?? 'The CertificateRequest was denied');
  }
  if (ready?.status !== 'True' || !cr.status?.certificate) {
    await writeStatus(ctx, Resources.certificates, cert, status);
    return done;
  }
  return storeCertificate(ctx, cert, status, cr, keyPem, nextKey);
}


/** Ready=False on every Certificate that shares its Secret with another. */
export const DuplicateSecretName = 'DuplicateSecretName';
/** How often a Certificate in conflict looks again (a rename of the other one does not wake it). */
const CONFLICT_RECHECK_MS = 60_000;

/** Adds the Certificate cache's index by spec.secretName that `namingSecret` reads; before the caches start, by every controller that reads it (adding it twice is a no-op). */
export function indexBySecretName(ctx: Pick<Context, 'caches'>): void {
  ctx.caches.certificates.addIndex(BY_SECRET, (c) => [secretIndexValue(c.metadata.namespace, c.spec.secretName)]);
}

/** The Certificates in `namespace` whose spec.secretName is `secretName`. */
export function namingSecret(ctx: Pick<Context, 'caches'>, namespace: string | undefined, secretName: string): Certificate[] {
  return ctx.caches.certificates.byIndex(BY_SECRET, secretIndexValue(namespace, secretName));
}

/** Other Certificates in the namespace that name the same Secret. */
function sharingSecret(ctx: Context, cert: Certificate): Certificate[] {
  return namingSecret(ctx, cert.metadata.namespace, cert.spec.secretName)
    .filter((c) => c.metadata.name !== cert.metadata.name && !c.metadata.deletionTimestamp);
}

/**
 * Two Certificates writing one Secret would overwrite each other for ever, each write a new
 * issuance at the CA: neither is issued, and both say why until one is renamed or deleted.
 */
async function refuseSharedSecret(ctx: Context, cert: Certificate, twins: Certificate[]): Promise<Outcome> {
  const names = [cert, ...twins].map((c) => c.metadata.name).sort().join(', ');
  const message = `Certificates ${names} all name Secret ${cert.spec.secretName} and would overwrite each other's certificate; give each its own spec.secretName. None of them is issued until then`;
  const status = structuredClone(cert.status ?? {});
  status.conditions = removeCondition(status.conditions, 'Issuing');
  status.conditions = setCondition(status.conditions, { type: 'Ready', status: 'False', reason: DuplicateSecretName, message }, cert.metadata.generation, ctx.clock());
  if (!sameContent(status, cert.status ?? {})) ctx.events.event(cert, Resources.certificates, 'Warning', DuplicateSecretName, message);
  await writeStatus(ctx, Resources.certificates, cert, status);
  return requeueAfter(CONFLICT_RECHECK_MS);
}

/** Next-key Secrets of this Certificate, including any an earlier attempt left unrecorded. */
function nextKeySecrets(ctx: Context, cert: Certificate): Secret[] {
  return ctx.caches.secrets.ownedBy(cert).filter((s) => isNextKeyOf(s, cert) && !s.metadata.deletionTimestamp);
}

/** A next-private-key Secret of this Certificate: labelled so, and owned by it. */
export function isNextKeyOf(secret: Secret, cert: Certificate): boolean {
  return secret.metadata.labels?.[NEXT_KEY_LABEL] === 'true' && isOwnedBy(secret, cert);
}

/**
 * The next private key's Secret, recorded in `status` (the caller writes it): made now, or
 * adopted when an earlier pass made it and its status write lost a conflict (a stale cache),
 * rather than joined by another.
 */
async function createNextKey(ctx: Context, cert: Certificate, status: CertificateStatus): Promise<Secret> {
  const ns = cert.metadata.namespace ?? 'default';
  const unrecorded = nextKeySecrets(ctx, cert).find((s) => {
    const pem = decodeB64(s.data?.['tls.key']);
    return pem !== '' && keyMatchesSpec(pem, cert.spec.privateKey);
  });
  if (unrecorded) {
    status.nextPrivateKeySecretName = unrecorded.metadata.name;
    return unrecorded;
  }
  let keyPem: string | undefined;
  if (cert.spec.privateKey?.rotationPolicy === 'Never') {
    const stored = secretOf(ctx, cert) && (await ctx.client.find<Secret>(Resources.secrets, ns, cert.spec.secretName));
    const current = decodeB64(stored?.data?.['tls.key']);
    if (current && keyMatchesSpec(current, cert.spec.privateKey)) keyPem = current;
  }
  keyPem ??= await generatePrivateKey(cert.spec.privateKey ?? {});
  const suffix = Math.random().toString(36).slice(2, 7);
  const name = `${cert.metadata.name.slice(0, 240)}-${suffix}`;
  const created = await ctx.client.create<Secret>(Resources.secrets, {
    metadata: {
      name,
      namespace: ns,
      labels: { [MANAGED_LABEL]: 'true', [NEXT_KEY_LABEL]: 'true' },
      ownerReferences: [controllerReference(Resources.certificates, cert)],
    },
    type: 'Opaque',
    data: { 'tls.key': Buffer.from(keyPem).toString('base64') },
  });
  status.nextPrivateKeySecretName = name;
  return created;
}

async function recordFailure(ctx: Context, cert: Certificate, status: CertificateStatus, cr: CertificateRequest | undefined, message: string): Promise<Outcome> {
  const now = ctx.clock();
  status.failedIssuanceAttempts = (status.failedIssuanceAttempts ?? 0) + 1;
  status.lastFailureTime = kubeTime(now);
  const text = `The certificate request has failed to complete and will be retried: ${message}`;
  status.conditions = setCondition(status.conditions, { type: 'Issuing', status: 'False', reason: 'Failed', message: text }, cert.metadata.generation, now);
  await writeStatus(ctx, Resources.certificates, cert, status);
  // The failed request is removed so the retry can reuse the revision's name;
  // its story stays in the Certificate's Events.
  if (cr) await ctx.client.delete(Resources.certificaterequests, cr.metadata.namespace, cr.metadata.name, cr.metadata.uid);
  ctx.events.event(cert, Resources.certificates, 'Warning', 'Failed', text);
  return done;
}

async function storeCertificate(ctx: Context, cert: Certificate, status: CertificateStatus, cr: CertificateRequest, keyPem: string, nextKey: Secret): Promise<Outcome> {
  const ns = cert.metadata.namespace ?? 'default';
  const now = ctx.clock();
  const chainPem = decodeB64(cr.status?.certificate);
  const caPem = decodeB64(cr.status?.ca);
  const built = buildSecret(cert, chainPem, keyPem, caPem, now);
  if ('error' in built) {
    return recordFailure(ctx, cert, status, cr, `refusing to store the issued certificate: ${built.error}`);
  }
  const keystores = await keystoreOutputs(ctx, cert, Buffer.from(keyPem), Buffer.from(chainPem), Buffer.from(caPem));
  Object.assign(built.secret.data ?? {}, keystores.data);
  built.remove.push(...keystores.remove);
  // The CA is asked for the new certificate's renewal window while the Secret is written, so the
  // Ready write below carries it (and the renewal time it gives).
  const renewalInfo = askRenewalInfo(ctx, cert, built.leaf.renewalInfoId, now);
  // Merged into the Secret as the API server has it: the cache keeps only the keys certroute
  // reads, and other keys (added by the user) must survive. A Secret the cache does not show is
  // created without reading first: if one exists after all (a lagging cache), the create is
  // refused, and it is read and merged into instead.
  let existing = secretOf(ctx, cert) ? await ctx.client.find<Secret>(Resources.secrets, ns, cert.spec.secretName) : undefined;
  if (!existing) {
    try {
      await ctx.client.create(Resources.secrets, built.secret);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      existing = await ctx.client.find<Secret>(Resources.secrets, ns, cert.spec.secretName);
      if (!existing) throw err;
    }
  }
  if (existing) {
    const merged: Secret = {
      ...structuredClone(existing),
      type: existing.type ?? 'kubernetes.io/tls',
      metadata: {
        ...structuredClone(existing.metadata),
        labels: { ...existing.metadata.labels, ...built.secret.metadata.labels },
        annotations: { ...existing.metadata.annotations, ...built.secret.metadata.annotations },
      },
      data: { ...existing.data, ...built.secret.data },
    };
    // An issuer that gives no CA (ACME) must not leave the previous issuer's ca.crt beside the
    // new chain, where clients would trust the wrong root.
    if (built.secret.data?.['ca.crt'] === undefined) delete merged.data?.['ca.crt'];
    for (const key of built.remove) delete merged.data?.[key];
    if (!sameContent(merged, existing)) await ctx.client.replace(Resources.secrets, merged);
  }
  const leaf = built.leaf;
  // What ARI said was about the certificate just replaced; the new one is asked about anew.
  const acme = { ...(status.acme ?? {}) };
  delete acme.ari;
  const ari = await renewalInfo;
  if (ari) acme.ari = ari;
  const profile = profileOf(ctx, cr);
  if (profile) acme.profile = profile;
  else delete acme.profile;
  const next: CertificateStatus = {
    ...status,
    revision: (status.revision ?? 0) + 1,
    notBefore: kubeTime(leaf.notBefore),
    notAfter: kubeTime(leaf.notAfter),
    renewalTime: kubeTime(certificateRenewalTime({ ...cert, status: ari ? { acme: { ari } } : {} }, leaf)),
    acme,
  };
  if (Object.keys(acme).length === 0) delete next.acme;
  const renew = new Date(next.renewalTime!);
  delete next.nextPrivateKeySecretName;
  delete next.failedIssuanceAttempts;
  delete next.lastFailureTime;
  next.conditions = removeCondition(next.conditions, 'Issuing');
  next.conditions = setCondition(next.conditions, { type: 'Ready', status: 'True', reason: 'Ready', message: 'Certificate is up to date and has not expired' }, cert.metadata.generation, now);
  await writeStatus(ctx, Resources.certificates, cert, next);
  // The used key, and any unrecorded one: no private key outlives its issuance.
  for (const k of [nextKey, ...nextKeySecrets(ctx, cert).filter((k) => k.metadata.name !== nextKey.metadata.name)]) {
    await ctx.client.delete(Resources.secrets, ns, k.metadata.name, k.metadata.uid);
  }
  ctx.events.event(cert, Resources.certificates, 'Normal', 'Issuing', 'The certificate has been successfully issued');
  await pruneRequests(ctx, cert, next.revision ?? 1);
  return requeueAfter(Math.min(renew.getTime() - now.getTime(), 24 * 3600_000, keystores.passwordMissing ? PASSWORD_RETRY_MS : Infinity));
}

/**
 * The ARI status of a certificate just issued by an ACME issuer (with --ari on), or nothing: no
 * renewalInfo at the CA, a CA that does not know it yet, or any error. Nothing is lost then: the
 * renewalinfo reconciler asks on its own schedule.
 */
async function askRenewalInfo(ctx: Context, cert: Certificate, id: string | undefined, now: Date): Promise<AriStatus | undefined> {
  const ns = cert.metadata.namespace ?? 'default';
  if (!ctx.config.ari || !id || !findIssuer(ctx, cert.spec.issuerRef, ns)?.spec.acme) return undefined;
  try {
    const check = await checkRenewalInfo(ctx.accounts.client(issuerKey(cert.spec.issuerRef, ns)), id, undefined, now.getTime(), ctx.config.ariPollMaxMs);
    return check.kind === 'answered' ? check.ari : undefined;
  } catch (err) {
    ctx.logger.debug({ key: objectKey(cert), err: String(err) }, 'renewal info of the new certificate not read; the renewalinfo controller asks later');
    return undefined;
  }
}

/** The ACME profile the request's Order was issued under, as the CA answered (none for other issuers). */
function profileOf(ctx: Context, cr: CertificateRequest): string | undefined {
  const order = ctx.caches.orders.list(cr.metadata.namespace).find((o) => isOwnedBy(o, cr));
  return order?.status?.profile ?? order?.spec.profile;
}

/** Keeps the newest `revisionHistoryLimit` requests (default 1), as cert-manager does. */
async function pruneRequests(ctx: Context, cert: Certificate, revision: number): Promise<void> {
  const limit = cert.spec.revisionHistoryLimit ?? 1;
  for (const cr of ctx.caches.certificaterequests.ownedBy(cert)) {
    const rev = Number(cr.metadata.annotations?.[CRA.revision]);
    if (Number.isFinite(rev) && rev <= revision - limit) {
      if (cr) await ctx.client.delete(Resources.certificaterequests, cr.metadata.namespace, cr.metadata.name, cr.metadata.uid);
    }
  }
}

export { Reasons, parseCsr, publicKeyFingerprint };
