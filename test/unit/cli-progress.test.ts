/**
 * Waiting feedback: nothing for a short wait, a spinner that erases itself on a TTY, and a single
 * plain line in logs and pipes. Marks are ✓/✗ on a TTY and ASCII ok/FAIL elsewhere.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { marks, SPINNER_FRAMES, withProgress, type ProgressStream } from '../../src/cli/progress.ts';

function recorder(isTTY: boolean): ProgressStream & { text: () => string } {
  const chunks: string[] = [];
  return { isTTY, write: (c: string) => chunks.push(c), text: () => chunks.join('') };
}

test('a wait shorter than the delay shows nothing, on a TTY or not', async (t) => {
  for (const tty of [true, false]) {
    const stream = recorder(tty);
    t.is(await withProgress('Reading', async () => 42, { stream, delayMs: 50 }), 42);
    t.is(stream.text(), '', tty ? 'TTY' : 'pipe');
  }
});

test('off a TTY a long wait prints one plain line, with no control characters', async (t) => {
  const stream = recorder(false);
  await withProgress('Reading Certificates', () => sleep(80), { stream, delayMs: 10, intervalMs: 5 });
  t.is(stream.text(), 'Reading Certificates…\n');
});

test('on a TTY a long wait spins, then erases its line', async (t) => {
  const stream = recorder(true);
  // The work lasts until the second frame is drawn, however slowly the timers fire under load.
  const untilSecondFrame = async () => {
    while (!stream.text().includes(`${SPINNER_FRAMES[1]} Checking DNS`)) await sleep(5);
  };
  await withProgress('Checking DNS', untilSecondFrame, { stream, delayMs: 10, intervalMs: 10 });
  const text = stream.text();
  t.true(text.startsWith(`\r${SPINNER_FRAMES[0]} Checking DNS\r${SPINNER_FRAMES[1]} Checking DNS`));
  t.true(text.endsWith('\r\x1b[2K'), 'the spinner line is cleared for the result line');
});

test('an error passes through unchanged, and the spinner is still erased', async (t) => {
  const stream = recorder(true);
  const boom = new Error('boom');
  const err = await t.throwsAsync(withProgress('Waiting', async () => {
    await sleep(40);
    throw boom;
  }, { stream, delayMs: 5, intervalMs: 5 }));
  t.is(err, boom);
  t.true(stream.text().endsWith('\r\x1b[2K'));
});

test('nothing is written after the work is done', async (t) => {
  const stream = recorder(true);
  await withProgress('Waiting', () => sleep(30), { stream, delayMs: 5, intervalMs: 5 });
  const length = stream.text().length;
  await sleep(40);
  t.is(stream.text().length, length);
});

test('marks: ✓ ✗ on a TTY, ok FAIL elsewhere', (t) => {
  t.deepEqual(marks(true), { ok: '✓', fail: '✗', skip: '-' });
  t.deepEqual(marks(false), { ok: 'ok', fail: 'FAIL', skip: 'skip' });
  t.deepEqual(marks(undefined), marks(false));
});
