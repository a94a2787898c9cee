/**
 * CertificateRequest reconciler: approval, then the issuer-specific signer.
 * SelfSigned and CA sign in-process; ACME hands over to an Order and copies
 * its chain back once the Order is valid.
 */
import { createHash } from 'node:crypto';
import type { CertificateRequest, CertificateRequestStatus, Issuer, Order, Secret } from '../api/types.ts';
import { normalizeIssuerRef } from '../api/issuer-ref.ts';
import { CertificateRequestAnnotations as CRA, Resources } from '../api/types.ts';
import { durationMs } from '../base/duration.ts';
import { controllerReference, decodeB64, encodeB64, objectKey, splitKey } from '../base/objects.ts';
import { isAlreadyExists } from '../kube/client.ts';
import { getCondition, kubeTime, setCondition } from '../kube/conditions.ts';
import { enqueueOwner, keysOf, type ControllerRegistration } from '../kube/controller.ts';
import { done, requeueAfter, type Outcome } from '../kube/queue.ts';
import { parseCsr } from '../pki/csr.ts';
import { CaSecretError, signCsr, type SignedCertificate, type SignOptions } from '../pki/sign.ts';
import { findIssuer, issuerSecretNamespace, type Context } from './context.ts';
import { shortenName } from './orders.ts';
import { createObject, writeStatus } from './status.ts';

const ISSUER_WAIT_MS = 5_000;

/** Watches its requests, the Orders they own, and the issuers they name: a request waiting on its issuer moves on as soon as it is Ready. */
export const certificateRequestsController: ControllerRegistration<Context> = {
  name: 'certificaterequests',
  register(ctx, { queue }) {
    const { caches } = ctx;
    caches.certificaterequests.on((cr) => queue.add(objectKey(cr)));
    caches.orders.on(enqueueOwner(queue, 'CertificateRequest'));
    const issuerChanged = (kind: 'Issuer' | 'ClusterIssuer') => (i: Issuer) => {
      for (const cr of caches.certificaterequests.list(kind === 'Issuer' ? i.metadata.namespace : undefined)) {
        const ref = normalizeIssuerRef(cr.spec.issuerRef);
        if (ref.kind === kind && ref.name === i.metadata.name) queue.add(objectKey(cr));
      }
    };
    caches.issuers.on(issuerChanged('Issuer'));
    caches.clusterissuers.on(issuerChanged('ClusterIssuer'));
    return { reconcile: certificateRequestReconciler(ctx), resync: () => keysOf(caches.certificaterequests) };
  },
};

export function certificateRequestReconciler(ctx: Context): (key: string) => Promise<Outcome> {
  return async (key) => {
    const { namespace, name } = splitKey(key);
    const cr = ctx.caches.certificaterequests.get(namespace, name);
    if (!cr || cr.metadata.deletionTimestamp || ctx.caches.certificaterequests.isReplaced(cr)) return done;
    const ready = getCondition(cr.status?.conditions, 'Ready');
    if (ready?.status === 'True' || ready?.reason === 'Failed' || ready?.reason === 'Denied') return done;
    const now = ctx.clock();
    const status = structuredClone(cr.status ?? {});
    if (getCondition(status.conditions, 'Denied')?.status === 'True') {
      return finish(ctx, cr, status, { status: 'False', reason: 'Denied', message: 'The CertificateRequest was denied by an approval controller' });
    }
    if (getCondition(status.conditions, 'Approved')?.status !== 'True') {
      // With --auto-approve=false an external approver (approver-policy, `cmctl approve`) decides;
      // its status write brings the next pass.
      if (!ctx.config.autoApprove) {
        ctx.events.event(cr, Resources.certificaterequests, 'Normal', 'WaitingForApproval', 'Not signing CertificateRequest until it is Approved');
        return done;
      }
      // certroute is its own approver, as cert-manager's default approver is.
      status.conditions = setCondition(status.conditions, { type: 'Approved', status: 'True', reason: 'cert-manager.io', message: 'Certificate request has been approved by cert-manager.io' }, undefined, now);
    }
    const issuer = findIssuer(ctx, cr.spec.issuerRef, namespace);
    const ref = normalizeIssuerRef(cr.spec.issuerRef);
    if (!issuer || getCondition(issuer.status?.conditions, 'Ready')?.status !== 'True') {
      const message = issuer
        ? `Referenced "${ref.kind}" ${ref.name} is not ready: ${getCondition(issuer.status?.conditions, 'Ready')?.message ?? 'not yet reconciled'}`
        : `Referenced "${ref.kind}" not found: ${ref.kind.toLowerCase()}.${ref.group} "${ref.name}" not found; create it or fix spec.issuerRef`;
      status.conditions = setCondition(status.conditions, { type: 'Ready', status: 'False', reason: 'Pending', message }, undefined, now);
      await writeStatus(ctx, Resources.certificaterequests, cr, status);
      return requeueAfter(ISSUER_WAIT_MS);
    }
    if (issuer.spec.acme) return viaOrder(ctx, cr, issuer, status);
    return signLocally(ctx, cr, issuer, status);
  };
}

