/**
 * The container image, without a Docker engine: two linters read the Dockerfile (dockerfilelint
 * for practice, dockerfile-utils, the validator behind VS Code's Docker support, for syntax), the
 * tests check the properties the chart relies on (non-root uid, no shell needed, the
 * `certroute controller` command, run compiled), and the files the image would hold are assembled
 * in a temporary directory, compiled JavaScript and production dependencies only, where that
 * command must run.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { run as dockerfilelint } from 'dockerfilelint';
import { validate } from 'dockerfile-utils';
import { compiledEntry } from '../../scripts/entry.ts';

const repo = resolve(import.meta.dirname, '..', '..');
const dockerfile = readFileSync(join(repo, 'Dockerfile'), 'utf8');
const exec = promisify(execFile);

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions with continuation lines joined; comments and blank lines dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: Instruction | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (pending && line.startsWith('#')) return;
    const continued = line.endsWith('\\');
    const body = continued ? line.slice(0, -1).trim() : line;
    if (pending) pending.args += ` ${body}`;
    else {
      const [keyword = '', ...rest] = body.split(/\s+/);
      pending = { keyword: keyword.toUpperCase(), args: rest.join(' '), line: i + 1 };
    }
    if (!continued) {
      out.push(pending);
      pending = undefined;
    }
  });
  return out;
}

/** The instructions of each stage, split at FROM. */
function stages(all: Instruction[]): Instruction[][] {
  const result: Instruction[][] = [];
  for (const ins of all) {
    if (ins.keyword === 'FROM') result.push([ins]);
    else result.at(-1)?.push(ins);
  }
  return result;
}

const all = instructions(dockerfile);
const [build = [], deps = [], final = []] = stages(all);
/** The ARGs declared before the first FROM, with their defaults: the base images. */
const baseArgs = Object.fromEntries(all.slice(0, all.findIndex((i) => i.keyword === 'FROM')).filter((i) => i.keyword === 'ARG').map((i) => i.args.split('=', 2) as [string, string]));
/** A FROM's arguments with the base-image ARGs at their defaults, as a build without --build-arg resolves them. */
const resolveArgs = (text: string): string => text.replace(/\$\{(\w+)\}/g, (ref, name: string) => baseArgs[name] ?? ref);
const finalOf = (keyword: string): Instruction[] => final.filter((i) => i.keyword === keyword);

function execForm(keyword: string): string[] {
  const [ins, ...more] = finalOf(keyword);
  if (!ins || more.length > 0) throw new Error(`expected one ${keyword} in the final stage`);
  return JSON.parse(ins.args) as string[];
}

test('dockerfilelint finds nothing to complain about', (t) => {
  // dockerfilelint does not know ARG: it reads `FROM ${BUILD_IMAGE}` as an image without a tag.
  const resolved = dockerfile.replace(/^FROM .*$/gm, resolveArgs);
  const problems = dockerfilelint(repo, resolved).map((p) => `line ${p.line}: ${p.title} (${p.rule})`);
  t.deepEqual(problems, []);
});

