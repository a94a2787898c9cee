/**
 * `certroute controller`: the long-running process the Deployment (and the
 * e2e tests) run. Every replica serves the responder, health and metrics;
 * the Lease holder reconciles.
 */
import http from 'node:http';
import { hostname } from 'node:os';
import { caInjectorController } from '../cainjector/controller.ts';
import { CERT_MANAGER_CONTROLLERS } from '../controller/controllers.ts';
import { Manager } from '../controller/manager.ts';
import { validateTiming } from '../kube/leader.ts';
import { KubeClient } from '../kube/client.ts';
import { createLogger } from '../log.ts';
import { metricsHandler } from '../metrics/metrics.ts';
import { createResponder, DEFAULT_TIMEOUTS } from '../responder/server.ts';
import { createTlsAlpnResponder } from '../responder/tls-alpn.ts';
import { Http01Solver } from '../solvers/http01.ts';
import { TlsAlpn01Solver } from '../solvers/tls-alpn01.ts';
import { challengeRouteController, resolveTraefikWeb } from '../traefik/challenge-route.ts';
import { routeShim } from '../shim/controller.ts';
import { ingressRouteKind } from '../shim/ingressroute.ts';
import { DEFAULT_AUTO_CERTIFICATE_ANNOTATIONS, DEFAULT_INGRESS_CLASSES, ingressKind } from '../shim/ingress.ts';
import type { ShimDefaults } from '../shim/annotations.ts';
import { CERT_MANAGER_GROUP, type IssuerRef } from '../api/types.ts';
import { DEFAULT_GATEWAY_CLASSES, gatewayKind } from '../shim/gateway.ts';
import { gatewayChallengeRouteController } from '../shim/gateway-challenge-route.ts';
import type { ControllerConfig } from '../controller/context.ts';
import { CLOUDFLARE_API } from '../dns/cloudflare.ts';
import { systemNameservers } from '../dns/propagation.ts';
import { formatServer, parseServer } from '../dns/wire.ts';
import { booleanFlag, countFlag, durationFlag, parse, portFlag, UsageError } from './args.ts';

