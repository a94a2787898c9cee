/**
 * The cluster's images, built with buildah and no registry: pause, CoreDNS, Traefik and the
 * backend from the binaries tools/build.sh makes, and certroute from the repository's own
 * Dockerfile. That Dockerfile starts FROM `node:24-bookworm-slim` and
 * `gcr.io/distroless/nodejs24-debian12:nonroot`; stand-ins under exactly those names are made from
 * this Debian machine's package files and the project's Node 24 binary (the `node` dev
 * dependency), so `buildah bud -f Dockerfile` runs the real Dockerfile unchanged.
 *
 * Each image is kept as a docker-archive in the user's cache, named by a hash of its inputs, so a
 * second `up` only imports it into containerd (`ctr -n k8s.io images import`).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { repoRoot } from '../env/paths.ts';
import { run } from './host.ts';
import { containerdSocket, imageCacheDir } from './paths.ts';

const buildahRoot = join(imageCacheDir, 'buildah');
const buildah = (args: string[], opts: { cwd?: string } = {}) =>
  run('buildah', ['--root', join(buildahRoot, 'storage'), '--runroot', join(buildahRoot, 'run'), '--storage-driver', 'vfs', ...args], opts);

export interface ImageInputs {
  pause: string;
  coredns: string;
  traefik: string;
  backend: string;
}

export type ImageName = 'pause' | 'coredns' | 'traefik' | 'backend' | 'certroute';
export type ImageRefs = Record<ImageName, string>;

/** Node 24 from the `node` dev dependency: the same binary `npm run` uses. */
const nodeBinary = () => realpathSync(join(repoRoot, 'node_modules', 'node', 'bin', 'node'));

function hashOf(parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex').slice(0, 12);
}

/** A file's identity for cache keys; the Go binaries' paths already carry their version. */
function fileKey(path: string): string {
  const s = statSync(path);
  return `${path}:${s.size}:${s.mtimeMs}`;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/**
 * The certroute image's inputs: the Dockerfile, and what its build context lets in, read from
 * .dockerignore (an allowlist of `!path` lines), so a file the image starts to need is in the key.
 */
function certrouteInputs(): string[] {
  const allowed = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim()).filter((line) => line.startsWith('!'));
  const files = ['Dockerfile', '.dockerignore'].map((f) => join(repoRoot, f));
  for (const path of allowed.map((line) => join(repoRoot, line.slice(1)))) files.push(...(statSync(path).isDirectory() ? filesUnder(path) : [path]));
  return files;
}

/** Files of Debian packages, by their real path (bookworm merges /bin and /lib into /usr). */
async function packageFiles(packages: string[]): Promise<string[]> {
  const listed = (await run('dpkg', ['-L', ...packages])).split('\n').filter(Boolean);
  const files = new Set<string>();
  for (const path of listed) {
    if (path.startsWith('/usr/share/doc') || path.startsWith('/usr/share/man') || path.startsWith('/usr/share/lintian') || path.startsWith('/usr/share/locale')) continue;
    try {
      if (statSync(path).isDirectory()) continue;
      files.add(join(realpathSync(dirname(path)), basename(path)));
    } catch {
      // listed by dpkg but removed on this machine (diverted, or excluded by dpkg's path filters)
    }
  }
  return [...files].sort();
}

async function packageVersions(packages: string[]): Promise<string> {
  return run('dpkg-query', ['-W', ...packages]);
}

/** The recipes themselves (this file) are part of every image's cache key. */
const recipeKey = (): Buffer => readFileSync(new URL(import.meta.url));

function binaryImageRef(name: ImageName, binary: string): string {
  return `localhost/certroute-cluster/${name}:${hashOf([fileKey(binary), recipeKey()])}`;
}

/** The pause image's reference, known before it is built: containerd's config names it. */
export function pauseImageRef(pauseBinary: string): string {
  return binaryImageRef('pause', pauseBinary);
}

/** Copies host files into a working container's root, keeping their paths. */
async function copyHostFiles(mount: string, files: string[]): Promise<void> {
  const list = join(buildahRoot, `files-${process.pid}.txt`);
  writeFileSync(list, files.map((f) => f.slice(1)).join('\n') + '\n');
  try {
    await run('bash', ['-c', `tar -C / --no-recursion -cf - -T "${list}" | tar -C "${mount}" -xpf -`]);
  } finally {
    rmSync(list, { force: true });
  }
}

