/**
 * certroute's DNS clients against the stack's real BIND and the Cloudflare API stand-in: RFC 2136
 * updates signed with every TSIG algorithm cert-manager offers, and Cloudflare's zone walk,
 * envelope, duplicates, rate limits and pagination. What is asserted is what BIND then answers.
 */
import test from 'ava';
import { CloudflareClient, CloudflareError } from '../../src/dns/cloudflare.ts';
import { addTxt, deleteTxt, DnsUpdateError, type UpdateTarget } from '../../src/dns/rfc2136.ts';
import { TsigAlgorithms, type TsigAlgorithm } from '../../src/dns/tsig.ts';
import { parseServer, query, txtValues } from '../../src/dns/wire.ts';
import { keyNameFor } from '../env/bind.ts';
import { readEnv } from '../env/stack.ts';
import { injectFault, standInRequests } from '../helpers/cloudflare.ts';

const env = readEnv();
const bind = parseServer(env.bind.address);
const run = Date.now().toString(36);

function target(algorithm: TsigAlgorithm, secret = env.bind.tsigSecret): UpdateTarget {
  const name = algorithm === env.bind.tsigAlgorithm ? env.bind.tsigKeyName : keyNameFor(env.bind, algorithm);
  return { server: bind, key: { name, algorithm, secret: Buffer.from(secret, 'base64') } };
}

async function txt(name: string): Promise<string[]> {
  return txtValues(await query(bind, name, 'TXT', { recursive: false }), name);
}

for (const algorithm of Object.keys(TsigAlgorithms) as TsigAlgorithm[]) {
  test(`an update signed with ${algorithm} adds a TXT value, and deleting it leaves the other value on the name`, async (t) => {
    const name = `_acme-challenge.${algorithm.toLowerCase()}-${run}.${env.bind.zone}`;
    await addTxt(target(algorithm), name, 'first');
    await addTxt(target(algorithm), name, 'second');
    t.deepEqual((await txt(name)).sort(), ['first', 'second']);
    await deleteTxt(target(algorithm), name, 'first');
    t.deepEqual(await txt(name), ['second']);
    await deleteTxt(target(algorithm), name, 'second');
    t.deepEqual(await txt(name), []);
  });
}

test('adding a value twice and deleting a value that is gone both succeed and change nothing', async (t) => {
  const name = `_acme-challenge.twice-${run}.${env.bind.zone}`;
  await addTxt(target('HMACSHA256'), name, 'v');
  await addTxt(target('HMACSHA256'), name, 'v');
  t.deepEqual(await txt(name), ['v']);
  await deleteTxt(target('HMACSHA256'), name, 'v');
  await deleteTxt(target('HMACSHA256'), name, 'v');
  t.deepEqual(await txt(name), []);
});

test('an update with the wrong secret is refused as BADSIG, names the fields to check, and writes nothing', async (t) => {
  const name = `_acme-challenge.badsig-${run}.${env.bind.zone}`;
  const error = await t.throwsAsync(addTxt(target('HMACSHA256', Buffer.from('not the secret').toString('base64')), name, 'v'), { instanceOf: DnsUpdateError });
  t.is(error?.rcode, 'NOTAUTH');
  t.regex(error?.message ?? '', /NOTAUTH \(BADSIG\); check tsigKeyName, tsigAlgorithm and the secret/);
  t.deepEqual(await txt(name), []);
});

test('an unsigned update is refused by a zone whose update-policy names a key', async (t) => {
  const name = `_acme-challenge.unsigned-${run}.${env.bind.zone}`;
  const error = await t.throwsAsync(addTxt({ server: bind }, name, 'v'), { instanceOf: DnsUpdateError });
  t.is(error?.rcode, 'REFUSED');
  t.deepEqual(await txt(name), []);
});

const cloudflare = () => new CloudflareClient({ baseUrl: env.cloudflare.api, auth: { token: env.cloudflare.token }, backoffMs: 50 });

test('Cloudflare: the zone is found by walking up the name, and a TXT record created and deleted through the API reaches BIND', async (t) => {
  const name = `_acme-challenge.deep.er-${run}.${env.cloudflare.zone}`;
  const client = cloudflare();
  const zone = await client.findZone(name);
  t.is(zone.name, env.cloudflare.zone);
  await client.createTxt(zone, name, 'ours');
  await client.createTxt(zone, name, 'theirs');
  await client.createTxt(zone, name, 'ours'); // 81058, an identical record: counts as created
  t.deepEqual((await txt(name)).sort(), ['ours', 'theirs']);
  await client.deleteTxt(zone, name, 'ours');
  t.deepEqual(await txt(name), ['theirs']);
  await client.deleteTxt(zone, name, 'theirs');
  t.deepEqual(await txt(name), []);
});

test('Cloudflare: a wrong token is a 403 from the error envelope, and a name outside every zone says which permissions to give', async (t) => {
  const wrong = new CloudflareClient({ baseUrl: env.cloudflare.api, auth: { token: 'wrong' } });
  const denied = await t.throwsAsync(wrong.findZone(`_acme-challenge.${env.cloudflare.zone}`), { instanceOf: CloudflareError });
  t.regex(denied?.message ?? '', /^Cloudflare API: 403 Invalid access token \(9109\)$/);
  const missing = await t.throwsAsync(cloudflare().findZone(`_acme-challenge.elsewhere-${run}.test`), { instanceOf: CloudflareError });
  t.regex(missing?.message ?? '', /no zone for _acme-challenge\.elsewhere-.*\.test is visible to these credentials; give the API token Zone:Read and DNS:Edit/);
});

test('Cloudflare: the Global API Key with its email works as the token does', async (t) => {
  const client = new CloudflareClient({ baseUrl: env.cloudflare.api, auth: { key: env.cloudflare.token, email: `admin@${env.cloudflare.zone}` } });
  t.is((await client.findZone(`x.${env.cloudflare.zone}`)).name, env.cloudflare.zone);
});

test('Cloudflare: a storm of 429s is ridden out with back-off, and the call then succeeds', async (t) => {
  const before = (await standInRequests(env.cloudflare.api)).length;
  await injectFault(env.cloudflare.api, { status: 429, count: 3, retryAfter: 0 });
  const zone = await cloudflare().findZone(`_acme-challenge.storm-${run}.${env.cloudflare.zone}`);
  t.is(zone.name, env.cloudflare.zone);
  const statuses = (await standInRequests(env.cloudflare.api)).slice(before).map((r) => r.status);
  t.deepEqual(statuses.slice(0, 3), [429, 429, 429]);
  t.true(statuses.slice(3).every((s) => s === 200));
});

test('Cloudflare: deleting a value finds it on the third page of a name with more records than a page', async (t) => {
  const name = `_acme-challenge.paged-${run}.${env.cloudflare.zone}`;
  const client = new CloudflareClient({ baseUrl: env.cloudflare.api, auth: { token: env.cloudflare.token }, pageSize: 5 });
  const zone = await client.findZone(name);
  const values = Array.from({ length: 12 }, (_, i) => `v${String(i).padStart(2, '0')}`);
  for (const v of values) await client.createTxt(zone, name, v);
  t.is((await client.txtRecords(zone, name)).length, 12);
  await client.deleteTxt(zone, name, 'v11');
  t.deepEqual((await txt(name)).sort(), values.slice(0, 11));
  for (const v of values.slice(0, 11)) await client.deleteTxt(zone, name, v);
  t.deepEqual(await txt(name), []);
});
