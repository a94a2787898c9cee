/**
 * The stack's Go programs come from `tools/build.sh`, which builds each one once from its wrapper
 * module and caches it by version outside the repo. A cold build takes minutes, so we say so when
 * one is slow instead of sitting silent.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildScript, repoRoot } from './paths.ts';
import { StackError } from './proc.ts';

export type GoProgram =
  | 'kube-apiserver' | 'kubectl' | 'etcd' | 'traefik' | 'helm' | 'pebble' | 'pebble-challtestsrv'
  // the single-node cluster's
  | 'kubelet' | 'kube-controller-manager' | 'kube-scheduler' | 'kube-proxy' | 'coredns' | 'backend' | 'pause';

const resolved = new Map<GoProgram, Promise<string>>();

function runBuild(name: GoProgram, log: (line: string) => void): Promise<string> {
  return new Promise((resolvePath, reject) => {
    const slow = setTimeout(() => log(`building ${name} from its Go module (first run only; this takes minutes)…`), 3000);
    execFile('bash', [buildScript, name], { maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      clearTimeout(slow);
      const lastLine = stderr.trim().split('\n').filter(Boolean).at(-1);
      if (error) {
        reject(new StackError(lastLine ?? `tools/build.sh ${name} failed (exit ${String(error.code)})`, { cause: error }));
        return;
      }
      const path = stdout.trim().split('\n').at(-1) ?? '';
      if (lastLine?.startsWith('built ')) log(lastLine);
      resolvePath(path);
    });
  });
}

/** Path of a stack binary, building it on first use. Concurrent callers share one build. */
export function binary(name: GoProgram, log: (line: string) => void = (line) => console.error(line)): Promise<string> {
  let path = resolved.get(name);
  if (!path) {
    path = runBuild(name, log);
    path.catch(() => resolved.delete(name));
    resolved.set(name, path);
  }
  return path;
}

/** Builds several programs one after another: parallel Go builds on a small machine only thrash. */
export async function binaries(names: GoProgram[], log?: (line: string) => void): Promise<Record<string, string>> {
  const paths: Record<string, string> = {};
  for (const name of names) paths[name] = await binary(name, log);
  return paths;
}

export function kubectlPath(): Promise<string> {
  return binary('kubectl');
}

export function helmPath(): Promise<string> {
  return binary('helm');
}

/** Debian's pebble package puts both programs in /usr/bin. */
export function pebbleBinaries(): { pebble: string; challtestsrv: string } {
  const found = { pebble: '/usr/bin/pebble', challtestsrv: '/usr/bin/pebble-challtestsrv' };
  for (const path of Object.values(found)) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      throw new StackError(`${path} not found; install Debian's pebble package: apt-get update && apt-get install -y pebble`);
    }
  }
  return found;
}

const execFileP = promisify(execFile);

/**
 * A path inside a Go module, at the version `tools/<tool>/go.mod` requires, from the module cache
 * (downloaded through the module proxy on first use, like the stack's binaries).
 */
async function moduleFile(tool: string, module: string, path: string, what: string): Promise<string> {
  const toolDir = join(repoRoot, 'tools', tool);
  const goMod = readFileSync(join(toolDir, 'go.mod'), 'utf8');
  const version = new RegExp(`${module.replaceAll('.', '\\.')} (v\\S+)`).exec(goMod)?.[1];
  if (!version) throw new StackError(`no ${module} version in ${join(toolDir, 'go.mod')}`);
  const env = { ...process.env, PATH: `/usr/local/go/bin:${process.env.PATH ?? ''}` };
  try {
    const modcache = (await execFileP('go', ['env', 'GOMODCACHE'], { env })).stdout.trim();
    const cached = join(modcache, `${module}@${version}`, path);
    if (existsSync(cached)) return cached;
    const { stdout } = await execFileP('go', ['mod', 'download', '-json', `${module}@${version}`], { cwd: toolDir, env });
    return join((JSON.parse(stdout) as { Dir: string }).Dir, path);
  } catch (error) {
    throw new StackError(`could not locate ${what} ${version} through Go (is Go >= 1.26 on PATH?)`, { cause: error });
  }
}

/** Traefik's CRDs, read from the same module version the binary was built from. */
export function traefikCrdFile(): Promise<string> {
  return moduleFile('traefik', 'github.com/traefik/traefik/v3', 'docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml', "Traefik's CRDs");
}

/** The Gateway API's standard-channel CRDs (one file per kind), from `tools/gateway-api`'s module version. */
export async function gatewayApiCrdFiles(): Promise<string[]> {
  const dir = await moduleFile('gateway-api', 'sigs.k8s.io/gateway-api', 'config/crd/standard', 'the Gateway API CRDs');
  // The directory also holds a ValidatingAdmissionPolicy that guards CRD upgrades: not a CRD.
  return readdirSync(dir).filter((f) => /^gateway\.networking\.k8s\.io_.*\.yaml$/.test(f) && !f.includes('_vap_')).sort().map((f) => join(dir, f));
}
