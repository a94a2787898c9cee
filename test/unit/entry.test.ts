/**
 * The two entry points name the same program: the npm bin imports the CLI's source module, and the
 * compiled entry the image and the bench run is where tsconfig.build.json emits that module.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { compiledEntry, sourceEntry } from '../../scripts/entry.ts';

const repo = resolve(import.meta.dirname, '..', '..');
const json = <T>(file: string): T => JSON.parse(readFileSync(join(repo, file), 'utf8')) as T;
/** The module the npm bin imports, relative to the repository. */
const sourceModule = (): string => {
  const spec = /^import '([^']+)';$/m.exec(readFileSync(join(repo, sourceEntry), 'utf8'))?.[1];
  if (!spec) throw new Error(`${sourceEntry} imports no module`);
  return relative(repo, resolve(repo, sourceEntry, '..', spec));
};

test('the source entry is the certroute bin in package.json and imports the CLI module under src/', (t) => {
  const pkg = json<{ bin: Record<string, string> }>('package.json');
  t.is(join(pkg.bin.certroute ?? ''), sourceEntry);
  t.is(sourceModule(), join('src', 'cli', 'main.ts'));
});

test('the compiled entry is where npm run build emits the module the source entry imports', (t) => {
  const pkg = json<{ scripts: Record<string, string> }>('package.json');
  t.regex(pkg.scripts.build ?? '', /\btsc -p tsconfig\.build\.json\b/, 'npm run build compiles with tsconfig.build.json');
  const { compilerOptions } = json<{ compilerOptions: { rootDir: string; outDir: string; noEmit: boolean } }>('tsconfig.build.json');
  t.false(compilerOptions.noEmit);
  const emitted = join(compilerOptions.outDir, relative(compilerOptions.rootDir, sourceModule())).replace(/\.ts$/, '.js');
  t.is(emitted, compiledEntry);
});
