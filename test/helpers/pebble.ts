/**
 * Reading Pebble's own view: its current root (new at every start) and the
 * orders it holds, so tests can prove "no duplicate order at the CA".
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { StackEnv } from '../env/stack.ts';

function agent(env: Pick<StackEnv, 'pebble'>): Agent {
  return new Agent({ connect: { ca: readFileSync(env.pebble.tlsCa) } });
}

/** Pebble's root `index` (0 is the default chain's; 1… are the alternates' with PEBBLE_ALTERNATE_ROOTS). */
export async function pebbleRoot(env: Pick<StackEnv, 'pebble'>, index = 0): Promise<string> {
  const res = await request(`${env.pebble.management}/roots/${index}`, { dispatcher: agent(env) });
  if (res.statusCode !== 200) throw new Error(`Pebble /roots/${index} answered ${res.statusCode}`);
  return res.body.text();
}

/**
 * Every order URL Pebble holds for the account whose key is given, read the
 * way RFC 8555 §7.1.2.1 lists them (POST-as-GET on the account's `orders`).
 */
export async function accountOrders(env: Pick<StackEnv, 'pebble'>, accountKeyPem: string): Promise<string[]> {
  const { createClient } = await import('../../src/acme/client.ts');
  const client = createClient({ directoryUrl: env.pebble.directory, accountKeyPem, tls: { caBundlePem: readFileSync(env.pebble.tlsCa, 'utf8') } });
  const account = (await client.createAccount({ onlyReturnExisting: true })) as { orders?: string };
  if (!account.orders) throw new Error('Pebble returned no orders URL for the account');
  const api = (client as unknown as { api: { apiRequest(url: string, payload: null, codes: number[]): Promise<{ data: { orders?: string[] }; headers: Record<string, string | undefined> }> } }).api;
  const urls: string[] = [];
  let next: string | undefined = account.orders;
  while (next) {
    const res = await api.apiRequest(next, null, [200]);
    urls.push(...(res.data.orders ?? []));
    const link = res.headers.link ?? '';
    next = /<([^>]+)>;\s*rel="next"/.exec(link)?.[1];
  }
  return urls;
}

/** An ACME client of the account whose key is given, bound to its account URL (for revocation). */
async function accountClient(env: Pick<StackEnv, 'pebble'>, accountKeyPem: string) {
  const { createClient } = await import('../../src/acme/client.ts');
  const client = createClient({ directoryUrl: env.pebble.directory, accountKeyPem, tls: { caBundlePem: readFileSync(env.pebble.tlsCa, 'utf8') } });
  await client.createAccount({ onlyReturnExisting: true });
  return client;
}

/** RFC 8555 §7.6: revokes `certPem` as the account that ordered it would, with a reason code (1 is keyCompromise). */
export async function revokeWithAccountKey(env: Pick<StackEnv, 'pebble'>, accountKeyPem: string, certPem: string, reason: number): Promise<void> {
  const client = await accountClient(env, accountKeyPem);
  await client.revokeCertificate(certPem, { reason });
}

/** Pebble's renewalInfo answer for a certificate's ARI identifier, as any client reads it (an unauthenticated GET). */
export async function pebbleRenewalInfo(env: Pick<StackEnv, 'pebble'>, certId: string): Promise<{ suggestedWindow: { start: string; end: string } }> {
  const res = await request(`${new URL(env.pebble.directory).origin}/draft-ietf-acme-ari-03/renewalInfo/${certId}`, { dispatcher: agent(env), headers: { 'user-agent': 'certroute-tests' } });
  if (res.statusCode !== 200) throw new Error(`Pebble renewalInfo answered ${res.statusCode}: ${await res.body.text()}`);
  return (await res.body.json()) as { suggestedWindow: { start: string; end: string } };
}

/** Makes Pebble answer renewalInfo for the certificate with this window (its management `set-renewal-info`). */
export async function setPebbleRenewalWindow(env: Pick<StackEnv, 'pebble'>, certPem: string, start: Date, end: Date): Promise<void> {
  const body = JSON.stringify({ Certificate: certPem, ARIResponse: JSON.stringify({ suggestedWindow: { start: start.toISOString(), end: end.toISOString() } }) });
  const res = await request(`${env.pebble.management}/set-renewal-info/`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'user-agent': 'certroute-tests' }, dispatcher: agent(env) });
  if (res.statusCode !== 200) throw new Error(`Pebble set-renewal-info answered ${res.statusCode}: ${await res.body.text()}`);
  await res.body.dump();
}
