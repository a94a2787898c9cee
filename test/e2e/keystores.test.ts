/**
 * cert-manager's `spec.keystores` through the real controller and the SelfSigned issuer, read
 * back the way a user would: `openssl pkcs12 -info` and `keytool -list` on the Secret's
 * keystore.p12 and truststore.p12, `keytool -list` on keystore.jks and truststore.jks. It follows
 * cert-manager's documentation ("Certificate resource", Creating keystores):
 *
 *   keystores:
 *     pkcs12:
 *       create: true
 *       passwordSecretRef: # Password used to encrypt the keystore
 *         key: password-key
 *         name: pkcs12-password-secret
 *
 * with `jks` in place of `pkcs12` for JKS, and the API reference's `profile` (LegacyRC2, the
 * default; LegacyDES; Modern2023) and `alias` ("certificate" by default).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { kubectl } from '../env/stack.ts';
import {
  applyYaml, cleanUpFile, kubectlJson, readSecret, secretBytes, selfSignedNamespace, startController, waitFor, waitForCertificateRevision,
} from '../helpers/controller.ts';
import { deleteIssuers } from '../helpers/issuance.ts';

const tmp = mkdtempSync(join(tmpdir(), 'certroute-keystores-'));
let files = 0;
const PASSWORD = 'correct horse battery staple';

test.before(async () => {
  await startController();
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
  rmSync(tmp, { recursive: true, force: true });
});

async function run(cmd: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)(cmd, args, { maxBuffer: 8 << 20 });
  return stdout + stderr;
}

function file(data: Buffer): string {
  const path = join(tmp, `f${++files}`);
  writeFileSync(path, data);
  return path;
}

/** A namespace with a SelfSigned Issuer and the documentation's password Secrets, one per keystore kind. */
function keystoreNamespace(prefix: string): Promise<string> {
  return selfSignedNamespace(prefix, ['pkcs12-password-secret', 'jks-password-secret'].map((name) => `---
apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: $NS}
stringData:
  password-key: ${PASSWORD}
`).join(''));
}

function certificate(ns: string, keystores: string): string {
  return `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: my-cert, namespace: ${ns}}
spec:
  secretName: my-cert-tls
  commonName: keystores.example.com
  dnsNames: [keystores.example.com]
  issuerRef: {name: selfsigned}
${keystores}`;
}

const pkcs12 = (profile?: string): string => `  keystores:
    pkcs12:
      create: true
      passwordSecretRef:
        key: password-key
        name: pkcs12-password-secret
${profile ? `      profile: ${profile}\n` : ''}`;

// What `openssl pkcs12 -info` prints for the certificates' and the key's encryption, by profile.
const expected = {
  LegacyRC2: { certs: 'pbeWithSHA1And40BitRC2-CBC', key: 'pbeWithSHA1And3-KeyTripleDES-CBC', mac: 'MAC: sha1' },
  LegacyDES: { certs: 'pbeWithSHA1And3-KeyTripleDES-CBC', key: 'pbeWithSHA1And3-KeyTripleDES-CBC', mac: 'MAC: sha1' },
  Modern2023: { certs: 'PBES2, PBKDF2, AES-256-CBC', key: 'PBES2, PBKDF2, AES-256-CBC', mac: 'MAC: sha256' },
} as const;