const HELP = `Usage: certroute controller [flags]

Runs the controller against the cluster in KUBECONFIG (or the in-cluster config).

Flags:
  --namespace=NS                  namespace certroute runs in (Lease, responder Service); default $POD_NAMESPACE or certroute
  --cluster-resource-namespace=NS where ClusterIssuer Secrets live; default the --namespace
  --responder-port=8089           HTTP-01 responder port
  --responder-header-timeout=5s   time a client has to send its request headers (cuts off slowloris)
  --tls-alpn-port=0               TLS-ALPN-01 responder port, also on the responder Service (0: no
                                  TLS-ALPN-01; the chart sets 8443)
  --metrics-port=9402             Prometheus /metrics port (0 disables)
  --health-port=9403              /livez and /readyz port (0 disables)
  --leader-elect=true|false       run leader election on a Lease (default true)
  --lease-name=certroute-controller   the Lease in --namespace that elects the leader
  --lease-duration=15s  --renew-deadline=10s  --retry-period=2s
                                  a leader that cannot renew within the renew deadline stops at once;
                                  retry period < renew deadline < lease duration (default ⅔ of it)
  --min-backoff=1h  --max-backoff=32h   failure back-off of a Certificate
  --traefik-namespace=traefik     where Traefik's Service lives
  --traefik-service=traefik       Traefik's Service, used for the self-check
  --self-check-address=URL        override: Traefik's web entrypoint, e.g. http://127.0.0.1:8000
  --self-check-websecure-address=URL   Traefik's websecure entrypoint, for redirects to https
  --wiring=route|middleware|gateway
                                  how challenges reach the responder (default route); gateway: one
                                  HTTPRoute on the annotated Gateways' HTTP listeners (needs
                                  --enable-gateway-api)
  --entrypoints=web,websecure     entrypoints of the challenge route
  --route-priority=N              priority of the challenge route (default 2^30)
  --responder-service=certroute   Service in --namespace pointing at the responder
  --shim-only                     only turn IngressRoutes into Certificates (cert-manager does the rest)
  --ingress-classes=traefik       Ingress classes Traefik serves: an annotated Ingress whose
                                  ingressClassName (else kubernetes.io/ingress.class) is one of
                                  them, or that has none, gets its Certificates
  --default-issuer-name=NAME      the issuer for an Ingress with kubernetes.io/tls-acme: "true" and no
                                  issuer annotation, as cert-manager's ingress-shim
  --default-issuer-kind=Issuer  --default-issuer-group=cert-manager.io
  --auto-certificate-annotations=kubernetes.io/tls-acme
                                  Ingress annotations that, set to "true", ask for the default issuer
  --enable-gateway-api            turn annotated Gateways (gateway.networking.k8s.io/v1) into
                                  Certificates; needs the Gateway API CRDs
  --gateway-classes=traefik       GatewayClasses Traefik serves, for --enable-gateway-api
  --shim-default-secret-name=true|false
                                  write <name>-tls into an IngressRoute's empty spec.tls.secretName
                                  (needs patch on IngressRoutes cluster-wide; false: a Warning asks the user)
  --ca-injector=true|false        fill caBundles of annotated webhooks, CRDs and APIServices, as
                                  cert-manager's cainjector (default true; off with --shim-only)
  --auto-approve=true|false       approve every CertificateRequest, as cert-manager's default approver
                                  (default true); false: an external approver such as approver-policy
                                  or cmctl approve sets Approved or Denied through the status subresource
  --workers=8                     concurrent reconciles per kind
  --ari=true|false                ACME Renewal Information (RFC 9773): renew inside the window the CA
                                  suggests, and name the replaced certificate in a renewal's order
                                  (default true; a CA without renewalInfo is unaffected)
  --ari-poll-interval=6h          the longest wait between two renewalInfo checks of a certificate
                                  (a CA's Retry-After is honoured up to it)
  --max-concurrent-orders=100     the most ACME orders open at the CA at once; more renewals wait
  --watch-timeout=DURATION        how long the API server keeps each of the caches' watches open before
                                  they resume from the last version (default a random 5m to 10m, as
                                  client-go's reflector asks)
  --poll-min=10ms                 first wait before polling a pending ACME order or challenge again;
                                  it doubles with each poll, up to 5s
  --dns01-recursive-nameservers=HOST:PORT,…
                                  nameservers for DNS-01's SOA, NS and CNAME lookups and its
                                  propagation check (default: those of /etc/resolv.conf)
  --dns01-recursive-nameservers-only
                                  check propagation through those nameservers only, not by asking
                                  each authoritative nameserver of the zone
  --dns01-check-retry-period=10s  wait between DNS-01 propagation checks
  --dns01-authoritative-port=53   port the authoritative nameservers are asked on (test beds only)
  --dns01-cloudflare-api-url=URL  Cloudflare's v4 API (default https://api.cloudflare.com/client/v4)
`;

type Dns01Settings = Pick<ControllerConfig, 'dns01RecursiveNameservers' | 'dns01RecursiveNameserversOnly' | 'dns01CheckRetryMs' | 'dns01AuthoritativePort' | 'cloudflareApiUrl'>;

