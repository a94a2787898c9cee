/**
 * A request the CA never answered (refused, reset, untrusted certificate) is transient, and its
 * error names the cause, because that message ends up in an Issuer's Ready condition: "ECONNREFUSED"
 * or "self-signed certificate" tells an operator what to fix; acme-client's own TypeError
 * ("Cannot read properties of undefined (reading 'config')") does not.
 */
import test from 'ava';
import { createServer as createTlsServer } from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { acme, AcmeProblemError, call } from '../../src/acme/client.ts';
import { RetryAfterError } from '../../src/base/errors.ts';
import { selfSigned } from '../helpers/builders.ts';

const get = (url: string) => () => acme.axios.get(url, { validateStatus: null });

test('a refused connection is a transient error that names ECONNREFUSED', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const err = await t.throwsAsync(call('register account', get(`http://127.0.0.1:${port}/dir`)));
  t.false(err instanceof AcmeProblemError || err instanceof RetryAfterError, 'transient: the queue retries it');
  t.regex(err?.message ?? '', /^ACME register account failed \(will retry\): no answer from http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  t.notRegex(err?.message ?? '', /reading 'config'/);
});

test('a CA certificate the client does not trust is named in the error', async (t) => {
  const { certificatePem, keyPem } = await selfSigned({ ipAddresses: ['127.0.0.1'] });
  const server = createTlsServer({ cert: certificatePem, key: keyPem }, (_req, res) => res.end('{}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  const err = await t.throwsAsync(call('get directory', get(`https://127.0.0.1:${port}/dir`)));
  t.regex(err?.message ?? '', /no answer from https:\/\/127\.0\.0\.1:\d+: .*(certificate|CERT)/i);
});