for (const profile of ['LegacyRC2', 'LegacyDES', 'Modern2023'] as const) {
  test(`a PKCS#12 keystore with profile ${profile} is read back by openssl and keytool with the password from the Secret`, async (t) => {
    const ns = await keystoreNamespace(`p12-${profile.toLowerCase()}`);
    await applyYaml(certificate(ns, pkcs12(profile)));
    await waitForCertificateRevision(ns, 'my-cert', 1, 60_000);
    const secret = await readSecret(ns, 'my-cert-tls');
    // OpenSSL 3 reads RC2 only with its legacy provider.
    const legacy = profile === 'LegacyRC2' ? ['-legacy'] : [];
    const info = await run('openssl', ['pkcs12', '-info', '-nokeys', ...legacy, '-passin', `pass:${PASSWORD}`, '-in', file(secretBytes(secret, 'keystore.p12'))]);
    t.true(info.includes(`${expected[profile].mac}`), info);
    t.true(info.includes(`PKCS7 Encrypted data: ${expected[profile].certs}`), info);
    t.true(info.includes(`Shrouded Keybag: ${expected[profile].key}`), info);
    t.regex(info, /subject=CN = keystores\.example\.com/);
    const keys = await run('openssl', ['pkcs12', '-nocerts', '-nodes', ...legacy, '-passin', `pass:${PASSWORD}`, '-in', file(secretBytes(secret, 'keystore.p12'))]);
    const fromP12 = await run('openssl', ['pkey', '-pubout', '-in', file(Buffer.from(keys))]);
    const fromCert = await run('openssl', ['x509', '-noout', '-pubkey', '-in', file(secretBytes(secret, 'tls.crt'))]);
    t.is(fromP12, fromCert, 'the key in keystore.p12 is the key of tls.crt');
    const list = await run('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', file(secretBytes(secret, 'keystore.p12')), '-storepass', PASSWORD]);
    t.regex(list, /PrivateKeyEntry/);
    t.truthy(secret.data['ca.crt'], 'the SelfSigned issuer gives ca.crt');
    const trust = await run('keytool', ['-list', '-storetype', 'PKCS12', '-keystore', file(secretBytes(secret, 'truststore.p12')), '-storepass', PASSWORD]);
    t.regex(trust, /trustedCertEntry/);
  });
}

test('changing the profile and then dropping the keystore rewrite the Secret without re-issuing', async (t) => {
  const ns = await keystoreNamespace('p12-change');
  await applyYaml(certificate(ns, pkcs12()));
  await waitForCertificateRevision(ns, 'my-cert', 1, 60_000);
  const first = await readSecret(ns, 'my-cert-tls');
  const legacyInfo = await run('openssl', ['pkcs12', '-info', '-nokeys', '-legacy', '-passin', `pass:${PASSWORD}`, '-in', file(secretBytes(first, 'keystore.p12'))]);
  t.true(legacyInfo.includes('pbeWithSHA1And40BitRC2-CBC'), 'LegacyRC2 is the default profile');

  await applyYaml(certificate(ns, pkcs12('Modern2023')));
  const modern = await waitFor('keystore.p12 to be rewritten with Modern2023', async () => {
    const s = await readSecret(ns, 'my-cert-tls');
    return s.data['keystore.p12'] !== first.data['keystore.p12'] ? s : undefined;
  }, 60_000);
  const info = await run('openssl', ['pkcs12', '-info', '-nokeys', '-passin', `pass:${PASSWORD}`, '-in', file(secretBytes(modern, 'keystore.p12'))]);
  t.true(info.includes('PBES2, PBKDF2, AES-256-CBC'), info);
  t.is(modern.data['tls.crt'], first.data['tls.crt'], 'the certificate was not re-issued');

  await applyYaml(certificate(ns, ''));
  const dropped = await waitFor('the keystores to leave the Secret', async () => {
    const s = await readSecret(ns, 'my-cert-tls');
    return s.data['keystore.p12'] === undefined && s.data['truststore.p12'] === undefined ? s : undefined;
  }, 60_000);
  t.is(dropped.data['tls.crt'], first.data['tls.crt'], 'the certificate was not re-issued');
  const cert = await kubectlJson<{ status: { revision: number } }>(['-n', ns, 'get', 'certificate', 'my-cert']);
  t.is(cert.status.revision, 1);
});