test('the Dockerfile validator behind VS Code finds no error or warning', (t) => {
  const problems = validate(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  t.deepEqual(problems, []);
});

const npmCi = (stage: Instruction[]): string[] => stage.filter((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args)).map((i) => i.args);

test('it compiles on Debian Node 24 with every dependency, installs the production ones apart, and runs on distroless Node 24', (t) => {
  t.is(stages(all).length, 3);
  t.is(resolveArgs(build[0]?.args ?? ''), 'node:24-bookworm-slim AS build');
  t.is(resolveArgs(deps[0]?.args ?? ''), 'node:24-bookworm-slim AS deps');
  t.is(resolveArgs(final[0]?.args ?? ''), 'gcr.io/distroless/nodejs24-debian12:nonroot');
  const [compileInstall, ...moreCompileInstalls] = npmCi(build);
  t.deepEqual(moreCompileInstalls, []);
  t.notRegex(compileInstall ?? '', /--omit=dev/, 'the compiler is a dev dependency');
  t.regex(compileInstall ?? '', /--ignore-scripts/);
  t.true(build.some((i) => i.keyword === 'RUN' && i.args === 'npm run build'), 'the build stage runs `npm run build`, as the bench does');
  const [prodInstall, ...moreProdInstalls] = npmCi(deps);
  t.deepEqual(moreProdInstalls, []);
  t.regex(prodInstall ?? '', /--omit=dev/);
  t.regex(prodInstall ?? '', /--ignore-scripts/);
  t.true(existsSync(join(repo, 'package-lock.json')), 'npm ci needs the lock file');
});

test('each base image is a build argument defaulting to its tag, so a release build pins it by digest without an edit', (t) => {
  t.deepEqual(baseArgs, { BUILD_IMAGE: 'node:24-bookworm-slim', RUNTIME_IMAGE: 'gcr.io/distroless/nodejs24-debian12:nonroot' });
  t.deepEqual(stages(all).map((stage) => stage[0]?.args), ['${BUILD_IMAGE} AS build', '${BUILD_IMAGE} AS deps', '${RUNTIME_IMAGE}']);
});

test('the final stage needs no shell and runs as the uid the chart pins', (t) => {
  t.deepEqual(finalOf('RUN'), [], 'distroless has no shell to RUN anything with');
  t.deepEqual(finalOf('USER').map((u) => u.args), ['65532:65532']);
  const deployment = readFileSync(join(repo, 'charts/certroute/templates/deployment.yaml'), 'utf8');
  t.regex(deployment, /runAsUser: 65532/);
});

test('ENTRYPOINT and CMD are `certroute controller` compiled, in exec form', (t) => {
  const entrypoint = execForm('ENTRYPOINT');
  const cmd = execForm('CMD');
  t.deepEqual([...entrypoint, ...cmd], ['/nodejs/bin/node', compiledEntry, 'controller']);
  const workdir = finalOf('WORKDIR').at(-1)?.args;
  t.is(workdir, '/app', 'the relative script path resolves in WORKDIR');
});

test('the image ships the compiled dist/ and no TypeScript source', (t) => {
  const copies = finalOf('COPY').map((i) => i.args);
  t.true(copies.includes('--from=build /app/dist ./dist'));
  t.false(copies.some((c) => /\bsrc\b/.test(c)), 'src/ stays in the build stage');
  t.true(copies.includes('package.json ./'), 'its "type": "module" makes dist/ ES modules');
});

/** .dockerignore, as Docker reads it: the last matching pattern wins; a match on a parent counts. */
function ignored(path: string): boolean {
  const patterns = readFileSync(join(repo, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const toRegex = (p: string): RegExp => new RegExp(`^${p.replace(/\/$/, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '.*')}$`);
  const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let result = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const re = toRegex(negate ? raw.slice(1) : raw);
    if (prefixes.some((p) => re.test(p))) result = !negate;
  }
  return result;
}

/** COPY sources from the build context (not --from another stage), in every stage or in one. */
function contextCopies(stage = all): string[] {
  return stage.filter((i) => i.keyword === 'COPY' && !i.args.includes('--from=')).flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
}

test('every file the Dockerfile copies exists and passes .dockerignore', (t) => {
  const sources = contextCopies();
  t.true(sources.length > 0);
  for (const src of sources) {
    t.true(existsSync(join(repo, src)), `${src} exists`);
    t.false(ignored(src.replace(/\/$/, '')), `${src} is in the build context`);
  }
  for (const kept of ['tsconfig.build.json', 'src/cli/main.ts', 'crds/cert-manager.io_certificates.yaml']) t.false(ignored(kept), kept);
  for (const dropped of ['node_modules', 'dist', '.stack', 'test/unit/rbac.test.ts', 'charts/certroute/Chart.yaml', '.git']) t.true(ignored(dropped), dropped);
  t.deepEqual(
    all.filter((i) => i.keyword === 'COPY' && i.args.includes('--from=')).map((i) => i.args),
    ['--from=deps /app/node_modules ./node_modules', '--from=build /app/dist ./dist'],
    'node_modules and dist/ come from the build stages, never from this machine',
  );
});

test('the files the image holds run `certroute controller --help` compiled, with production dependencies only', async (t) => {
  // What the final stage holds: dist/ as tsconfig.build.json emits it (the build stage's
  // `npm run build`), what `npm ci --omit=dev` installs from the files the deps stage copies, and
  // the files the final stage copies from the context.
  const app = mkdtempSync(join(tmpdir(), 'certroute-image-'));
  t.teardown(() => rmSync(app, { recursive: true, force: true }));
  await exec(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.build.json'), '--outDir', join(app, 'dist')], { cwd: repo, maxBuffer: 16 << 20 });
  for (const src of [...contextCopies(deps), ...contextCopies(final)]) cpSync(join(repo, src), join(app, src), { recursive: true });
  await exec('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, maxBuffer: 16 << 20 });
  t.false(existsSync(join(app, 'node_modules', 'ava')), 'no dev dependency in the image');
  t.false(existsSync(join(app, 'node_modules', 'typescript')), 'no compiler in the image');
  t.false(existsSync(join(app, 'src')), 'no TypeScript source in the image');
  const [node, script, ...args] = [...execForm('ENTRYPOINT'), ...execForm('CMD'), '--help'];
  t.is(node, '/nodejs/bin/node');
  // Node 24 here, as in the image: process.execPath under `npm test`.
  const { stdout } = await exec(process.execPath, [script ?? '', ...args], { cwd: app, env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' } });
  t.regex(stdout, /^Usage: certroute controller/m);
});
