/**
 * The ACME account registry: one client, Transport and account per issuer, never per CA. Two
 * issuers at the same CA talk to it through different agents, so a tenant's skipTLSVerify or
 * caBundle changes nothing for anyone else (a real TLS exchange with a loopback CA proves it).
 * A client is handed out only for the issuer as it is now; otherwise a typed error says why.
 */
import test from 'ava';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  AccountLostError, AccountNotRegisteredError, AccountNotUpToDateError, AccountRegistry, type AccountSpec, type IssuerHooks, type IssuerKey, type IssuerVersion,
} from '../../src/acme/accounts.ts';
import { AcmeProblemError, call, transportOf } from '../../src/acme/client.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { selfSigned } from '../helpers/builders.ts';

const ACCOUNT_KEY = await generatePrivateKey({ algorithm: 'ECDSA' });

/** Issuers as the caches would hold them, and what the registry asked of the issuer side. */
function fakeIssuers(): IssuerHooks & { cached: Map<string, IssuerVersion>; refreshed: string[]; forgotten: string[] } {
  const cached = new Map<string, IssuerVersion>();
  const refreshed: string[] = [];
  const forgotten: string[] = [];
  const id = (k: IssuerKey) => `${k.kind}/${k.namespace ?? ''}/${k.name}`;
  return {
    cached,
    refreshed,
    forgotten,
    current: (k) => cached.get(id(k)),
    refresh: (k) => void refreshed.push(id(k)),
    forgetRemembered: async (k) => void forgotten.push(id(k)),
  };
}

const tenant: IssuerKey = { kind: 'Issuer', namespace: 'tenant-a', name: 'acme' };
const platform: IssuerKey = { kind: 'ClusterIssuer', name: 'acme' };
const v1: IssuerVersion = { uid: 'uid-1', generation: 1 };

function spec(directoryUrl: string, tls: AccountSpec['tls'] = {}): AccountSpec {
  return { directoryUrl, accountKeyPem: ACCOUNT_KEY, tls };
}

