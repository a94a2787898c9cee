/**
 * Every flag a command accepts is in its --help: the help text is the only
 * place a user learns a flag exists. Read from the sources, so a flag added
 * to a command's parse() options without a help line fails here.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';

const commands = ['controller', 'status', 'renew', 'check'];

for (const command of commands) {
  test(`every flag of certroute ${command} is documented in its --help`, (t) => {
    const source = readFileSync(new URL(`../../src/cli/${command}.ts`, import.meta.url), 'utf8');
    const help = /const HELP = `([^`]*)`/.exec(source)?.[1];
    t.truthy(help, 'the command has a HELP text');
    const options = /\bparse\(argv, \{([\s\S]*?)\n {2}\}/.exec(source)?.[1] ?? '';
    const flags = [...options.matchAll(/^\s*'?([a-z][a-z-]*)'?: \{ type:/gm)].map((m) => m[1] ?? '');
    t.true(flags.length > 0, 'the scan found the flags');
    const missing = flags.filter((flag) => !help?.includes(`--${flag}`));
    t.deepEqual(missing, [], 'flags that --help does not mention');
  });
}
