/**
 * Reading a kubeconfig the way kubectl does, without client-node: the current context picks the
 * cluster and user, inline `*-data` wins over file paths, relative paths resolve against the
 * kubeconfig's own directory, several files merge first-wins, token files are re-read, and a
 * broken file is refused with an error that names it and says what to do.
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { fromFiles } from '../../src/kube/kubeconfig.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function kubeconfig(doc: unknown, dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'))): string {
  const file = join(dir, 'config');
  writeFileSync(file, stringify(doc));
  return file;
}

const base = (user: Record<string, unknown>, cluster: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Config',
  'current-context': 'main',
  contexts: [{ name: 'other', context: { cluster: 'wrong', user: 'wrong' } }, { name: 'main', context: { cluster: 'c', user: 'u', namespace: 'team-a' } }],
  clusters: [{ name: 'c', cluster: { server: 'https://api.example.test:6443/', 'certificate-authority-data': b64('CA PEM'), ...cluster } }],
  users: [{ name: 'u', user }],
});

test('the current context picks the server, namespace, CA and client certificate', async (t) => {
  const access = fromFiles([kubeconfig(base({ 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') }))]);
  t.is(access.server, 'https://api.example.test:6443');
  t.is(access.namespace, 'team-a');
  t.is(access.tls.ca?.toString(), 'CA PEM');
  t.is(access.tls.cert?.toString(), 'CERT');
  t.is(access.tls.key?.toString(), 'KEY');
  t.true(access.tls.rejectUnauthorized);
  t.deepEqual(await access.headers(), {});
});

test('file paths are read relative to the kubeconfig, and insecure-skip-tls-verify turns verification off', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
  writeFileSync(join(dir, 'ca.crt'), 'CA FROM FILE');
  writeFileSync(join(dir, 'client.crt'), 'CERT FROM FILE');
  const access = fromFiles([kubeconfig(base({ 'client-certificate': 'client.crt' }, { 'certificate-authority-data': undefined, 'certificate-authority': 'ca.crt', 'insecure-skip-tls-verify': true, 'tls-server-name': 'kubernetes' }), dir)]);
  t.is(access.tls.ca?.toString(), 'CA FROM FILE');
  t.is(access.tls.cert?.toString(), 'CERT FROM FILE');
  t.false(access.tls.rejectUnauthorized);
  t.is(access.tls.servername, 'kubernetes');
});

test('a bearer token, a token file and basic auth become the Authorization header', async (t) => {
  t.deepEqual(await fromFiles([kubeconfig(base({ token: 'abc' }))]).headers(), { authorization: 'Bearer abc' });
  const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
  writeFileSync(join(dir, 'token'), 'from-file\n');
  t.deepEqual(await fromFiles([kubeconfig(base({ tokenFile: 'token' }), dir)]).headers(), { authorization: 'Bearer from-file' });
  t.deepEqual(await fromFiles([kubeconfig(base({ username: 'admin', password: 'secret' }))]).headers(), { authorization: `Basic ${b64('admin:secret')}` });
});

test('with several files the first that names an entry or a current context wins, as kubectl merges them', (t) => {
  const first = kubeconfig({ 'current-context': 'main', clusters: [{ name: 'c', cluster: { server: 'https://first.test' } }] });
  const second = kubeconfig({ ...base({ token: 't' }), 'current-context': 'other', clusters: [{ name: 'c', cluster: { server: 'https://second.test' } }] });
  const access = fromFiles([first, second]);
  t.is(access.server, 'https://first.test');
  t.is(access.namespace, 'team-a');
});

test('an exec plugin user gets its token from the plugin, run by client-node', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
  const plugin = join(dir, 'cloud-cli');
  const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'from-exec' } };
  writeFileSync(plugin, `#!/bin/sh\necho '${JSON.stringify(credential)}'\n`, { mode: 0o755 });
  const access = fromFiles([kubeconfig(base({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } }), dir)]);
  t.deepEqual(await access.headers(), { authorization: 'Bearer from-exec' });
  t.is((await access.delegated?.())?.ca?.toString(), 'CA PEM');
});

test('a kubeconfig without a usable current context is refused with the fix', (t) => {
  const noContext = kubeconfig({ ...base({}), 'current-context': undefined });
  t.regex(t.throws(() => fromFiles([noContext]))?.message ?? '', /no current-context; run 'kubectl config use-context NAME'/);
  const undefinedContext = kubeconfig({ ...base({}), 'current-context': 'gone' });
  t.regex(t.throws(() => fromFiles([undefinedContext]))?.message ?? '', /current-context "gone" is not defined/);
  const noServer = kubeconfig(base({}, { server: undefined }));
  t.regex(t.throws(() => fromFiles([noServer]))?.message ?? '', /names cluster "c", which has no server/);
  t.regex(t.throws(() => fromFiles([join(tmpdir(), 'does-not-exist-kubeconfig')]))?.message ?? '', /does-not-exist-kubeconfig: cannot read it/);
});