/** cert-manager's DNS-01 flags, and the two certroute adds (the Cloudflare API URL, the authoritative port). */
function dns01Config(values: Record<string, string | boolean | undefined>): Dns01Settings {
  const text = (name: string) => (typeof values[name] === 'string' ? values[name] : undefined);
  const listed = (text('dns01-recursive-nameservers') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const nameservers = listed.length > 0 ? listed : systemNameservers().map(formatServer);
  for (const ns of nameservers) {
    try {
      parseServer(ns);
    } catch (err) {
      throw new UsageError(`--dns01-recursive-nameservers: ${(err as Error).message}`);
    }
  }
  const api = text('dns01-cloudflare-api-url') ?? CLOUDFLARE_API;
  if (!/^https?:\/\//.test(api)) throw new UsageError(`--dns01-cloudflare-api-url=${api}: give an http(s) URL`);
  return {
    dns01RecursiveNameservers: nameservers,
    dns01RecursiveNameserversOnly: values['dns01-recursive-nameservers-only'] === true,
    dns01CheckRetryMs: durationFlag('dns01-check-retry-period', text('dns01-check-retry-period'), '10s'),
    dns01AuthoritativePort: portFlag('dns01-authoritative-port', text('dns01-authoritative-port'), 53),
    cloudflareApiUrl: api,
  };
}

/** cert-manager's ingress-shim defaults, from its own flag names. */
function ingressShimDefaults(values: Record<string, string | boolean | undefined>): ShimDefaults {
  const text = (name: string) => (typeof values[name] === 'string' ? values[name] : undefined);
  const auto = text('auto-certificate-annotations');
  const autoAnnotations = auto === undefined ? DEFAULT_AUTO_CERTIFICATE_ANNOTATIONS : auto.split(',').map((s) => s.trim()).filter(Boolean);
  const name = text('default-issuer-name');
  if (name === undefined || name === '') return { autoAnnotations };
  const group = text('default-issuer-group') ?? CERT_MANAGER_GROUP;
  const issuer: IssuerRef = { name, kind: text('default-issuer-kind') ?? 'Issuer', ...(group === CERT_MANAGER_GROUP ? {} : { group }) };
  return { autoAnnotations, issuer };
}

/** A comma-separated list of class names; empty means none, which is refused. */
function classList(flag: string, value: string | undefined, fallback: readonly string[]): readonly string[] {
  if (value === undefined) return fallback;
  const classes = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (classes.length === 0) throw new UsageError(`--${flag} is empty: name at least one class, e.g. --${flag}=traefik`);
  return classes;
}

export async function run(argv: string[]): Promise<number> {
  // One line per flag, alike on purpose: HELP above documents each one, and a unit test holds
  // the two lists together.
  const { values } = parse(argv, {
    namespace: { type: 'string' },
    'cluster-resource-namespace': { type: 'string' },
    'responder-port': { type: 'string' },
    'responder-header-timeout': { type: 'string' },
    'tls-alpn-port': { type: 'string' },
    'metrics-port': { type: 'string' },
    'health-port': { type: 'string' },
    'leader-elect': { type: 'string' },
    'lease-name': { type: 'string' },
    'lease-duration': { type: 'string' },
    'renew-deadline': { type: 'string' },
    'retry-period': { type: 'string' },
    'min-backoff': { type: 'string' },
    'max-backoff': { type: 'string' },
    'traefik-namespace': { type: 'string' },
    'traefik-service': { type: 'string' },
    'self-check-address': { type: 'string' },
    'self-check-websecure-address': { type: 'string' },
    wiring: { type: 'string' },
    entrypoints: { type: 'string' },
    'route-priority': { type: 'string' },
    'responder-service': { type: 'string' },
    'shim-only': { type: 'boolean' },
    'ingress-classes': { type: 'string' },
    'default-issuer-name': { type: 'string' },
    'default-issuer-kind': { type: 'string' },
    'default-issuer-group': { type: 'string' },
    'auto-certificate-annotations': { type: 'string' },
    'enable-gateway-api': { type: 'boolean' },
    'gateway-classes': { type: 'string' },
    'shim-default-secret-name': { type: 'string' },
    'ca-injector': { type: 'string' },
    'auto-approve': { type: 'string' },
    workers: { type: 'string' },
    'poll-min': { type: 'string' },
    'watch-timeout': { type: 'string' },
    ari: { type: 'string' },
    'ari-poll-interval': { type: 'string' },
    'max-concurrent-orders': { type: 'string' },
    'dns01-recursive-nameservers': { type: 'string' },
    'dns01-recursive-nameservers-only': { type: 'boolean' },
    'dns01-check-retry-period': { type: 'string' },
    'dns01-authoritative-port': { type: 'string' },
    'dns01-cloudflare-api-url': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const logger = createLogger();
  // Before the first await: a SIGTERM during start-up (the informers' first list can take a
  // while) shuts down cleanly instead of killing the process with the default handler.
  const stopping = new Promise<'stop'>((resolve) => {
    process.once('SIGTERM', () => resolve('stop'));
    process.once('SIGINT', () => resolve('stop'));
  });
  // A promise nobody awaited failed: the process state is unknown, so log it and exit and let
  // the Deployment restart the pod, rather than carry on or die without a word.
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason instanceof Error ? reason.message : String(reason) }, 'unhandled promise rejection; exiting');
    process.exit(1);
  });
  const namespace = values.namespace ?? process.env.POD_NAMESPACE ?? 'certroute';
  const watchTimeout = values['watch-timeout'] === undefined ? undefined : durationFlag('watch-timeout', values['watch-timeout'], '5m');
  if (watchTimeout !== undefined && watchTimeout < 1000) throw new UsageError(`--watch-timeout=${values['watch-timeout']}: at least 1s`);
  const client = KubeClient.fromDefault({ watchTimeoutSeconds: watchTimeout === undefined ? undefined : Math.floor(watchTimeout / 1000) });
  const wiring = values.wiring ?? 'route';
  if (wiring !== 'route' && wiring !== 'middleware' && wiring !== 'gateway') throw new UsageError(`--wiring=${wiring}: use route, middleware or gateway`);
  const gatewayApi = values['enable-gateway-api'] === true;
  if (wiring === 'gateway' && !gatewayApi) throw new UsageError('--wiring=gateway attaches an HTTPRoute to Gateways: add --enable-gateway-api');
  const responderPort = portFlag('responder-port', values['responder-port'], 8089);
  const tlsAlpnPort = portFlag('tls-alpn-port', values['tls-alpn-port'], 0);
  const responderService = values['responder-service'] ?? 'certroute';
  const defaultSecretName = booleanFlag('shim-default-secret-name', values['shim-default-secret-name'], true);
  const leaderTiming = {
    leaseDurationMs: durationFlag('lease-duration', values['lease-duration'], '15s'),
    renewDeadlineMs: values['renew-deadline'] ? durationFlag('renew-deadline', values['renew-deadline'], '10s') : undefined,
    retryPeriodMs: durationFlag('retry-period', values['retry-period'], '2s'),
  };
  try {
    validateTiming(leaderTiming);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const traefikNs = values['traefik-namespace'] ?? 'traefik';
  const web = values['self-check-address']
    ? { web: values['self-check-address'], websecure: values['self-check-websecure-address'] }
    : await Promise.race([resolveTraefikWeb(client, traefikNs, values['traefik-service'] ?? 'traefik'), stopping]);
  if (web === 'stop') return 0;
  const shimOnly = values['shim-only'] === true;
  // Beside cert-manager (--shim-only) its own cainjector fills the bundles.
  const caInjector = booleanFlag('ca-injector', values['ca-injector'], true) && !shimOnly ? [caInjectorController] : [];
  const gateways = gatewayKind({ classes: classList('gateway-classes', values['gateway-classes'], DEFAULT_GATEWAY_CLASSES) });
  // Beside cert-manager (--shim-only) its own ingress-shim and gateway-shim read these kinds.
  const otherShims = shimOnly ? [] : [
    routeShim(ingressKind({ classes: classList('ingress-classes', values['ingress-classes'], DEFAULT_INGRESS_CLASSES), defaults: ingressShimDefaults(values) }), { defaultSecretName }),
    ...(gatewayApi ? [
      routeShim(gateways, { defaultSecretName }),
      gatewayChallengeRouteController({ namespace, serviceName: responderService, servicePort: responderPort, enabled: wiring === 'gateway' }, gateways),
    ] : []),
  ];
  const traefikControllers = [
    routeShim(ingressRouteKind, { defaultSecretName }),
    challengeRouteController({
      namespace,
      serviceName: responderService,
      servicePort: responderPort,
      entryPoints: (values.entrypoints ?? 'web,websecure').split(',').map((s) => s.trim()).filter(Boolean),
      priority: values['route-priority'] ? Number(values['route-priority']) : undefined,
      enabled: wiring === 'route' && !shimOnly,
    }),
  ];
  const manager = new Manager({
    client,
    logger,
    config: {
      clusterResourceNamespace: values['cluster-resource-namespace'] ?? namespace,
      minBackoffMs: durationFlag('min-backoff', values['min-backoff'], '1h'),
      maxBackoffMs: durationFlag('max-backoff', values['max-backoff'], '32h'),
      selfCheckWebAddress: web.web,
      selfCheckWebsecureAddress: web.websecure,
      pollMinMs: durationFlag('poll-min', values['poll-min'], '10ms'),
      pollMaxMs: 5_000,
      selfCheckRetryMs: 5_000,
      autoApprove: booleanFlag('auto-approve', values['auto-approve'], true),
      ari: booleanFlag('ari', values.ari, true),
      ariPollMaxMs: durationFlag('ari-poll-interval', values['ari-poll-interval'], '6h'),
      maxConcurrentOrders: countFlag('max-concurrent-orders', values['max-concurrent-orders'], 100),
      ...dns01Config(values),
      ...(tlsAlpnPort ? { tlsAlpnResponder: { namespace, service: responderService, port: tlsAlpnPort } } : {}),
    },
    leaderElection: {
      enabled: values['leader-elect'] !== 'false',
      namespace,
      name: values['lease-name'] ?? 'certroute-controller',
      identity: `${hostname()}_${process.pid}`,
      ...leaderTiming,
    },
    workers: values.workers ? Number(values.workers) : 8,
    controllers: shimOnly ? traefikControllers : [...CERT_MANAGER_CONTROLLERS, ...caInjector, ...traefikControllers, ...otherShims],
    watchOnly: shimOnly ? CERT_MANAGER_CONTROLLERS : [],
  });
  const http01 = manager.ctx.solvers.get('http01');
  if (!(http01 instanceof Http01Solver)) throw new Error('the HTTP-01 solver is not registered; the responder has nothing to serve');
  const headersTimeoutMs = durationFlag('responder-header-timeout', values['responder-header-timeout'], `${DEFAULT_TIMEOUTS.headersTimeoutMs}ms`);
  if (headersTimeoutMs <= 0) throw new UsageError('--responder-header-timeout must be more than 0');
  const responder = createResponder({
    port: responderPort,
    // node:http refuses a header timeout longer than the whole request's.
    timeouts: { headersTimeoutMs, requestTimeoutMs: Math.max(DEFAULT_TIMEOUTS.requestTimeoutMs, headersTimeoutMs) },
    lookup: (token, host) => http01.index.lookup(token, host),
    isReady: () => manager.hasSynced,
    logger,
    onRequest: (outcome) => manager.metrics.responderRequests.inc({ outcome }),
  });
  const tlsAlpn = manager.ctx.solvers.get('tlsAlpn01');
  const tlsAlpnResponder = tlsAlpnPort && tlsAlpn instanceof TlsAlpn01Solver
    ? createTlsAlpnResponder({ index: tlsAlpn.index, port: tlsAlpnPort, logger })
    : undefined;
  const servers: http.Server[] = [];
  const metricsPort = portFlag('metrics-port', values['metrics-port'], 9402);
  if (metricsPort) {
    servers.push(await listen(metricsPort, metricsHandler(manager.metrics, logger)));
  }
  const healthPort = portFlag('health-port', values['health-port'], 9403);
  if (healthPort) {
    servers.push(await listen(healthPort, (req, res) => {
      const ok = req.url === '/livez' || (req.url === '/readyz' && manager.hasSynced);
      res.statusCode = ok ? 200 : req.url === '/readyz' ? 503 : 404;
      res.end(ok ? 'ok\n' : 'not ready\n');
    }));
  }
  const bound = await responder.listen();
  await tlsAlpnResponder?.listen();
  logger.info({ responderPort: bound, tlsAlpnPort, metricsPort, healthPort, namespace, selfCheck: web.web, wiring, caInjector: caInjector.length > 0 }, 'certroute starting');
  // Bounded: behind a stalled network a watch may never close. What is still open after the
  // grace period does not keep the process alive (the Pod would sit in Terminating until killed).
  const shutdown = async () => {
    const steps = (async () => {
      await manager.stop();
      await responder.close();
      await tlsAlpnResponder?.close();
      for (const s of servers) s.close();
    })();
    await Promise.race([steps, new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS).unref())]);
    setTimeout(() => process.exit(0), 1_000).unref();
  };
  if ((await Promise.race([manager.start(), stopping])) === 'stop') {
    logger.info('shutting down during start-up');
    await shutdown();
    return 0;
  }
  logger.info({ leader: manager.isLeader }, 'caches synced');
  await stopping;
  logger.info('shutting down');
  await shutdown();
  return 0;
}

/** How long shutdown waits for the runs in flight and the watches to close. */
const SHUTDOWN_GRACE_MS = 10_000;

function listen(port: number, handler: http.RequestListener): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler);
    server.once('error', (err) => reject(new Error(`cannot listen on port ${port}: ${(err as Error).message}`, { cause: err })));
    server.listen(port, () => resolve(server));
  });
}
