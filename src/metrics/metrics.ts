/**
 * Prometheus metrics under cert-manager's names and labels, so existing
 * dashboards and alerts (e.g. "certificate expires in < 7d") keep working
 * after switching to certroute.
 */
import type { RequestListener } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { normalizeIssuerRef } from '../api/issuer-ref.ts';
import type { Certificate, Challenge, Condition } from '../api/types.ts';
import { objectKey } from '../base/objects.ts';

const READY_STATUSES = ['True', 'False', 'Unknown'] as const;

export class Metrics {
  readonly registry = new Registry();
  /** The label set each Certificate's series were last written with. */
  private readonly certSeries = new Map<string, Record<string, string>>();
  /** The label set each Challenge's series was last written with. */
  private readonly challengeSeries = new Map<string, Record<string, string>>();
  readonly certReady = new Gauge({ name: 'certmanager_certificate_ready_status', help: 'The ready status of the certificate.', labelNames: ['name', 'namespace', 'condition', 'issuer_name', 'issuer_kind', 'issuer_group'], registers: [this.registry] });
  readonly certExpiration = new Gauge({ name: 'certmanager_certificate_expiration_timestamp_seconds', help: 'The timestamp after which the certificate expires, expressed in Unix Epoch Time.', labelNames: ['name', 'namespace', 'issuer_name', 'issuer_kind', 'issuer_group'], registers: [this.registry] });
  readonly certNotAfter = new Gauge({ name: 'certmanager_certificate_not_after_timestamp_seconds', help: 'The timestamp after which the certificate is invalid, expressed as a Unix Epoch Time.', labelNames: ['name', 'namespace', 'issuer_name', 'issuer_kind', 'issuer_group'], registers: [this.registry] });
  readonly certNotBefore = new Gauge({ name: 'certmanager_certificate_not_before_timestamp_seconds', help: 'The timestamp before which the certificate is invalid, expressed as a Unix Epoch Time.', labelNames: ['name', 'namespace', 'issuer_name', 'issuer_kind', 'issuer_group'], registers: [this.registry] });
  readonly certRenewal = new Gauge({ name: 'certmanager_certificate_renewal_timestamp_seconds', help: 'The timestamp after which the certificate should be renewed, expressed in Unix Epoch Time.', labelNames: ['name', 'namespace', 'issuer_name', 'issuer_kind', 'issuer_group'], registers: [this.registry] });
  readonly challengeStatus = new Gauge({ name: 'certmanager_certificate_challenge_status', help: 'The status of certificate challenges.', labelNames: ['status', 'domain', 'reason', 'processing', 'id', 'type'], registers: [this.registry] });
  readonly clusterIssuerReady = new Gauge({ name: 'certmanager_clusterissuer_ready_status', help: 'The ready status of the cluster issuer.', labelNames: ['name', 'condition'], registers: [this.registry] });
  readonly issuerReady = new Gauge({ name: 'certmanager_issuer_ready_status', help: 'The ready status of the issuer.', labelNames: ['name', 'namespace', 'condition'], registers: [this.registry] });
  readonly acmeRequests = new Counter({ name: 'certmanager_http_acme_client_request_count', help: 'The number of requests made by the ACME client.', labelNames: ['scheme', 'host', 'action', 'method', 'status'], registers: [this.registry] });
  readonly acmeDuration = new Histogram({ name: 'certmanager_http_acme_client_request_duration_seconds', help: 'The HTTP request latencies in seconds for the ACME client.', labelNames: ['scheme', 'host', 'action', 'method', 'status'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry] });
  readonly syncCount = new Counter({ name: 'certmanager_controller_sync_call_count', help: 'The number of sync() calls made by a controller.', labelNames: ['controller'], registers: [this.registry] });
  readonly syncErrors = new Counter({ name: 'certmanager_controller_sync_error_count', help: 'The number of errors encountered during controller sync().', labelNames: ['controller'], registers: [this.registry] });
  readonly responderRequests = new Counter({ name: 'certroute_responder_requests_total', help: 'HTTP-01 responder requests by outcome.', labelNames: ['outcome'], registers: [this.registry] });
  /** Read at scrape time from the client's per-verb tally, so the benchmark can diff two scrapes. */
  private readonly kubeRequestCounts: () => Readonly<Record<string, number>>;
  readonly kubeRequests = new Counter({
    name: 'certroute_kube_requests_total',
    help: 'Kubernetes API requests made by the controller, by verb (informer list calls included; watches are not).',
    labelNames: ['verb'],
    registers: [this.registry],
    collect: () => {
      this.kubeRequests.reset();
      for (const [verb, n] of Object.entries(this.kubeRequestCounts())) this.kubeRequests.inc({ verb }, n);
    },
  });

  private readonly kubeRequestCountsByResource: () => ReadonlyMap<string, number>;
  readonly kubeRequestsByResource = new Counter({
    name: 'certroute_kube_requests_by_resource_total',
    help: 'Kubernetes API requests made by the controller, by verb and resource (subresource included), to see which writes an issuance costs.',
    labelNames: ['verb', 'resource'],
    registers: [this.registry],
    collect: () => {
      this.kubeRequestsByResource.reset();
      for (const [key, n] of this.kubeRequestCountsByResource()) {
        const [verb = '', resource = ''] = key.split(' ');
        this.kubeRequestsByResource.inc({ verb, resource }, n);
      }
    },
  });

