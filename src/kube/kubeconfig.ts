/**
 * Where the API server is and how to authenticate to it, read from a
 * kubeconfig or from the pod's service account.
 *
 * Why not client-node's KubeConfig: importing it loads the whole generated
 * API (`config.js` imports `gen/index.js`), about 80 MB of resident memory
 * in a process that never calls a generated method (measured in
 * docs/ARCHITECTURE.md, "Memory"). The credentials a controller meets in
 * practice (the pod's rotating service-account token, a client certificate,
 * a bearer token or token file) are read here. A kubeconfig whose user runs
 * an `exec` plugin or an `auth-provider` (cloud CLIs, OIDC) is handed to
 * client-node, imported only then, so those keep the library's exact
 * semantics and only they pay for it.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import type https from 'node:https';
import { parse } from 'yaml';

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';
/** How long a token file is trusted before it is read again; kubelet rotates it well before expiry. */
const TOKEN_FILE_TTL_MS = 60_000;

export interface TlsOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** Authentication headers, asked for per request so rotated tokens are picked up. */
export type HeaderSource = () => Promise<Record<string, string>>;

export interface ClusterAccess {
  server: string;
  /** The current context's namespace, where CLI commands default to. */
  namespace?: string;
  tls: TlsOptions;
  headers: HeaderSource;
  /**
   * Credentials only client-node can produce (exec plugins, auth providers):
   * TLS material from there replaces `tls` once, before the first request.
   */
  delegated?: () => Promise<TlsOptions>;
}

interface NamedCluster { name: string; cluster?: Record<string, unknown> }
interface NamedUser { name: string; user?: Record<string, unknown> }
interface NamedContext { name: string; context?: { cluster?: string; user?: string; namespace?: string } }
interface KubeconfigFile {
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: NamedContext[];
  'current-context'?: string;
}

/** A file's entries, with relative paths in them resolved against the file's directory. */
interface Loaded { doc: KubeconfigFile; dir: string }

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function readDoc(file: string): Loaded {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`kubeconfig ${file}: cannot read it (${(err as Error).message}); fix the file or point KUBECONFIG elsewhere`, { cause: err });
  }
  if (doc === null || typeof doc !== 'object') throw new Error(`kubeconfig ${file}: not a YAML mapping; fix the file or point KUBECONFIG elsewhere`);
  return { doc: doc as KubeconfigFile, dir: dirname(file) };
}

/** Inline `*-data` (base64) wins over the file path, as kubectl does. */
function material(entry: Record<string, unknown>, key: string, dir: string): Buffer | undefined {
  const data = str(entry[`${key}-data`]);
  if (data) return Buffer.from(data, 'base64');
  const file = str(entry[key]);
  return file ? readFileSync(isAbsolute(file) ? file : join(dir, file)) : undefined;
}

function tokenFromFile(file: string): HeaderSource {
  let cached: { token: string; at: number } | undefined;
  return async () => {
    if (!cached || Date.now() - cached.at > TOKEN_FILE_TTL_MS) cached = { token: readFileSync(file, 'utf8').trim(), at: Date.now() };
    return { authorization: `Bearer ${cached.token}` };
  };
}

const noHeaders: HeaderSource = async () => ({});

/**
 * Several files (KUBECONFIG=a:b) merge as kubectl merges them: the first
 * file that names an entry, or sets current-context, wins.
 */
