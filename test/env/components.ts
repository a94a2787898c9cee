/**
 * How each component of the stack is started and how we know it is ready. Kept apart from the
 * orchestration in stack.ts so that `restart` can rebuild one component's launch spec with new
 * options (Pebble's env, Traefik's static config) while keeping its ports.
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { auditLogFile, logFile, repoRoot, stackDir, traefikDir } from './paths.ts';
import { query } from '../../src/dns/wire.ts';
import { STANDIN_ENV, standInEmail, type StandInConfig } from '../helpers/cloudflare.ts';
import { LAGGING_PRIMARY_ADDRESS, type StackDns } from './bind.ts';
import type { StackPki } from './pki.ts';
import { get } from './probe.ts';
import type { LaunchSpec } from './proc.ts';

/** Start order; `down` stops them in reverse. */
export const components = ['etcd', 'kube-apiserver', 'challtestsrv', 'bind-primary', 'bind-primary-relay', 'bind', 'cloudflare', 'pebble', 'traefik'] as const;
export type Component = (typeof components)[number];

export interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  pebble: number;
  pebbleManagement: number;
  challtestsrvDns: number;
  challtestsrvManagement: number;
  bindDns: number;
  /** The lagging zone's primary (a second named), reached at 127.0.0.2 on bindDns through a relay. */
  laggingPrimaryDns: number;
  cloudflareApi: number;
  web: number;
  websecure: number;
  traefikApi: number;
}

export interface TraefikOptions {
  /** Adds Traefik's entrypoint-level HTTP→HTTPS redirect on `web`, as many production setups do. */
  redirectWebToWebsecure?: boolean;
  /** Yaegi plugins by alias; each `dir` is copied to `plugins-local/src/<moduleName>`. */
  localPlugins?: Record<string, { moduleName: string; dir: string }>;
  /** Middlewares (e.g. `challenge@file`) attached to every router of an entrypoint. */
  entryPointMiddlewares?: { web?: string[]; websecure?: string[] };
}

export interface ApiserverOptions {
  /** Extra kube-apiserver flags, e.g. `['--watch-cache=false']` so a watch can end with 410 Gone. */
  extraArgs?: string[];
  /** The audit log (on by default: the HA tests read it); the bench turns it off, as it measures certroute, not auditing. */
  audit?: boolean;
}

export interface PebbleOptions {
  /** Extra environment, e.g. `{ PEBBLE_WFE_NONCEREJECT: '50' }`; merged over the defaults. */
  env?: Record<string, string>;
  /** Where Pebble sends HTTP-01 validations (default: Traefik's web port), e.g. a tunnel stand-in. */
  httpPort?: number;
  /** Where Pebble follows redirects to https (default: Traefik's websecure port). */
  tlsPort?: number;
  /** External account binding: required or not, and the key IDs with their base64url HMAC keys. */
  externalAccountBinding?: { required: boolean; macKeys: Record<string, string> };
  /** Where its config file goes (default `.stack/pebble`); a second Pebble needs its own. */
  dir?: string;
}

/**
 * Pebble's certificate profiles on the stack: `default`, 90 days, like Let's Encrypt's classic,
 * and `shortlived`, 160 hours, like Let's Encrypt's six-day certificates.
 *
 * Pebble gives an order that names no profile a random one of those it offers (a real CA uses
 * its default), so an issuer without spec.acme.profile gets either lifetime here. certroute
 * sends no profile unless the issuer names one, as cert-manager does: the test issuers
 * (`pebbleClusterIssuer`) name `default`, so lifetimes are what the tests expect, and a test
 * that wants the other names `shortlived`.
 */
export const PEBBLE_PROFILES = {
  default: { description: 'Like Let\'s Encrypt\'s classic profile: 90 days', validityPeriod: 90 * 24 * 3600 },
  shortlived: { description: 'Like Let\'s Encrypt\'s shortlived profile: 160 hours', validityPeriod: 160 * 3600 },
} as const;

/** Lifetime of a certificate from Pebble's default profile, in seconds. */
export const PEBBLE_VALIDITY_SECONDS = PEBBLE_PROFILES.default.validityPeriod;

export interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubectl: string;
  traefik: string;
  pebble: string;
  challtestsrv: string;
  named: string;
}

const loopback = '127.0.0.1';

export function etcdSpec(bins: Binaries, ports: Ports): LaunchSpec {
  const client = `http://${loopback}:${ports.etcdClient}`;
  const peer = `http://${loopback}:${ports.etcdPeer}`;
  const dataDir = join(stackDir, 'etcd');
  rmSync(dataDir, { recursive: true, force: true });
  return {
    command: bins.etcd,
    args: [
      '--name=stack', `--data-dir=${dataDir}`,
      `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=stack=${peer}`,
      // Test data is disposable; skipping fsync makes every API write several times faster.
      '--unsafe-no-fsync', '--log-level=warn',
    ],
    env: {},
    cwd: stackDir,
  };
}

/**
 * What the kube-apiserver audits, at Metadata level (who, what, when; never a Secret's data):
 * writes to certroute's kinds, Traefik's, Leases, Secrets and Events. The HA test reads it to
 * show that two replicas never wrote as leader at the same time.
 */
const auditPolicy = {
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    {
      level: 'Metadata',
      verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'],
      resources: [
        { group: 'cert-manager.io' }, { group: 'acme.cert-manager.io' }, { group: 'traefik.io' },
        { group: 'coordination.k8s.io', resources: ['leases'] },
        { group: '', resources: ['secrets', 'events'] }, { group: 'events.k8s.io' },
      ],
    },
    { level: 'None' },
  ],
};

