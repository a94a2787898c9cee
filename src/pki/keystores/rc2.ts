/**
 * RC2 (RFC 2268), encryption only, in CBC mode with PKCS#7 padding: the
 * cipher of PKCS#12's pbeWithSHAAnd40BitRC2-CBC, which cert-manager's
 * LegacyRC2 profile (its default) uses for the certificates. OpenSSL 3 keeps
 * RC2 in its legacy provider, which node:crypto does not load, so it is here.
 */

/** RFC 2268's PITABLE: a permutation of 0..255 derived from the digits of pi. */
export const PITABLE = Buffer.from(
  'd978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2' +
  '179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82' +
  '54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626' +
  '6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7' +
  '08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec' +
  'c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731' +
  '2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9' +
  '0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad',
  'hex',
);

/** The 64 16-bit subkeys of a key with `effectiveBits` effective key bits (RFC 2268 section 2). */
export function expandKey(key: Buffer, effectiveBits: number): Uint16Array {
  const t = key.length;
  if (t < 1 || t > 128) throw new Error(`RC2 key length ${t} is outside 1..128 bytes`);
  const l = new Uint8Array(128);
  l.set(key);
  for (let i = t; i < 128; i++) l[i] = PITABLE[(l[i - 1]! + l[i - t]!) & 0xff]!;
  const t8 = Math.ceil(effectiveBits / 8);
  const tm = 0xff % 2 ** (8 + effectiveBits - 8 * t8);
  l[128 - t8] = PITABLE[l[128 - t8]! & tm]!;
  for (let i = 127 - t8; i >= 0; i--) l[i] = PITABLE[l[i + 1]! ^ l[i + t8]!]!;
  const k = new Uint16Array(64);
  for (let i = 0; i < 64; i++) k[i] = l[2 * i]! | (l[2 * i + 1]! << 8);
  return k;
}

const SHIFTS = [1, 2, 3, 5] as const;

/** Encrypts one 8-byte block in place (RFC 2268 section 3). */
export function encryptBlock(k: Uint16Array, block: Buffer): void {
  const r = [block.readUInt16LE(0), block.readUInt16LE(2), block.readUInt16LE(4), block.readUInt16LE(6)];
  let j = 0;
  const mix = (): void => {
    for (let i = 0; i < 4; i++) {
      const a = r[(i + 3) % 4]!;
      const b = r[(i + 2) % 4]!;
      const c = r[(i + 1) % 4]!;
      const v = (r[i]! + k[j++]! + (a & b) + (~a & c)) & 0xffff;
      const s = SHIFTS[i]!;
      r[i] = ((v << s) | (v >>> (16 - s))) & 0xffff;
    }
  };
  const mash = (): void => {
    for (let i = 0; i < 4; i++) r[i] = (r[i]! + k[r[(i + 3) % 4]! & 63]!) & 0xffff;
  };
  for (let n = 0; n < 5; n++) mix();
  mash();
  for (let n = 0; n < 6; n++) mix();
  mash();
  for (let n = 0; n < 5; n++) mix();
  r.forEach((w, i) => block.writeUInt16LE(w, 2 * i));
}

/** RC2-CBC with PKCS#7 padding. */
export function rc2CbcEncrypt(key: Buffer, effectiveBits: number, iv: Buffer, plain: Buffer): Buffer {
  const k = expandKey(key, effectiveBits);
  const pad = 8 - (plain.length % 8);
  const out = Buffer.concat([plain, Buffer.alloc(pad, pad)]);
  let prev = Buffer.from(iv);
  for (let off = 0; off < out.length; off += 8) {
    const block = out.subarray(off, off + 8);
    for (let i = 0; i < 8; i++) block[i]! ^= prev[i]!;
    encryptBlock(k, block);
    prev = block;
  }
  return out;
}