export function fromFiles(files: string[]): ClusterAccess {
  const loaded = files.map(readDoc);
  const first = <T extends { name: string }>(pick: (d: KubeconfigFile) => T[] | undefined, name: string | undefined): [T, string] | undefined => {
    for (const { doc, dir } of loaded) {
      const hit = pick(doc)?.find((e) => e.name === name);
      if (hit) return [hit, dir];
    }
    return undefined;
  };
  const where = files.join(delimiter);
  const current = loaded.map((l) => str(l.doc['current-context'])).find(Boolean);
  if (!current) throw new Error(`kubeconfig ${where}: no current-context; run 'kubectl config use-context NAME'`);
  const ctx = first((d) => d.contexts, current)?.[0].context;
  if (!ctx) throw new Error(`kubeconfig ${where}: current-context "${current}" is not defined; run 'kubectl config use-context NAME'`);
  const clusterHit = first((d) => d.clusters, ctx.cluster);
  const server = str(clusterHit?.[0].cluster?.server);
  if (!clusterHit?.[0].cluster || !server) throw new Error(`kubeconfig ${where}: context "${current}" names cluster "${ctx.cluster ?? ''}", which has no server`);
  const [{ cluster }, clusterDir] = clusterHit as [{ cluster: Record<string, unknown> }, string];
  const userHit = first((d) => d.users, ctx.user);
  const user = userHit?.[0].user ?? {};
  const userDir = userHit?.[1] ?? clusterDir;
  const tls: TlsOptions = {
    ca: material(cluster, 'certificate-authority', clusterDir),
    cert: material(user, 'client-certificate', userDir),
    key: material(user, 'client-key', userDir),
    rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
    servername: str(cluster['tls-server-name']),
  };
  const access: ClusterAccess = { server: server.replace(/\/$/, ''), namespace: ctx.namespace, tls, headers: noHeaders };
  if (user.exec !== undefined || user['auth-provider'] !== undefined) return delegate(access, files);
  const token = str(user.token);
  const tokenFile = str(user.tokenFile);
  const username = str(user.username);
  if (token) access.headers = async () => ({ authorization: `Bearer ${token}` });
  else if (tokenFile) access.headers = tokenFromFile(isAbsolute(tokenFile) ? tokenFile : join(userDir, tokenFile));
  else if (username) {
    const basic = Buffer.from(`${username}:${str(user.password) ?? ''}`).toString('base64');
    access.headers = async () => ({ authorization: `Basic ${basic}` });
  }
  return access;
}

/** The pod's own service account, as client-go's rest.InClusterConfig reads it. */
export function inCluster(): ClusterAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('no kubeconfig and not in a pod (KUBERNETES_SERVICE_HOST unset): set KUBECONFIG');
  let namespace: string | undefined;
  try {
    namespace = readFileSync(`${SERVICE_ACCOUNT}/namespace`, 'utf8').trim();
  } catch {
    // optional: the CLI then defaults to "default"
  }
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    namespace,
    tls: { ca: readFileSync(`${SERVICE_ACCOUNT}/ca.crt`), rejectUnauthorized: true },
    headers: tokenFromFile(`${SERVICE_ACCOUNT}/token`),
  };
}

/** KUBECONFIG, then ~/.kube/config, then the pod's service account: client-node's loadFromDefault order. */
export function fromDefault(): ClusterAccess {
  const env = process.env.KUBECONFIG?.split(delimiter).filter(Boolean) ?? [];
  if (env.length > 0) return fromFiles(env);
  const home = join(homedir(), '.kube', 'config');
  try {
    readFileSync(home);
  } catch {
    return inCluster();
  }
  return fromFiles([home]);
}

/**
 * Exec plugins and auth providers: client-node runs them, refreshes their
 * tokens and caches them. Imported lazily so nobody else loads it.
 */
function delegate(access: ClusterAccess, files: string[]): ClusterAccess {
  let kc: Promise<{ applyToHTTPSOptions(o: https.RequestOptions): Promise<void> }> | undefined;
  const config = () => {
    kc ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      const c = new KubeConfig();
      // Several files only ever come from KUBECONFIG, which loadFromDefault merges the same way.
      if (files.length === 1) c.loadFromFile(files[0]!);
      else c.loadFromDefault();
      return c;
    });
    return kc;
  };
  const applied = async (): Promise<https.RequestOptions> => {
    const opts: https.RequestOptions = {};
    await (await config()).applyToHTTPSOptions(opts);
    return opts;
  };
  return {
    ...access,
    headers: async () => {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries((await applied()).headers ?? {})) if (typeof v === 'string') out[k.toLowerCase()] = v;
      return out;
    },
    delegated: async () => {
      const o = await applied();
      const buf = (v: unknown): Buffer | undefined => (typeof v === 'string' || Buffer.isBuffer(v) ? Buffer.from(v) : undefined);
      return { ...access.tls, ca: buf(o.ca) ?? access.tls.ca, cert: buf(o.cert) ?? access.tls.cert, key: buf(o.key) ?? access.tls.key };
    },
  };
}
