/**
 * The README's first command, `npm start`, as a newcomer runs it: it prints a
 * curl command, and that command really fetches the demo page over HTTPS,
 * verified against Pebble's root. Ctrl-C then stops it cleanly.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';

test('npm start gets a certificate for the demo IngressRoute and prints a curl command that shows the page over verified HTTPS', async (t) => {
  const demo = spawn(process.execPath, ['scripts/demo.ts'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
  let out = '';
  demo.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const line = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 150_000);
    demo.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const found = out.split('\n').find((l) => l.trim().startsWith('curl --cacert'));
      if (found && out.includes('Ctrl-C')) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    void exited.then(() => resolve(undefined));
  });
  try {
    t.truthy(line, `a curl command is printed; output was:\n${out}`);
    t.regex(out, /✓ Traefik serves a certificate for demo\.certroute\.test issued by "CN=Pebble Intermediate CA/);
    const args = line!.trim().split(/\s+/).slice(1);
    const curl = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('curl', ['--silent', '--show-error', '--fail', ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }));
    });
    t.is(curl.code, 0, curl.stderr);
    t.regex(curl.stdout, /Hello from behind Traefik/);
  } finally {
    demo.kill('SIGINT');
    t.is(await exited, 130, 'Ctrl-C stops the demo');
  }
});