async function finish(
  ctx: Context,
  cr: CertificateRequest,
  status: CertificateRequestStatus,
  ready: { status: 'True' | 'False'; reason: string; message: string },
): Promise<Outcome> {
  const now = ctx.clock();
  status.conditions = setCondition(status.conditions, { type: 'Ready', ...ready }, undefined, now);
  if (ready.status === 'False') status.failureTime = kubeTime(now);
  await writeStatus(ctx, Resources.certificaterequests, cr, status);
  // The condition's reason is Issued; the Event's, as cert-manager records it, is CertificateIssued.
  if (ready.status === 'True') ctx.events.event(cr, Resources.certificaterequests, 'Normal', 'CertificateIssued', ready.message);
  else ctx.events.event(cr, Resources.certificaterequests, 'Warning', ready.reason, ready.message);
  return done;
}

/** The CA Secret cannot sign yet: the request is Pending with the reason, and looked at again later. */
async function waitForCaSecret(ctx: Context, cr: CertificateRequest, status: CertificateRequestStatus, message: string): Promise<Outcome> {
  status.conditions = setCondition(status.conditions, { type: 'Ready', status: 'False', reason: 'Pending', message }, undefined, ctx.clock());
  await writeStatus(ctx, Resources.certificaterequests, cr, status);
  return requeueAfter(ISSUER_WAIT_MS);
}

async function signLocally(ctx: Context, cr: CertificateRequest, issuer: Issuer, status: CertificateRequestStatus): Promise<Outcome> {
  const ns = cr.metadata.namespace ?? 'default';
  const csrPem = decodeB64(cr.spec.request);
  const common = { csrPem, durationMs: durationMs(cr.spec.duration), usages: cr.spec.usages, isCA: cr.spec.isCA };
  let options: SignOptions;
  let caSecretRef = '';
  if (issuer.spec.selfSigned) {
    // A self-signed certificate is signed by its own key: the next-key Secret.
    const keySecret = cr.metadata.annotations?.[CRA.privateKeySecretName];
    const secret = keySecret ? (ctx.caches.secrets.get(ns, keySecret) ?? (await ctx.client.find<Secret>(Resources.secrets, ns, keySecret))) : undefined;
    const keyPem = decodeB64(secret?.data?.['tls.key']);
    if (!keyPem) {
      return finish(ctx, cr, status, { status: 'False', reason: 'Failed', message: `SelfSigned issuer needs the private key: annotation ${CRA.privateKeySecretName} on the request must name a Secret with tls.key` });
    }
    options = { ...common, selfSignKeyPem: keyPem, crlDistributionPoints: issuer.spec.selfSigned.crlDistributionPoints };
  } else {
    const secretNs = issuerSecretNamespace(ctx, cr.spec.issuerRef, ns);
    const secretName = issuer.spec.ca?.secretName ?? '';
    // A live read: the cache keeps managed Secrets without their PEM (cachedSecret).
    caSecretRef = `${secretNs}/${secretName}`;
    const caSecret = await ctx.client.find<Secret>(Resources.secrets, secretNs, secretName);
    const caCert = decodeB64(caSecret?.data?.['tls.crt']);
    const caKey = decodeB64(caSecret?.data?.['tls.key']);
    if (!caCert || !caKey) return waitForCaSecret(ctx, cr, status, `CA secret "${caSecretRef}" is missing tls.crt or tls.key`);
    const { crlDistributionPoints, ocspServers, issuingCertificateURLs } = issuer.spec.ca ?? {};
    options = { ...common, issuer: { certPem: caCert, keyPem: caKey }, crlDistributionPoints, ocspServers, issuingCertificateURLs };
  }
  let signed: SignedCertificate;
  try {
    signed = await signCsr(options);
  } catch (err) {
    if (err instanceof CaSecretError) {
      // The issuer's Secret, not the request: wait for it, as for a Secret missing its keys.
      return waitForCaSecret(ctx, cr, status, `CA secret "${caSecretRef}" cannot sign: ${err.message}`);
    }
    // A CSR that cannot be signed as asked (unreadable, a bad signature, names or constraints the
    // spec does not state) stays unsigned for good, as cert-manager's local issuers fail it.
    return finish(ctx, cr, status, { status: 'False', reason: 'Failed', message: `Error signing the CSR in spec.request: ${(err as Error).message}` });
  }
  status.certificate = encodeB64(signed.certificatePem);
  status.ca = encodeB64(signed.caPem);
  return finish(ctx, cr, status, { status: 'True', reason: 'Issued', message: 'Certificate fetched from issuer successfully' });
}