/** A CA on loopback whose certificate nobody trusts unless told to; it serves its directory. */
async function untrustedCa(t: { teardown(fn: () => Promise<void>): void }): Promise<{ directory: string; certificatePem: string }> {
  const { certificatePem, keyPem } = await selfSigned({ ipAddresses: ['127.0.0.1'] });
  const server = createServer({ cert: certificatePem, key: keyPem }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ newNonce: 'https://ca.test/nonce', newAccount: 'https://ca.test/acct', newOrder: 'https://ca.test/order', meta: { termsOfService: 'https://ca.test/tos' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { directory: `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir`, certificatePem };
}

// ── one Transport per issuer ────────────────────────────────────────────────

test('two issuers at the same CA get different agents, each built from its own issuer’s TLS settings', (t) => {
  const issuers = fakeIssuers();
  issuers.cached.set('Issuer/tenant-a/acme', v1).set('ClusterIssuer//acme', v1);
  const registry = new AccountRegistry(issuers);
  registry.recall(platform, v1, spec('https://ca.test/dir'), 'ops@example.com', 'https://ca.test/acct/1');
  registry.recall(tenant, v1, spec('https://ca.test/dir', { skipTLSVerify: true }), 'ops@example.com', 'https://ca.test/acct/2');
  const platformAgent = transportOf(registry.client(platform))?.agent;
  const tenantAgent = transportOf(registry.client(tenant))?.agent;
  t.truthy(platformAgent);
  t.not(platformAgent, tenantAgent);
  t.is(platformAgent?.options.rejectUnauthorized, true);
  t.is(tenantAgent?.options.rejectUnauthorized, false);
});

test('a tenant Issuer with skipTLSVerify does not turn off verification for another issuer at the same CA', async (t) => {
  const ca = await untrustedCa(t);
  const issuers = fakeIssuers();
  for (const id of ['ClusterIssuer//acme', 'Issuer/tenant-a/acme', 'Issuer/tenant-b/acme']) issuers.cached.set(id, v1);
  const registry = new AccountRegistry(issuers);
  const bundled: IssuerKey = { kind: 'Issuer', namespace: 'tenant-b', name: 'acme' };
  // The platform issuer first, then the tenant's: the last one set up must not win the origin.
  registry.recall(platform, v1, spec(ca.directory), 'ops@example.com', `${ca.directory}/acct/1`);
  registry.recall(tenant, v1, spec(ca.directory, { skipTLSVerify: true }), 'ops@example.com', `${ca.directory}/acct/2`);
  registry.recall(bundled, v1, spec(ca.directory, { caBundlePem: ca.certificatePem }), 'ops@example.com', `${ca.directory}/acct/3`);

  t.is(await call('get directory', () => registry.client(tenant).getTermsOfServiceUrl()), 'https://ca.test/tos', 'the tenant skips verification, as it asked');
  const err = await t.throwsAsync(call('get directory', () => registry.client(platform).getTermsOfServiceUrl()));
  t.regex(err?.message ?? '', /no answer from https:\/\/127\.0\.0\.1:\d+: .*(certificate|CERT)/i, 'the platform issuer still verifies the CA');
  t.is(await call('get directory', () => registry.client(bundled).getTermsOfServiceUrl()), 'https://ca.test/tos', 'a caBundle is trusted by its own issuer');
});

test('an issuer keeps its client while nothing that makes it changes, and gets a new one when its caBundle does', (t) => {
  const issuers = fakeIssuers();
  issuers.cached.set('ClusterIssuer//acme', v1);
  const registry = new AccountRegistry(issuers);
  registry.recall(platform, v1, spec('https://ca.test/dir'), 'ops@example.com', 'https://ca.test/acct/1');
  const first = registry.client(platform);
  registry.recall(platform, v1, spec('https://ca.test/dir'), 'ops@example.com', 'https://ca.test/acct/1');
  t.is(registry.client(platform), first, 'kept: its directory and nonces carry over');
  registry.recall(platform, v1, spec('https://ca.test/dir', { caBundlePem: 'another bundle' }), 'ops@example.com', 'https://ca.test/acct/1');
  t.not(registry.client(platform), first);
});

// ── typed answers ───────────────────────────────────────────────────────────

test('an issuer that has not registered gets AccountNotRegisteredError, and is asked to', (t) => {
  const issuers = fakeIssuers();
  issuers.cached.set('Issuer/tenant-a/acme', v1);
  const registry = new AccountRegistry(issuers);
  t.throws(() => registry.client(tenant), { instanceOf: AccountNotRegisteredError, message: /ACME account of Issuer tenant-a\/acme is not registered yet/ });
  t.deepEqual(issuers.refreshed, ['Issuer/tenant-a/acme']);
});

test('an account of an issuer that was deleted and created again under the same name is not handed to the new one', (t) => {
  const issuers = fakeIssuers();
  const registry = new AccountRegistry(issuers);
  registry.recall(tenant, v1, spec('https://ca.test/dir'), 'ops@example.com', 'https://ca.test/acct/1');
  issuers.cached.set('Issuer/tenant-a/acme', { uid: 'uid-2', generation: 1 });
  t.throws(() => registry.client(tenant), { instanceOf: AccountNotRegisteredError });
});

test('an account set up for an older generation of the issuer gets AccountNotUpToDateError until the issuer is looked at again', (t) => {
  const issuers = fakeIssuers();
  const registry = new AccountRegistry(issuers);
  registry.recall(tenant, v1, spec('https://ca.test/dir'), 'ops@example.com', 'https://ca.test/acct/1');
  issuers.cached.set('Issuer/tenant-a/acme', { uid: 'uid-1', generation: 2 });
  t.throws(() => registry.client(tenant), { instanceOf: AccountNotUpToDateError, message: /generation 1 of the issuer, which is at 2 now/ });
  t.deepEqual(issuers.refreshed, ['Issuer/tenant-a/acme']);
  registry.recall(tenant, { uid: 'uid-1', generation: 2 }, spec('https://ca.test/dir'), 'ops@example.com', 'https://ca.test/acct/1');
  t.truthy(registry.client(tenant));
});

test('an account the CA no longer knows is dropped here and from the issuer’s status, as an AccountLostError', async (t) => {
  const issuers = fakeIssuers();
  issuers.cached.set('ClusterIssuer//acme', v1);
  const registry = new AccountRegistry(issuers);
  registry.recall(platform, v1, spec('https://ca.test/dir'), 'ops@example.com', 'https://ca.test/acct/1');
  const gone = new AcmeProblemError('ACME get order: account not found', 400, 'urn:ietf:params:acme:error:accountDoesNotExist');
  const err = await t.throwsAsync(registry.throwIfLost(platform, gone), { instanceOf: AccountLostError, message: /no longer knows the account of ClusterIssuer acme; registering it again/ });
  t.is(err?.cause, gone);
  t.deepEqual(issuers.forgotten, ['ClusterIssuer//acme']);
  t.throws(() => registry.client(platform), { instanceOf: AccountNotRegisteredError });
});

test('any other error leaves the account alone', async (t) => {
  const issuers = fakeIssuers();
  issuers.cached.set('ClusterIssuer//acme', v1);
  const registry = new AccountRegistry(issuers);
  registry.recall(platform, v1, spec('https://ca.test/dir'), 'ops@example.com', 'https://ca.test/acct/1');
  await registry.throwIfLost(platform, new AcmeProblemError('ACME create order: rejected', 400, 'urn:ietf:params:acme:error:rejectedIdentifier'));
  await registry.throwIfLost(platform, new Error('ECONNRESET'));
  t.truthy(registry.client(platform));
  t.deepEqual(issuers.forgotten, []);
});

test('an account this process registered is known for that spec and e-mail, so a pass on a stale cache does not register again', (t) => {
  const registry = new AccountRegistry(fakeIssuers());
  const key = { kind: 'ClusterIssuer' as const, name: 'platform' };
  registry.recall(key, { uid: 'uid-1', generation: 1 }, spec('https://ca.test/dir'), 'ops@example.com', 'https://ca.test/acct/1');
  t.is(registry.known(key, 'uid-1', spec('https://ca.test/dir'), 'ops@example.com'), 'https://ca.test/acct/1');
  t.is(registry.known(key, 'uid-1', spec('https://ca.test/dir'), 'security@example.com'), undefined, 'a new e-mail must reach the CA');
  t.is(registry.known(key, 'uid-1', spec('https://ca.test/dir', { skipTLSVerify: true }), 'ops@example.com'), undefined, 'another transport is another client');
  t.is(registry.known(key, 'uid-2', spec('https://ca.test/dir'), 'ops@example.com'), undefined, 'a recreated issuer registers');
  registry.forget(key);
  t.is(registry.known(key, 'uid-1', spec('https://ca.test/dir'), 'ops@example.com'), undefined, 'a forgotten account (the CA lost it) registers again');
});