  /** `kubeRequests` and `kubeRequestsByResource` read the Kubernetes client's tallies of requests. */
  constructor(opts: { defaultMetrics?: boolean; kubeRequests?: () => Readonly<Record<string, number>>; kubeRequestsByResource?: () => ReadonlyMap<string, number> } = {}) {
    this.kubeRequestCounts = opts.kubeRequests ?? (() => ({}));
    this.kubeRequestCountsByResource = opts.kubeRequestsByResource ?? (() => new Map());
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  observeCertificate(cert: Certificate): void {
    const labels = this.certLabels(cert);
    const key = objectKey(cert);
    const previous = this.certSeries.get(key);
    // A changed issuerRef changes the label set: drop the old series, or
    // `sum by (name)` would count this Certificate twice.
    if (previous && JSON.stringify(previous) !== JSON.stringify(labels)) this.removeSeries(previous);
    this.certSeries.set(key, labels);
    const ready = cert.status?.conditions?.find((c: Condition) => c.type === 'Ready')?.status ?? 'Unknown';
    for (const condition of READY_STATUSES) this.certReady.set({ ...labels, condition }, condition === ready ? 1 : 0);
    const secs = (t: string | undefined): number => (t ? Date.parse(t) / 1000 : 0);
    this.certExpiration.set(labels, secs(cert.status?.notAfter));
    this.certNotAfter.set(labels, secs(cert.status?.notAfter));
    this.certNotBefore.set(labels, secs(cert.status?.notBefore));
    this.certRenewal.set(labels, secs(cert.status?.renewalTime));
  }

  /**
   * One series per Challenge, carrying its current state: the series of an
   * earlier state is dropped, or a finished challenge would still count as
   * pending (and every issuance would leave series behind).
   */
  observeChallenge(ch: Challenge): void {
    const key = objectKey(ch);
    const labels = { status: ch.status?.state ?? '', domain: ch.spec.dnsName, reason: (ch.status?.reason ?? '').slice(0, 64), processing: String(ch.status?.processing ?? false), id: ch.metadata.name, type: ch.spec.type };
    const previous = this.challengeSeries.get(key);
    if (previous && JSON.stringify(previous) !== JSON.stringify(labels)) this.challengeStatus.remove(previous);
    this.challengeSeries.set(key, labels);
    this.challengeStatus.set(labels, 1);
  }

  /** A deleted Challenge's series goes with it. */
  forgetChallenge(ch: Challenge): void {
    const key = objectKey(ch);
    const previous = this.challengeSeries.get(key);
    if (previous) this.challengeStatus.remove(previous);
    this.challengeSeries.delete(key);
  }

  /** Called with the deleted object, whose labels are exactly the series to drop. */
  forgetCertificate(cert: Certificate): void {
    const labels = this.certLabels(cert);
    const key = objectKey(cert);
    this.removeSeries(this.certSeries.get(key) ?? labels);
    this.certSeries.delete(key);
  }

  private removeSeries(labels: Record<string, string>): void {
    for (const condition of READY_STATUSES) this.certReady.remove({ ...labels, condition });
    for (const g of [this.certExpiration, this.certNotAfter, this.certNotBefore, this.certRenewal]) g.remove(labels);
  }

  observeIssuer(kind: 'Issuer' | 'ClusterIssuer', namespace: string | undefined, name: string, conditions: readonly Condition[] | undefined): void {
    const ready = conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
    for (const condition of READY_STATUSES) {
      if (kind === 'ClusterIssuer') this.clusterIssuerReady.set({ name, condition }, condition === ready ? 1 : 0);
      else this.issuerReady.set({ name, namespace: namespace ?? '', condition }, condition === ready ? 1 : 0);
    }
  }

  /** A deleted Issuer's series go with it, or every Issuer ever created would stay exported. */
  forgetIssuer(kind: 'Issuer' | 'ClusterIssuer', namespace: string | undefined, name: string): void {
    for (const condition of READY_STATUSES) {
      if (kind === 'ClusterIssuer') this.clusterIssuerReady.remove({ name, condition });
      else this.issuerReady.remove({ name, namespace: namespace ?? '', condition });
    }
  }

  private certLabels(cert: Certificate): Record<string, string> {
    const ref = normalizeIssuerRef(cert.spec.issuerRef);
    return {
      name: cert.metadata.name,
      namespace: cert.metadata.namespace ?? '',
      issuer_name: ref.name,
      issuer_kind: ref.kind,
      issuer_group: ref.group,
    };
  }
}

/**
 * The /metrics endpoint. A collector that throws answers 500 and is logged: its rejection must not
 * reach the process's unhandledRejection handler, which would end every replica on a scrape.
 */
export function metricsHandler(registry: Registry, logger: { warn(fields: { err: string }, msg: string): void }): RequestListener {
  return (_req, res) => {
    registry.metrics().then(
      (text) => {
        res.setHeader('content-type', registry.contentType);
        res.end(text);
      },
      (err: unknown) => {
        logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'collecting metrics failed');
        res.statusCode = 500;
        res.end('collecting metrics failed\n');
      },
    );
  };
}
