/**
 * The file locks that make test runs take turns (the stack's, its tests', the machine's cluster):
 * separate processes holding one lock never overlap, and a lock left by a dead process is taken
 * over instead of waited on for ever.
 */
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withFileLock } from '../../test/env/lock.ts';

const exec = promisify(execFile);
const lockModule = join(import.meta.dirname, '..', 'env', 'lock.ts');

/** A process that holds `lock` while it writes `<name> in`, waits a little, and writes `<name> out`. */
function holder(lock: string, log: string, name: string): Promise<unknown> {
  const script = `
    import { appendFileSync } from 'node:fs';
    import { setTimeout as sleep } from 'node:timers/promises';
    import { withFileLock } from ${JSON.stringify(lockModule)};
    await withFileLock(${JSON.stringify(lock)}, ${JSON.stringify(name)}, async () => {
      appendFileSync(${JSON.stringify(log)}, '${name} in\\n');
      await sleep(300);
      appendFileSync(${JSON.stringify(log)}, '${name} out\\n');
    }, () => {});
  `;
  return exec(process.execPath, ['--input-type=module', '-e', script]);
}

test('processes holding one lock take turns: each one leaves before the next enters', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'certroute-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [lock, log] = [join(dir, 'tests.lock'), join(dir, 'log')];
  writeFileSync(log, '');
  await Promise.all(['a', 'b', 'c'].map((name) => holder(lock, log, name)));
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  t.is(lines.length, 6);
  for (let i = 0; i < lines.length; i += 2) {
    const name = lines[i]!.split(' ')[0];
    t.deepEqual([lines[i], lines[i + 1]], [`${name} in`, `${name} out`], `no one entered while ${name} held the lock: ${lines.join(', ')}`);
  }
});

test('a lock whose holder died is taken over, and released after use', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'certroute-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lock = join(dir, 'tests.lock');
  const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid;
  writeFileSync(lock, JSON.stringify({ pid: dead, what: 'a test run that was killed' }));
  const ran = await withFileLock(lock, 'this test', async () => JSON.parse(readFileSync(lock, 'utf8')) as { pid: number }, () => {});
  t.is(ran.pid, process.pid, 'held by this process while it ran');
  t.throws(() => readFileSync(lock), { code: 'ENOENT' }, 'and gone after');
});
