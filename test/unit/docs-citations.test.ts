/**
 * The repository explains itself: a comment that cites a decision points at
 * docs/ARCHITECTURE.md, and the decision it names is there.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const root = new URL('../../', import.meta.url).pathname;
const tracked = execFileSync('git', ['ls-files', 'src', 'test', 'bench', 'scripts', 'charts', 'plugins', 'README.md'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter((file) => /\.(ts|js|go|md|yaml|tpl)$/.test(file));
const architecture = readFileSync(`${root}docs/ARCHITECTURE.md`, 'utf8');
const decisions = new Set([...architecture.matchAll(/^(\d+)\. \*\*/gm)].map((m) => Number(m[1])));

test('every decision a file cites is numbered in docs/ARCHITECTURE.md', (t) => {
  const dangling: string[] = [];
  for (const file of tracked) {
    const text = readFileSync(`${root}${file}`, 'utf8');
    for (const m of text.matchAll(/ARCHITECTURE\.md, decision (\d+)/g)) {
      if (!decisions.has(Number(m[1]))) dangling.push(`${file}: decision ${m[1]}`);
    }
  }
  t.true(decisions.size > 0, 'the decisions were found');
  t.deepEqual(dangling, []);
});

test('every Markdown document a file names is in the repository', (t) => {
  const docs = execFileSync('git', ['ls-files', '*.md'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
  const missing: string[] = [];
  for (const file of tracked) {
    for (const m of readFileSync(`${root}${file}`, 'utf8').matchAll(/[\w./-]*\b[A-Z][\w-]*\.md\b/g)) {
      const named = m[0].replace(/^\.?\//, '');
      if (!docs.some((doc) => doc === named || doc.endsWith(`/${named}`))) missing.push(`${file}: ${m[0]}`);
    }
  }
  t.deepEqual(missing, []);
});
