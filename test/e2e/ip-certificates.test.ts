/**
 * IP address certificates through ACME (RFC 8738): a Certificate's `ipAddresses` become `ip`
 * identifiers in the order, Pebble validates them over HTTP-01 by connecting to the address
 * itself with the address as the Host, and the responder and the self-check treat the literal as
 * the host. Traefik's web entrypoint listens on 127.0.0.1, so that is the address validated.
 */
import test from 'ava';
import { readEnv } from '../env/stack.ts';
import { applyYaml, cleanUpFile, freshNamespace, kubectlJson, readLog, startController, waitForCertificateRevision, waitForLeader, type SecretView } from '../helpers/controller.ts';
import { certificateYaml, deleteIssuers, leafOf, newIssuer } from '../helpers/issuance.ts';

const env = readEnv();
const ADDRESS = '127.0.0.1';
let issuer = '';
let controller: Awaited<ReturnType<typeof startController>>;

test.before(async () => {
  controller = await startController();
  await waitForLeader(controller);
  issuer = await newIssuer('pebble-ip');
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
});

test('a Certificate for an IP address is ordered as an ip identifier, validated over HTTP-01, and issued with the address as its SAN', async (t) => {
  const ns = await freshNamespace('ipcert');
  await applyYaml(certificateYaml(ns, 'by-address', [], issuer, { ipAddresses: [ADDRESS] }));
  await waitForCertificateRevision(ns, 'by-address', 1, 120_000);

  const secret = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', 'by-address-tls']);
  const leaf = leafOf(secret);
  t.is(leaf.subjectAltName, `IP Address:${ADDRESS}`);
  t.true(leaf.checkIP(ADDRESS) === ADDRESS, 'the certificate is valid for the address');

  const orders = await kubectlJson<{ items: Array<{ spec: { dnsNames?: string[]; ipAddresses?: string[] } }> }>(['-n', ns, 'get', 'orders']);
  t.deepEqual(orders.items.map((o) => [o.spec.dnsNames ?? [], o.spec.ipAddresses]), [[[], [ADDRESS]]], 'one order, for the address alone');
  const served = readLog(controller).split('\n').filter((l) => l.includes('served HTTP-01 challenge'));
  t.true(served.some((l) => l.includes(`"host":"${ADDRESS}:${env.traefik.web}"`)), 'Pebble asked the responder with the address as the Host');
});