test('a missing password Secret gives a Warning Event that names the Certificate, the Secret and the fix; the certificate is stored, and the keystore follows once the Secret exists', async (t) => {
  const ns = await keystoreNamespace('p12-missing');
  await applyYaml(certificate(ns, pkcs12().replace('pkcs12-password-secret', 'no-such-secret')));
  await waitForCertificateRevision(ns, 'my-cert', 1, 60_000);
  const secret = await readSecret(ns, 'my-cert-tls');
  t.truthy(secret.data['tls.crt'], 'the issued certificate is stored');
  t.is(secret.data['keystore.p12'], undefined);
  const event = await waitFor('the Warning Event', async () => {
    const out = (await kubectl(['-n', ns, 'get', 'events', '--field-selector', 'reason=KeystorePasswordMissing', '-o', 'jsonpath={.items[*].message}'])).stdout;
    return out || undefined;
  }, 60_000);
  t.true(event.includes(`Certificate ${ns}/my-cert`), event);
  t.true(event.includes(`${ns}/no-such-secret does not exist`), event);
  t.true(event.includes('create it with the password under "password-key"'), event);
  t.false(event.includes(PASSWORD));

  await applyYaml(`apiVersion: v1
kind: Secret
metadata: {name: no-such-secret, namespace: ${ns}}
stringData:
  password-key: ${PASSWORD}
`);
  const fixed = await waitFor('keystore.p12 once the password Secret exists', async () => {
    const s = await readSecret(ns, 'my-cert-tls');
    return s.data['keystore.p12'] ? s : undefined;
  }, 180_000, 1000);
  const info = await run('openssl', ['pkcs12', '-info', '-nokeys', '-legacy', '-passin', `pass:${PASSWORD}`, '-in', file(secretBytes(fixed, 'keystore.p12'))]);
  t.regex(info, /subject=CN = keystores\.example\.com/);
  t.is(fixed.data['tls.crt'], secret.data['tls.crt'], 'the certificate was not re-issued');
});

const jks = (alias?: string): string => `  keystores:
    jks:
      create: true
      passwordSecretRef:
        key: password-key
        name: jks-password-secret
${alias ? `      alias: ${alias}\n` : ''}`;

test('a JKS keystore and truststore are listed by keytool with the password from the Secret, and a new alias rewrites them without re-issuing', async (t) => {
  const ns = await keystoreNamespace('jks');
  await applyYaml(certificate(ns, jks()));
  await waitForCertificateRevision(ns, 'my-cert', 1, 60_000);
  const first = await readSecret(ns, 'my-cert-tls');
  const list = await run('keytool', ['-list', '-v', '-storetype', 'JKS', '-keystore', file(secretBytes(first, 'keystore.jks')), '-storepass', PASSWORD]);
  t.regex(list, /Alias name: certificate\n[\s\S]*?Entry type: PrivateKeyEntry/, 'the key entry has cert-manager\'s default alias');
  t.regex(list, /Alias name: ca\n[\s\S]*?Entry type: trustedCertEntry/);
  t.regex(list, /Owner: CN=keystores\.example\.com/);
  const trust = await run('keytool', ['-list', '-v', '-storetype', 'JKS', '-keystore', file(secretBytes(first, 'truststore.jks')), '-storepass', PASSWORD]);
  t.regex(trust, /Alias name: ca\n[\s\S]*?Entry type: trustedCertEntry/);
  await t.throwsAsync(run('keytool', ['-list', '-storetype', 'JKS', '-keystore', file(secretBytes(first, 'keystore.jks')), '-storepass', 'not the password']), undefined, 'the integrity check needs the password');

  await applyYaml(certificate(ns, jks('my-app')));
  const renamed = await waitFor('keystore.jks to be rewritten with the new alias', async () => {
    const s = await readSecret(ns, 'my-cert-tls');
    return s.data['keystore.jks'] !== first.data['keystore.jks'] ? s : undefined;
  }, 60_000);
  const relisted = await run('keytool', ['-list', '-v', '-storetype', 'JKS', '-keystore', file(secretBytes(renamed, 'keystore.jks')), '-storepass', PASSWORD]);
  t.regex(relisted, /Alias name: my-app\n[\s\S]*?Entry type: PrivateKeyEntry/);
  t.is(renamed.data['tls.crt'], first.data['tls.crt'], 'the certificate was not re-issued');
  const cert = await kubectlJson<{ status: { revision: number } }>(['-n', ns, 'get', 'certificate', 'my-cert']);
  t.is(cert.status.revision, 1);
});