/** cert-manager names Orders `<request>-<hash of the order spec>`. */
export function orderName(cr: CertificateRequest, spec: Order['spec']): string {
  const hash = createHash('sha256').update(JSON.stringify(spec)).digest().readUInt32BE(0);
  return `${shortenName(cr.metadata.name)}-${hash}`;
}

async function viaOrder(ctx: Context, cr: CertificateRequest, issuer: Issuer, status: CertificateRequestStatus): Promise<Outcome> {
  const ns = cr.metadata.namespace ?? 'default';
  let csr;
  try {
    csr = parseCsr(decodeB64(cr.spec.request));
  } catch (err) {
    return finish(ctx, cr, status, { status: 'False', reason: 'Failed', message: `spec.request is not a valid CSR: ${(err as Error).message}` });
  }
  const spec: Order['spec'] = {
    request: cr.spec.request,
    issuerRef: normalizeIssuerRef(cr.spec.issuerRef),
    ...(csr.commonName ? { commonName: csr.commonName } : {}),
    dnsNames: [...new Set([...(csr.commonName ? [csr.commonName] : []), ...csr.dnsNames])].sort(),
    ...(csr.ipAddresses.length ? { ipAddresses: csr.ipAddresses } : {}),
    ...(cr.spec.duration ? { duration: cr.spec.duration } : {}),
    ...(issuer.spec.acme?.profile ? { profile: issuer.spec.acme.profile } : {}),
  };
  const name = orderName(cr, spec);
  const order = ctx.caches.orders.get(ns, name);
  if (!order) {
    // A pass on the request's own status event can come before the event of the Order it made:
    // it waits for that event (own-writes.ts) instead of sending a create the API server refuses.
    const wait = ctx.caches.orders.createdWaitMs(ns, name, ctx.clock().getTime());
    status.conditions = setCondition(status.conditions, { type: 'Ready', status: 'False', reason: 'Pending', message: `Waiting on certificate issuance from order ${ns}/${name}` }, undefined, ctx.clock());
    await writeStatus(ctx, Resources.certificaterequests, cr, status);
    // Its watch event brings the next pass; if that never comes (a missed event, the Order
    // deleted meanwhile), the wait's end does, and the create is sent again.
    if (wait !== undefined) return requeueAfter(wait);
    try {
      await createObject<Order>(ctx, Resources.orders, { metadata: { name, namespace: ns, labels: { ...(cr.metadata.labels ?? {}) }, ownerReferences: [controllerReference(Resources.certificaterequests, cr)] }, spec });
      ctx.events.event(cr, Resources.certificaterequests, 'Normal', 'OrderCreated', `Created Order resource ${ns}/${name}`);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    return done;
  }
  const state = order.status?.state;
  if (state === 'valid' && order.status?.certificate) {
    status.certificate = order.status.certificate;
    return finish(ctx, cr, status, { status: 'True', reason: 'Issued', message: 'Certificate fetched from issuer successfully' });
  }
  if (state === 'invalid' || state === 'errored' || state === 'expired') {
    return finish(ctx, cr, status, { status: 'False', reason: 'Failed', message: `Failed to wait for order resource "${name}" to become ready: order is in "${state}" state: ${order.status?.reason ?? ''}` });
  }
  status.conditions = setCondition(status.conditions, { type: 'Ready', status: 'False', reason: 'Pending', message: `Waiting on certificate issuance from order ${ns}/${name}` }, undefined, ctx.clock());
  await writeStatus(ctx, Resources.certificaterequests, cr, status);
  return done;
}
