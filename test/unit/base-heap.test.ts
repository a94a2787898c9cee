/**
 * compactHeap (src/base/heap.ts) in a process of its own, with and without Node's --expose-gc,
 * as the chart's nodeOptions run the controller and as a plain `node` does.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Compaction } from '../../src/base/heap.ts';

const heapModule = fileURLToPath(new URL('../../src/base/heap.ts', import.meta.url));

/**
 * Holds about 60 MB of objects long enough for V8 to move them to the old generation (as a
 * cache's list pages live through a start-up pass), drops them, then compacts; prints the result.
 */
const script = `
const { compactHeap } = await import(${JSON.stringify(heapModule)});
let held = [];
for (let i = 0; i < 120; i++) held.push(JSON.parse(JSON.stringify(Array.from({ length: 2000 }, (_, j) => ({ name: 'object-' + j, labels: { a: 'x'.repeat(40) } })))));
for (let i = 0; i < 50; i++) JSON.parse(JSON.stringify(Array.from({ length: 2000 }, (_, j) => ({ filler: j }))));
const kept = held.slice(0, 5);
held = [];
console.log(JSON.stringify({ result: compactHeap() ?? null, kept: kept.length }));
`;

async function run(nodeOptions: string): Promise<Compaction | null> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_OPTIONS: nodeOptions } });
  return (JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { result: Compaction | null }).result;
}

test('with --expose-gc, the garbage of a burst of work is collected and its pages handed back', async (t) => {
  const done = await run('--expose-gc --max-semi-space-size=2');
  if (!done) return t.fail('compactHeap did nothing although gc was exposed');
  t.true(done.rssAfterMB < done.rssBeforeMB - 30, `RSS ${done.rssBeforeMB} → ${done.rssAfterMB} MB`);
});

test('without --expose-gc, nothing happens', async (t) => {
  t.is(await run('--max-semi-space-size=2'), null);
});