/** A root with Debian's merged-/usr layout, an /etc/passwd and /etc/group, and /tmp. */
async function baseLayout(mount: string, passwd: string, group: string): Promise<void> {
  for (const dir of ['usr/bin', 'usr/lib', 'usr/lib64', 'usr/sbin', 'etc', 'tmp']) mkdirSync(join(mount, dir), { recursive: true });
  await run('bash', ['-c', `cd "${mount}" && ln -sfn usr/bin bin && ln -sfn usr/lib lib && ln -sfn usr/lib64 lib64 && ln -sfn usr/sbin sbin && chmod 1777 tmp`]);
  writeFileSync(join(mount, 'etc/passwd'), passwd);
  writeFileSync(join(mount, 'etc/group'), group);
  // CA certificates as Debian's ca-certificates package installs them for this machine.
  await run('bash', ['-c', `mkdir -p "${mount}/etc/ssl" && cp -a /etc/ssl/certs "${mount}/etc/ssl/"`]);
}

/** Runs `fill` on a fresh scratch container's root, then commits it under `name`. */
async function fromScratch(name: string, fill: (mount: string) => Promise<void>, config: string[]): Promise<void> {
  const container = (await buildah(['from', '--name', `certroute-build-${process.pid}`, 'scratch'])).trim();
  try {
    const mount = (await buildah(['mount', container])).trim();
    await fill(mount);
    await buildah(['config', ...config, container]);
    await buildah(['commit', '--rm', container, name]);
  } catch (error) {
    await buildah(['rm', container]).catch(() => {});
    throw error;
  }
}

async function copyInto(mount: string, source: string, target: string, mode = 0o755): Promise<void> {
  mkdirSync(dirname(join(mount, target)), { recursive: true });
  await run('install', ['-m', mode.toString(8), source, join(mount, target)]);
}

const runtimeLibs = ['libc6', 'libgcc-s1', 'libstdc++6'];

