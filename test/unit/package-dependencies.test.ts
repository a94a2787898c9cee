/**
 * The production dependencies are exactly the packages the shipped code imports: the image
 * installs them alone (`npm ci --omit=dev`), so a test-only package there only adds attack
 * surface, and a package missing there breaks the image.
 */
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : /\.(ts|js)$/.test(name) ? [path] : [];
  });
}

/** Bare package names imported by the shipped code (src/ and bin/). */
function importedPackages(): Set<string> {
  const names = new Set<string>();
  for (const file of [...files(join(repo, 'src')), ...files(join(repo, 'bin'))]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'([^'.][^']*)'/g)) {
      const spec = m[1] ?? '';
      if (spec.startsWith('node:')) continue;
      names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec));
    }
  }
  return names;
}

test('every production dependency is imported by the shipped code, and every import is a production dependency', (t) => {
  const imported = importedPackages();
  const production = Object.keys(pkg.dependencies);
  t.deepEqual(production.filter((name) => !imported.has(name)).sort(), [], 'production dependencies nothing in src/ or bin/ imports: move them to devDependencies');
  t.deepEqual([...imported].filter((name) => !production.includes(name)).sort(), [], 'imported by src/ or bin/ but not a production dependency');
});
