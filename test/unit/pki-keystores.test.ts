/**
 * The keystores: PKCS#12, written for each of cert-manager's profiles and read back by OpenSSL
 * (which checks the MAC and decrypts every bag) and by certroute's own profile reader; JKS, parsed
 * back here as Java reads it (seal, key protection, entries) and listed by keytool.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { EncryptedPrivateKeyInfo } from '@peculiar/asn1-pkcs8';
import { AsnConvert } from '@peculiar/asn1-schema';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keystoreData, readKeystore } from '../../src/pki/keystores/index.ts';
import { jksPasswordBytes, sunKeystream } from '../../src/pki/keystores/jks.ts';
import { selfSigned } from '../helpers/builders.ts';

const tmp = mkdtempSync(join(tmpdir(), 'certroute-p12-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

for (const profile of ['LegacyRC2', 'LegacyDES', 'Modern2023'] as const) {
  test(`a ${profile} keystore.p12 and truststore.p12 open with the password, and the profile is read back`, async (t) => {
    const { keyPem, certificatePem } = await selfSigned({ dnsNames: ['p12.example.com'] });
    const cert = Buffer.from(certificatePem);
    const out = keystoreData({ pkcs12: { create: true, profile, password: 'pw' } }, { pkcs12: 'pw' }, Buffer.from(keyPem), cert, cert);
    t.deepEqual(out.remove, ['keystore.jks', 'truststore.jks'], 'JKS is not asked for');
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

test('no keystore asked for: every keystore key is listed for removal', (t) => {
  t.deepEqual(keystoreData(undefined, {}, Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)), { data: {}, remove: ['keystore.p12', 'truststore.p12', 'keystore.jks', 'truststore.jks'] });
});

test('a keystore asked for whose password is missing is neither written nor removed', (t) => {
  t.deepEqual(keystoreData({ jks: { create: true, passwordSecretRef: { name: 'gone', key: 'k' } } }, {}, Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)), { data: {}, remove: ['keystore.p12', 'truststore.p12'] });
});

/** The entries of a JKS file, read as Java reads them; the file's seal is checked with the password. */
function parseJks(jks: Buffer, password: string): Array<{ tag: number; alias: string; key?: Buffer; certs: Buffer[] }> {
  const pw = jksPasswordBytes(password);
  const body = jks.subarray(0, jks.length - 20);
  const seal = createHash('sha1').update(pw).update('Mighty Aphrodite').update(body).digest();
  if (!seal.equals(jks.subarray(jks.length - 20))) throw new Error('the keystore seal does not match the password');
  if (body.readUInt32BE(0) !== 0xfeedfeed || body.readUInt32BE(4) !== 2) throw new Error('not a JKS version 2 file');
  let off = 12;
  const str = (): string => {
    const n = body.readUInt16BE(off);
    const v = body.subarray(off + 2, off + 2 + n).toString('utf8');
    off += 2 + n;
    return v;
  };
  const bytes = (): Buffer => {
    const n = body.readUInt32BE(off);
    const v = body.subarray(off + 4, off + 4 + n);
    off += 4 + n;
    return v;
  };
  const cert = (): Buffer => {
    if (str() !== 'X.509') throw new Error('not an X.509 certificate');
    return bytes();
  };
  const entries = [];
  for (let n = body.readUInt32BE(8); n > 0; n--) {
    const tag = body.readUInt32BE(off);
    off += 4;
    const alias = str();
    off += 8;
    if (tag === 1) {
      const info = AsnConvert.parse(bytes(), EncryptedPrivateKeyInfo);
      if (info.encryptionAlgorithm.algorithm !== '1.3.6.1.4.1.42.2.17.1.1') throw new Error('not Sun key protection');
      const sealed = Buffer.from(info.encryptedData.buffer);
      const salt = sealed.subarray(0, 20);
      const key = sunKeystream(pw, salt, sealed.subarray(20, sealed.length - 20));
      if (!createHash('sha1').update(pw).update(key).digest().equals(sealed.subarray(sealed.length - 20))) throw new Error('the key check does not match');
      const certs = [];
      for (let c = body.readUInt32BE(off), _ = (off += 4); c > 0; c--) certs.push(cert());
      entries.push({ tag, alias, key, certs });
    } else {
      entries.push({ tag, alias, certs: [cert()] });
    }
  }
  if (off !== body.length) throw new Error('bytes left after the entries');
  return entries;
}

test('keystore.jks holds the key and chain under the alias and the CA as "ca", and truststore.jks the CA; Java reads both', async (t) => {
  const { keyPem, certificatePem } = await selfSigned({ commonName: 'jks.example.com', dnsNames: ['jks.example.com'] });
  const cert = Buffer.from(certificatePem);
  const der = new X509Certificate(certificatePem).raw;
  const out = keystoreData({ jks: { create: true, alias: 'my-alias', password: 'changeit' } }, { jks: 'changeit' }, Buffer.from(keyPem), cert, cert);
  t.deepEqual(out.remove, ['keystore.p12', 'truststore.p12']);
  const jks = Buffer.from(out.data['keystore.jks'] ?? '', 'base64');
  t.is(readKeystore('keystore.jks', jks), 'my-alias');
  const [keyEntry, caEntry, ...more] = parseJks(jks, 'changeit');
  t.is(more.length, 0);
  t.is(keyEntry?.alias, 'my-alias');
  t.true(keyEntry?.key?.equals(createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' })), 'the key decrypts to the PKCS#8 of tls.key');
  t.true(keyEntry?.certs[0]?.equals(der));
  t.deepEqual([caEntry?.tag, caEntry?.alias], [2, 'ca']);
  t.throws(() => parseJks(jks, 'wrong'), { message: /seal does not match/ });
  const trust = parseJks(Buffer.from(out.data['truststore.jks'] ?? '', 'base64'), 'changeit');
  t.deepEqual(trust.map((e) => [e.tag, e.alias]), [[2, 'ca']]);
  const path = join(tmp, 'keystore.jks');
  writeFileSync(path, jks);
  const listed = execFileSync('keytool', ['-list', '-v', '-keystore', path, '-storepass', 'changeit', '-storetype', 'JKS'], { stdio: 'pipe' }).toString();
  t.regex(listed, /Alias name: my-alias[\s\S]*Entry type: PrivateKeyEntry/);
  t.regex(listed, /Alias name: ca[\s\S]*Entry type: trustedCertEntry/);
});
