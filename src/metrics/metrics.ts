/**
 * Prometheus metrics under cert-manager's names and labels, so existing
 * dashboards and alerts (e.g. "certificate expires in < 7d") keep working
 * after switching to certroute.
 */
import type { RequestListener, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { normalizeIssuerRef } from '../api/issuer-ref.ts';
import type { Certificate, Challenge, Condition } from '../api/types.ts';
import { objectKey } from '../base/objects.ts';

const READY_STATUSES = ['True', 'False', 'Unknown'] as const;

export class Metrics {
  readonly registry = new Registry();
  /** The label set each Challenge's series was last written with. */
  private readonly challengeSeries = new Map<string, Record<string, string>>();
  /**
   * Every Certificate's series, read from the Certificate cache at scrape time rather than kept:
   * 70,000 stored series were 17 MB of heap at 10,000 Certificates. A deleted Certificate, or
   * one whose issuerRef changed, leaves nothing behind, since only what the cache holds is read.
   */
  private readonly certificates: () => Iterable<Certificate>;
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
  /** `certificates` reads the Certificate cache at each scrape. */
  constructor(opts: { defaultMetrics?: boolean; kubeRequests?: () => Readonly<Record<string, number>>; kubeRequestsByResource?: () => ReadonlyMap<string, number>; certificates?: () => Iterable<Certificate> } = {}) {
    this.kubeRequestCounts = opts.kubeRequests ?? (() => ({}));
    this.kubeRequestCountsByResource = opts.kubeRequestsByResource ?? (() => new Map());
    this.certificates = opts.certificates ?? (() => []);
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * The exposition, in pieces: the registry's metrics, then the Certificate gauges, rendered
   * from the cache a few hundred Certificates at a time. At 10,000 Certificates those are 70,000
   * series; built whole (as label objects, then one string) they grew the heap by some 50 MB at
   * every scrape, which V8 kept for a minute or more.
   */
  async *exposition(): AsyncGenerator<string> {
    yield await this.registry.metrics();
    for (const gauge of CERTIFICATE_GAUGES) {
      let piece = `# HELP ${gauge.name} ${gauge.help}\n# TYPE ${gauge.name} gauge\n`;
      let n = 0;
      for (const cert of this.certificates()) {
        piece += gauge.samples(cert, certificateLabelText(cert));
        if (++n % CERTIFICATES_PER_PIECE === 0) {
          yield piece;
          piece = '';
        }
      }
      if (piece) yield piece;
    }
  }

  /** The whole exposition as one string (tests, and callers that need it whole). */
  async text(): Promise<string> {
    let out = '';
    for await (const piece of this.exposition()) out += piece;
    return out;
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
}

type CertificateLabels = { name: string; namespace: string; issuer_name: string; issuer_kind: string; issuer_group: string };

function certificateLabels(cert: Certificate): CertificateLabels {
  const ref = normalizeIssuerRef(cert.spec.issuerRef);
  return { name: cert.metadata.name, namespace: cert.metadata.namespace ?? '', issuer_name: ref.name, issuer_kind: ref.kind, issuer_group: ref.group };
}

/** A status timestamp in Unix seconds; 0 before the Certificate is issued, as cert-manager reports. */
const unixSeconds = (t: string | undefined): number => (t ? Date.parse(t) / 1000 : 0);

/** A sample value as the text format spells it. */
function sampleValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** A label value as the text format quotes it: backslash, double quote and newline escaped. */
const labelValue = (v: string): string => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

function certificateLabelText(cert: Certificate): string {
  const l = certificateLabels(cert);
  return `name="${labelValue(l.name)}",namespace="${labelValue(l.namespace)}",issuer_name="${labelValue(l.issuer_name)}",issuer_kind="${labelValue(l.issuer_kind)}",issuer_group="${labelValue(l.issuer_group)}"`;
}

interface CertificateGauge {
  name: string;
  help: string;
  /** The Certificate's sample lines, each ending in a newline, given its label text (`certificateLabelText`). */
  samples(cert: Certificate, labels: string): string;
}

const timestampGauge = (name: string, help: string, field: 'notAfter' | 'notBefore' | 'renewalTime'): CertificateGauge => ({
  name,
  help,
  samples: (cert, labels) => `${name}{${labels}} ${sampleValue(unixSeconds(cert.status?.[field]))}\n`,
});

/** cert-manager's Certificate gauges, one sample set per cached Certificate at each scrape. */
const CERTIFICATE_GAUGES: readonly CertificateGauge[] = [
  {
    name: 'certmanager_certificate_ready_status',
    help: 'The ready status of the certificate.',
    samples: (cert, labels) => {
      const ready = cert.status?.conditions?.find((c: Condition) => c.type === 'Ready')?.status ?? 'Unknown';
      return READY_STATUSES.map((condition) => `certmanager_certificate_ready_status{${labels},condition="${condition}"} ${condition === ready ? 1 : 0}\n`).join('');
    },
  },
  timestampGauge('certmanager_certificate_expiration_timestamp_seconds', 'The timestamp after which the certificate expires, expressed in Unix Epoch Time.', 'notAfter'),
  timestampGauge('certmanager_certificate_not_after_timestamp_seconds', 'The timestamp after which the certificate is invalid, expressed as a Unix Epoch Time.', 'notAfter'),
  timestampGauge('certmanager_certificate_not_before_timestamp_seconds', 'The timestamp before which the certificate is invalid, expressed as a Unix Epoch Time.', 'notBefore'),
  timestampGauge('certmanager_certificate_renewal_timestamp_seconds', 'The timestamp after which the certificate should be renewed, expressed in Unix Epoch Time.', 'renewalTime'),
];

/** How many Certificates' samples go into one piece of the exposition. */
const CERTIFICATES_PER_PIECE = 256;

/** Resolves when the response can take more, or is closed (a scraper that went away). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * The /metrics endpoint, streamed piece by piece (`Metrics.exposition`), waiting for the socket
 * to drain between pieces. A collector that throws answers 500 and is logged: its rejection must
 * not reach the process's unhandledRejection handler, which would end every replica on a scrape.
 * Only the registry's part can throw, and it comes first, before any byte is sent.
 */
export function metricsHandler(metrics: Pick<Metrics, 'exposition' | 'registry'>, logger: { warn(fields: { err: string }, msg: string): void }): RequestListener {
  return (_req, res) => {
    void (async () => {
      const pieces = metrics.exposition();
      let first: IteratorResult<string>;
      try {
        first = await pieces.next();
      } catch (err) {
        logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'collecting metrics failed');
        res.statusCode = 500;
        res.end('collecting metrics failed\n');
        return;
      }
      res.setHeader('content-type', metrics.registry.contentType);
      try {
        for (let piece = first; !piece.done; piece = await pieces.next()) {
          if (!res.write(piece.value)) await drained(res);
          if (res.destroyed) return void (await pieces.return(undefined));
        }
        res.end();
      } catch (err) {
        // The client went away, or the cache could not be read: the answer is cut short.
        logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'serving metrics failed');
        res.destroy();
      }
    })();
  };
}
