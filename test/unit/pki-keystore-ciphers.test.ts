/**
 * The two primitives the legacy PKCS#12 profiles need and node:crypto lacks:
 * RC2 (checked against RFC 2268 section 5's test vectors) and the PKCS#12
 * key derivation (RFC 7292 Appendix B.2, checked against the vectors OpenSSL
 * and Bouncy Castle test it with; the many-iteration MAC key is checked by
 * OpenSSL reading the keystores back, in pki-keystores.test.ts).
 */
import test from 'ava';
import { bmpPassword, pkcs12Kdf, Purpose } from '../../src/pki/keystores/pkcs12-kdf.ts';
import { encryptBlock, expandKey, PITABLE } from '../../src/pki/keystores/rc2.ts';

test('RC2 PITABLE is a permutation of the 256 byte values', (t) => {
  t.is(new Set(PITABLE).size, 256);
});

// RFC 2268 section 5: key, effective key bits, plaintext, ciphertext.
const rc2Vectors: [string, number, string, string][] = [
  ['0000000000000000', 63, '0000000000000000', 'ebb773f993278eff'],
  ['ffffffffffffffff', 64, 'ffffffffffffffff', '278b27e42e2f0d49'],
  ['3000000000000000', 64, '1000000000000001', '30649edf9be7d2c2'],
  ['88', 64, '0000000000000000', '61a8a244adacccf0'],
  ['88bca90e90875a', 64, '0000000000000000', '6ccf4308974c267f'],
  ['88bca90e90875a7f0f79c384627bafb2', 64, '0000000000000000', '1a807d272bbe5db1'],
  ['88bca90e90875a7f0f79c384627bafb2', 128, '0000000000000000', '2269552ab0f85ca6'],
  ['88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e', 129, '0000000000000000', '5b78d3a43dfff1f1'],
];

for (const [key, bits, plain, cipher] of rc2Vectors) {
  test(`RC2 encrypts RFC 2268's vector with key ${key} and ${bits} effective bits`, (t) => {
    const block = Buffer.from(plain, 'hex');
    encryptBlock(expandKey(Buffer.from(key, 'hex'), bits), block);
    t.is(block.toString('hex'), cipher);
  });
}

// Password, salt, iterations, purpose, length, expected output.
const kdfVectors: [string, string, number, number, number, string][] = [
  ['smeg', '0a58cf64530d823f', 1, Purpose.key, 24, '8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3'],
  ['smeg', '0a58cf64530d823f', 1, Purpose.iv, 8, '79993dfe048d3b76'],
  ['smeg', '642b99ab44fb4b1f', 1, Purpose.key, 24, 'f3a95fec48d7711e985cfe67908c5ab79fa3d7c5caa5d966'],
];

for (const [password, salt, iterations, purpose, n, expected] of kdfVectors) {
  test(`the PKCS#12 KDF derives ${n} bytes for purpose ${purpose} from "${password}", salt ${salt}, ${iterations} iterations`, (t) => {
    t.is(pkcs12Kdf('sha1', bmpPassword(password), Buffer.from(salt, 'hex'), iterations, purpose, n).toString('hex'), expected);
  });
}
