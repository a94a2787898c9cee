/**
 * The PKCS#12 keystores, written for each of cert-manager's profiles and read back by OpenSSL
 * (which checks the MAC and decrypts every bag) and by certroute's own profile reader.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keystoreData, readKeystore } from '../../src/pki/keystores/index.ts';
import { selfSigned } from '../helpers/builders.ts';

const tmp = mkdtempSync(join(tmpdir(), 'certroute-p12-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

for (const profile of ['LegacyRC2', 'LegacyDES', 'Modern2023'] as const) {
  test(`a ${profile} keystore.p12 and truststore.p12 open with the password, and the profile is read back`, async (t) => {
    const { keyPem, certificatePem } = await selfSigned({ dnsNames: ['p12.example.com'] });
    const cert = Buffer.from(certificatePem);
    const out = keystoreData({ pkcs12: { create: true, profile, password: 'pw' } }, { pkcs12: 'pw' }, Buffer.from(keyPem), cert, cert);
    t.deepEqual(out.remove, []);
    const p12 = Buffer.from(out.data['keystore.p12'] ?? '', 'base64');
    t.is(readKeystore('keystore.p12', p12), profile);
    const path = join(tmp, `${profile}.p12`);
    writeFileSync(path, p12);
    const keyOut = execFileSync('openssl', ['pkcs12', '-legacy', '-nocerts', '-nodes', '-passin', 'pass:pw', '-in', path]).toString();
    const fromP12 = execFileSync('openssl', ['pkey', '-pubout'], { input: keyOut }).toString();
    t.is(fromP12, createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString());
    const trustPath = join(tmp, `${profile}-trust.p12`);
    writeFileSync(trustPath, Buffer.from(out.data['truststore.p12'] ?? '', 'base64'));
    const certs = execFileSync('openssl', ['pkcs12', '-legacy', '-nokeys', '-passin', 'pass:pw', '-in', trustPath]).toString();
    t.regex(certs, /2\.16\.840\.1\.113894\.746875\.1\.1/, 'the CA is marked trusted for Java');
    t.throws(() => execFileSync('openssl', ['pkcs12', '-legacy', '-nokeys', '-passin', 'pass:wrong', '-in', path], { stdio: 'pipe' }), undefined, 'a wrong password fails the MAC');
  });
}

test('no keystore asked for: both PKCS#12 keys are listed for removal', (t) => {
  t.deepEqual(keystoreData(undefined, {}, Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)), { data: {}, remove: ['keystore.p12', 'truststore.p12'] });
});
