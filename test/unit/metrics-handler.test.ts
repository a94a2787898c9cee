/**
 * The /metrics endpoint as `certroute controller` serves it: a collector that throws during a
 * scrape gives that scrape a 500 and a warning, and the endpoint keeps serving the next one. The
 * collector here is the registry's own (the Kubernetes request tally read at scrape time), made
 * to throw; the server is a real one on a loopback port.
 */
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Certificate } from '../../src/api/types.ts';
import { Metrics, metricsHandler } from '../../src/metrics/metrics.ts';

interface Scrape {
  status: number;
  type: string | undefined;
  body: string;
}

function scrape(port: number): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    }).on('error', reject);
  });
}

test('a collector that throws gives that scrape a 500 and a warning, and the next scrape is served', async (t) => {
  let broken = true;
  const metrics = new Metrics({
    defaultMetrics: false,
    kubeRequests: () => {
      if (broken) throw new Error('the request tally is unavailable');
      return { get: 3 };
    },
  });
  const warnings: Array<{ fields: { err: string }; msg: string }> = [];
  const logger = { warn: (fields: { err: string }, msg: string) => void warnings.push({ fields, msg }) };
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  const server = http.createServer(metricsHandler(metrics, logger));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    process.off('unhandledRejection', onRejection);
    server.close();
  });
  const { port } = server.address() as AddressInfo;

  const failed = await scrape(port);
  t.is(failed.status, 500);
  t.is(failed.body, 'collecting metrics failed\n', 'a constant body: what the collector said stays in the log');
  t.deepEqual(warnings, [{ fields: { err: 'the request tally is unavailable' }, msg: 'collecting metrics failed' }]);

  broken = false;
  const served = await scrape(port);
  t.is(served.status, 200, 'the endpoint still serves');
  t.is(served.type, metrics.registry.contentType);
  t.regex(served.body, /^certroute_kube_requests_total\{verb="get"\} 3$/m);
  t.deepEqual(rejections, [], 'no rejection escaped the handler');
});

test('10,000 Certificates are served whole through the stream, 50,000 Certificate samples and the registry’s own', async (t) => {
  const certs = Array.from({ length: 10_000 }, (_, i) => ({
    metadata: { name: `web-${i}`, namespace: 'apps' },
    spec: { secretName: `web-${i}-tls`, issuerRef: { name: 'le', kind: 'ClusterIssuer' } },
    status: { conditions: [{ type: 'Ready', status: 'True' }], notAfter: '2030-01-01T00:00:00Z' },
  })) as unknown as Certificate[];
  const metrics = new Metrics({ defaultMetrics: false, kubeRequests: () => ({ get: 1 }), certificates: () => certs });
  const server = http.createServer(metricsHandler(metrics, { warn: () => undefined }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const served = await scrape((server.address() as AddressInfo).port);
  t.is(served.status, 200);
  const samples = served.body.split('\n').filter((l) => l.startsWith('certmanager_certificate_'));
  t.is(samples.length, 10_000 * 7);
  t.true(samples.includes('certmanager_certificate_expiration_timestamp_seconds{name="web-9999",namespace="apps",issuer_name="le",issuer_kind="ClusterIssuer",issuer_group="cert-manager.io"} 1893456000'));
  t.regex(served.body, /^certroute_kube_requests_total\{verb="get"\} 1$/m);
});