export function apiserverSpec(bins: Binaries, ports: Ports, pki: StackPki, options: ApiserverOptions = {}): LaunchSpec {
  const policyFile = join(stackDir, 'audit-policy.yaml');
  writeFileSync(policyFile, stringify(auditPolicy));
  return {
    command: bins.kubeApiserver,
    args: [
      `--etcd-servers=http://${loopback}:${ports.etcdClient}`,
      `--bind-address=${loopback}`, `--advertise-address=${loopback}`, `--secure-port=${ports.apiserver}`,
      `--tls-cert-file=${pki.apiserverCert}`, `--tls-private-key-file=${pki.apiserverKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      // RFC 2544's benchmarking range, which no real network uses (the cluster tier's too).
      '--service-cluster-ip-range=198.19.0.0/24',
      // No controller-manager creates `default` ServiceAccounts, so this plugin would reject Pods.
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      `--cert-dir=${join(stackDir, 'apiserver-certs')}`,
      '--profiling=false',
      ...(options.audit === false ? [] : [`--audit-policy-file=${policyFile}`, `--audit-log-path=${auditLogFile}`, '--audit-log-format=json', '--audit-log-maxsize=200']),
      ...(options.extraArgs ?? []),
    ],
    env: {},
    cwd: stackDir,
  };
}

export function challtestsrvSpec(
  bins: Pick<Binaries, 'challtestsrv'>, ports: Pick<Ports, 'challtestsrvDns' | 'challtestsrvManagement'>, cwd = stackDir,
): LaunchSpec {
  return {
    command: bins.challtestsrv,
    args: [
      // Pebble asks for AAAA first; an empty default leaves every name on 127.0.0.1.
      '-defaultIPv4', loopback, '-defaultIPv6', '',
      // Only its DNS server and management API; an empty address turns a listener off.
      '-http01', '', '-https01', '', '-tlsalpn01', '', '-doh', '',
      '-dnsserver', `${loopback}:${ports.challtestsrvDns}`,
      '-management', `${loopback}:${ports.challtestsrvManagement}`,
    ],
    env: {},
    cwd,
  };
}

/** The relay that puts the lagging zone's primary at 127.0.0.2 on BIND's port (see dns-relay.ts). */
export function dnsRelaySpec(ports: Ports): LaunchSpec {
  return {
    command: process.execPath,
    args: [join(repoRoot, 'test', 'env', 'dns-relay.ts'), `${LAGGING_PRIMARY_ADDRESS}:${ports.bindDns}`, `${loopback}:${ports.laggingPrimaryDns}`],
    env: {},
    cwd: stackDir,
  };
}

/** The Cloudflare API stand-in, a Node process, applying its changes to BIND with the stack's key. */
export function cloudflareSpec(ports: Ports, dns: StackDns): LaunchSpec {
  const config: StandInConfig = {
    port: ports.cloudflareApi,
    zone: dns.cloudflareZone,
    token: dns.cloudflareToken,
    email: standInEmail(dns.cloudflareZone),
    bind: { address: `${loopback}:${ports.bindDns}`, tsigKeyName: dns.tsigKeyName, tsigAlgorithm: dns.tsigAlgorithm, tsigSecret: dns.tsigSecret },
  };
  return {
    command: process.execPath,
    args: [join(repoRoot, 'test', 'helpers', 'cloudflare.ts')],
    env: { [STANDIN_ENV]: JSON.stringify(config) },
    cwd: stackDir,
  };
}

export const pebbleDefaultEnv: Record<string, string> = {
  PEBBLE_VA_NOSLEEP: '1',
  PEBBLE_WFE_NONCEREJECT: '0',
  // Fresh authorizations for every order, so each test sees a real validation.
  PEBBLE_AUTHZREUSE: '0',
};

export function pebbleSpec(bins: Binaries, ports: Ports, pki: StackPki, options: PebbleOptions = {}): LaunchSpec {
  const dir = options.dir ?? join(stackDir, 'pebble');
  mkdirSync(dir, { recursive: true });
  const config = {
    pebble: {
      listenAddress: `${loopback}:${ports.pebble}`,
      managementListenAddress: `${loopback}:${ports.pebbleManagement}`,
      certificate: pki.pebbleCert,
      privateKey: pki.pebbleKey,
      // Validation must travel Pebble → Traefik → route → responder, as it would in production.
      httpPort: options.httpPort ?? ports.web,
      tlsPort: options.tlsPort ?? ports.websecure,
      profiles: PEBBLE_PROFILES,
      ocspResponderURL: '',
      externalAccountBindingRequired: options.externalAccountBinding?.required ?? false,
      ...(options.externalAccountBinding ? { externalAccountMACKeys: options.externalAccountBinding.macKeys } : {}),
      domainBlocklist: ['blocked.test'],
    },
  };
  const configFile = join(dir, 'pebble-config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n');
  return {
    command: bins.pebble,
    // BIND answers for the DNS-01 zones and forwards every other name to challtestsrv.
    args: ['-config', configFile, '-dnsserver', `${loopback}:${ports.bindDns}`],
    env: { ...pebbleDefaultEnv, ...options.env },
    cwd: dir,
  };
}

function traefikStaticConfig(ports: Ports, options: TraefikOptions): unknown {
  const entryPoint = (port: number, middlewares: string[] | undefined, extra: Record<string, unknown> = {}) => {
    const http = { ...extra, ...(middlewares?.length ? { middlewares } : {}) };
    // Traefik refuses an empty `http:` element.
    return { address: `${loopback}:${port}`, ...(Object.keys(http).length ? { http } : {}) };
  };
  const webExtra = options.redirectWebToWebsecure
    ? { redirections: { entryPoint: { to: 'websecure', scheme: 'https', permanent: true } } }
    : {};
  const plugins = Object.entries(options.localPlugins ?? {});
  return {
    global: { checkNewVersion: false, sendAnonymousUsage: false },
    entryPoints: {
      web: entryPoint(ports.web, options.entryPointMiddlewares?.web, webExtra),
      // TLS on by default, as the official Helm chart configures websecure.
      websecure: entryPoint(ports.websecure, options.entryPointMiddlewares?.websecure, { tls: {} }),
      traefik: { address: `${loopback}:${ports.traefikApi}` },
    },
    api: { insecure: true, dashboard: false },
    ping: {},
    log: { level: 'INFO', format: 'common', noColor: true },
    accessLog: { filePath: logFile('traefik-access') },
    providers: {
      // Traefik's default is 2 s; tests wait on every config change, so keep it short.
      providersThrottleDuration: '100ms',
      kubernetesCRD: { allowCrossNamespace: true, allowExternalNameServices: true, allowEmptyServices: true },
      // Plain Ingresses, and Gateways of the GatewayClass `traefik` (the stack creates it), as
      // Traefik's Helm chart enables them. Gateway backends cannot be ExternalName Services: see
      // WIRING.md for how a local process is exposed to them.
      kubernetesIngress: { allowExternalNameServices: true, allowEmptyServices: true },
      kubernetesGateway: {},
      file: { directory: join(traefikDir, 'dynamic'), watch: true },
    },
    ...(plugins.length
      ? { experimental: { localPlugins: Object.fromEntries(plugins.map(([alias, p]) => [alias, { moduleName: p.moduleName }])) } }
      : {}),
  };
}

/** Writes Traefik's static config and plugin sources; Traefik reads plugins relative to its cwd. */
export function traefikSpec(bins: Binaries, ports: Ports, kubeconfig: string, options: TraefikOptions = {}): LaunchSpec {
  mkdirSync(join(traefikDir, 'dynamic'), { recursive: true });
  const pluginRoot = join(traefikDir, 'plugins-local');
  rmSync(pluginRoot, { recursive: true, force: true });
  rmSync(join(traefikDir, 'plugins-storage'), { recursive: true, force: true });
  for (const plugin of Object.values(options.localPlugins ?? {})) {
    cpSync(plugin.dir, join(pluginRoot, 'src', plugin.moduleName), { recursive: true });
  }
  const configFile = join(traefikDir, 'traefik.yml');
  writeFileSync(configFile, stringify(traefikStaticConfig(ports, options)));
  return {
    command: bins.traefik,
    args: [`--configFile=${configFile}`],
    env: { KUBECONFIG: kubeconfig },
    cwd: traefikDir,
  };
}

/** A readiness check per component: the endpoint a client of that component would use first. */
export function readiness(component: Component, ports: Ports, pki: StackPki, dns: StackDns): () => Promise<boolean> {
  const ca = () => readFileSync(pki.caCert);
  switch (component) {
    case 'etcd':
      return async () => (await get(`http://${loopback}:${ports.etcdClient}/health`)).body.includes('"health":"true"');
    case 'kube-apiserver':
      return async () => {
        const tls = { ca: ca(), cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) };
        return (await get(`https://${loopback}:${ports.apiserver}/readyz`, tls)).status === 200;
      };
    case 'challtestsrv':
      // Any HTTP answer means the management listener, started after DNS, is up.
      return async () => (await get(`http://${loopback}:${ports.challtestsrvManagement}/`)).status > 0;
    case 'bind-primary':
      return async () => (await query({ host: loopback, port: ports.laggingPrimaryDns }, dns.laggingZone, 'SOA', { recursive: false, timeoutMs: 1000 })).rcode === 'NOERROR';
    case 'bind-primary-relay':
      return async () => (await query({ host: LAGGING_PRIMARY_ADDRESS, port: ports.bindDns }, dns.laggingZone, 'SOA', { recursive: false, timeoutMs: 1000 })).rcode === 'NOERROR';
    case 'bind':
      // Ready once its copy of the lagging zone has come over from the primary, too.
      return async () => {
        const server = { host: loopback, port: ports.bindDns };
        const answers = await Promise.all([dns.zone, dns.laggingZone].map((zone) => query(server, zone, 'SOA', { recursive: false, timeoutMs: 1000 })));
        return answers.every((a) => a.rcode === 'NOERROR' && (a.answers ?? []).length > 0);
      };
    case 'cloudflare':
      // The API answers 403 without credentials: up, and checking them.
      return async () => (await get(`http://${loopback}:${ports.cloudflareApi}/client/v4/zones`)).status === 403;
    case 'pebble':
      return async () => {
        const base = `https://${loopback}`;
        const dir = await get(`${base}:${ports.pebble}/dir`, { ca: ca() });
        const root = await get(`${base}:${ports.pebbleManagement}/roots/0`, { ca: ca() });
        return dir.status === 200 && root.status === 200;
      };
    case 'traefik':
      return async () => (await get(`http://${loopback}:${ports.traefikApi}/ping`)).status === 200;
  }
}