/** `node:24-bookworm-slim`: Debian's libraries, shell and coreutils, Node 24 and npm. */
async function nodeSlimStandIn(name: string): Promise<void> {
  const files = await packageFiles([...runtimeLibs, 'dash', 'coreutils']);
  const npmDir = realpathSync(join(dirname(realpathSync('/usr/bin/npm')), '..'));
  await fromScratch(name, async (mount) => {
    await baseLayout(mount, 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n', 'root:x:0:\nnode:x:1000:\n');
    await copyHostFiles(mount, files);
    await copyInto(mount, nodeBinary(), 'usr/local/bin/node');
    await run('bash', ['-c', [
      `mkdir -p "${mount}/root" "${mount}/home/node" "${mount}/usr/local/lib/node_modules"`,
      `cp -a "${npmDir}" "${mount}/usr/local/lib/node_modules/npm"`,
      `ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "${mount}/usr/local/bin/npm"`,
      `ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "${mount}/usr/local/bin/npx"`,
      `ln -sfn dash "${mount}/usr/bin/sh"`,
    ].join(' && ')]);
  }, [
    '--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--env', 'NODE_VERSION=24',
    // This machine's CA bundle, as the host's npm trusts it: where a TLS-inspecting proxy stands
    // between the build and the npm registry, its CA is in there. Only the Dockerfile's first
    // stage sees it; the final image starts from the distroless stand-in.
    '--env', 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
    '--cmd', 'node',
  ]);
}

/** `gcr.io/distroless/nodejs24-debian12:nonroot`: Debian's libraries and Node 24, no shell. */
async function distrolessStandIn(name: string): Promise<void> {
  const files = await packageFiles(runtimeLibs);
  await fromScratch(name, async (mount) => {
    await baseLayout(mount, 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n',
      'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n');
    await copyHostFiles(mount, files);
    await copyInto(mount, nodeBinary(), 'nodejs/bin/node');
    mkdirSync(join(mount, 'home/nonroot'), { recursive: true });
    await run('chown', ['65532:65532', join(mount, 'home/nonroot')]);
  }, ['--user', '65532', '--workingdir', '/home/nonroot', '--entrypoint', '["/nodejs/bin/node"]']);
}

/** An image of one static binary, with CA certificates, running as `user`. */
async function binaryImage(name: string, binary: string, target: string, user: string, extra: string[] = []): Promise<void> {
  await fromScratch(name, async (mount) => {
    await baseLayout(mount, 'root:x:0:0:root:/:/nologin\nnonroot:x:65532:65532:nonroot:/:/nologin\n', 'root:x:0:\nnonroot:x:65532:\n');
    await copyInto(mount, binary, target);
  }, ['--user', user, '--workingdir', '/', '--entrypoint', JSON.stringify([`/${target}`]), ...extra]);
}

async function archive(name: string, file: string): Promise<void> {
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  await buildah(['push', name, `docker-archive:${tmp}:${name}`]);
  renameSync(tmp, file);
}

async function imported(ref: string): Promise<boolean> {
  const list = await run('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'ls', '-q']);
  return list.split('\n').includes(ref);
}

/**
 * Builds every image whose inputs changed (or reuses its archive) and imports it into the
 * cluster's containerd. Returns the image references the manifests use.
 */
export async function buildImages(inputs: ImageInputs, log: (line: string) => void): Promise<ImageRefs> {
  mkdirSync(buildahRoot, { recursive: true });
  const debianKey = await packageVersions([...runtimeLibs, 'dash', 'coreutils', 'ca-certificates']);
  const node = nodeBinary();
  const standIns = {
    nodeSlim: 'docker.io/library/node:24-bookworm-slim',
    distroless: 'gcr.io/distroless/nodejs24-debian12:nonroot',
  };
  const standInKey = hashOf([debianKey, fileKey(node), recipeKey()]);
  const certrouteKey = hashOf([standInKey, ...certrouteInputs().map((f) => `${relative(repoRoot, f)}\n${readFileSync(f).toString('base64')}`)]);
  const plan: Record<ImageName, { ref: string; build: (ref: string) => Promise<void> }> = {
    pause: { ref: binaryImageRef('pause', inputs.pause), build: (ref) => binaryImage(ref, inputs.pause, 'pause', '65535') },
    coredns: { ref: binaryImageRef('coredns', inputs.coredns), build: (ref) => binaryImage(ref, inputs.coredns, 'coredns', '65532') },
    traefik: { ref: binaryImageRef('traefik', inputs.traefik), build: (ref) => binaryImage(ref, inputs.traefik, 'usr/local/bin/traefik', '65532') },
    backend: { ref: binaryImageRef('backend', inputs.backend), build: (ref) => binaryImage(ref, inputs.backend, 'backend', '65532') },
    certroute: {
      ref: `localhost/certroute-cluster/certroute:${certrouteKey}`,
      build: async (ref) => {
        const existing = (await buildah(['images', '--format', '{{.Name}}:{{.Tag}}'])).split('\n');
        if (!existing.includes(standIns.nodeSlim)) await nodeSlimStandIn(standIns.nodeSlim);
        if (!existing.includes(standIns.distroless)) await distrolessStandIn(standIns.distroless);
        // The repository's own Dockerfile, unchanged; --pull=never keeps it on the stand-ins.
        await buildah(['bud', '--pull=never', '--isolation', 'chroot', '--network', 'host', '--layers=false', '-f', 'Dockerfile', '-t', ref, '.'], { cwd: repoRoot });
      },
    },
  };
  // The stand-ins are rebuilt whenever their recipe, Debian's packages or Node change.
  const standInStamp = join(buildahRoot, 'stand-ins');
  if (!existsSync(standInStamp) || readFileSync(standInStamp, 'utf8') !== standInKey) {
    await buildah(['rmi', '-f', standIns.nodeSlim, standIns.distroless]).catch(() => {});
    writeFileSync(standInStamp, standInKey);
  }
  const refs = {} as ImageRefs;
  mkdirSync(imageCacheDir, { recursive: true });
  for (const [name, { ref, build }] of Object.entries(plan) as [ImageName, (typeof plan)[ImageName]][]) {
    const file = join(imageCacheDir, `${name}-${ref.split(':').at(-1)!}.tar`);
    if (!existsSync(file)) {
      const started = Date.now();
      log(`building image ${ref}…`);
      await build(ref);
      await archive(ref, file);
      await buildah(['rmi', ref]).catch(() => {});
      log(`built image ${name} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
    if (!(await imported(ref))) await run('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'import', file]);
    refs[name] = ref;
  }
  return refs;
}
