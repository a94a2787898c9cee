/**
 * Which entry point runs certroute; the one place that says so.
 *
 * - From a checkout (the npm bin, every test, the demo) certroute runs its TypeScript source: Node
 *   strips the types as it loads each module, so an edit needs no build step.
 * - What ships, the container image, runs the same modules compiled to JavaScript: `npm run build`
 *   emits dist/ from src/ (tsconfig.build.json). The process then never loads Node's type
 *   stripper, which starts it about 27 MB of RSS lighter (docs/ARCHITECTURE.md, "Memory"). The
 *   bench runs the compiled entry too, so its RSS and CPU figures are those of what ships.
 */
import { execFile } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../test/env/paths.ts';

/** The npm bin: imports src/cli/main.ts. */
export const sourceEntry = 'bin/certroute.js';
/** src/cli/main.ts as `npm run build` emits it; the image's ENTRYPOINT runs it. */
export const compiledEntry = 'dist/cli/main.js';

const distDir = join(repoRoot, 'dist');
/** What the emitted JavaScript depends on. */
const buildInputs = (): string[] => [
  join(repoRoot, 'tsconfig.json'),
  join(repoRoot, 'tsconfig.build.json'),
  ...readdirSync(join(repoRoot, 'src'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)),
];

/** True when dist/ is missing or any input changed after the oldest emitted file. */
export function compiledIsStale(): boolean {
  let oldestOutput = Number.POSITIVE_INFINITY;
  try {
    for (const e of readdirSync(distDir, { recursive: true, withFileTypes: true })) {
      if (e.isFile()) oldestOutput = Math.min(oldestOutput, statSync(join(e.parentPath, e.name)).mtimeMs);
    }
  } catch {
    return true;
  }
  if (oldestOutput === Number.POSITIVE_INFINITY) return true;
  return buildInputs().some((file) => statSync(file).mtimeMs > oldestOutput);
}

let built: Promise<string> | undefined;

/**
 * The compiled entry's absolute path, after `npm run build` when dist/ is stale (once per
 * process). dist/ is emptied first, so no module of a deleted source file lingers there.
 */
export function builtEntry(log: (line: string) => void = () => {}): Promise<string> {
  built ??= (async () => {
    if (compiledIsStale()) {
      const started = performance.now();
      rmSync(distDir, { recursive: true, force: true });
      await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: repoRoot, maxBuffer: 16 << 20 }).catch((err: unknown) => {
        const out = err as { stdout?: string; stderr?: string };
        throw new Error(`npm run build failed: ${`${out.stdout ?? ''}${out.stderr ?? ''}`.trim() || String(err)}`, { cause: err });
      });
      log(`compiled src/ to dist/ (npm run build) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    return join(repoRoot, compiledEntry);
  })();
  return built;
}
