/**
 * The Yaegi middleware's own Go tests (plugins/certroute-challenge), run with the Go toolchain the
 * stack is built with: only GET and HEAD reach the responder, with the Host and nothing else of the
 * client's, and a failed request is logged with its host and path quoted.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const plugin = join(resolve(import.meta.dirname, '..', '..'), 'plugins', 'certroute-challenge');

test('the challenge middleware passes its Go tests', async (t) => {
  const env = { ...process.env, PATH: `/usr/local/go/bin:${process.env.PATH ?? ''}`, GOFLAGS: '-mod=mod' };
  const { stdout } = await run('go', ['test', '-count=1', '-v', './...'], { cwd: plugin, env, maxBuffer: 4 << 20 });
  for (const name of ['TestOnlyGetAndHeadAreForwardedAndOnlyWithTheirHost', 'TestAPathWithANewlineCannotForgeALogLine', 'TestChallengeRequestsGoToTheResponderWithTheirHostHeader']) {
    t.regex(stdout, new RegExp(`--- PASS: ${name}`));
  }
  t.notRegex(stdout, /--- FAIL/);
});
