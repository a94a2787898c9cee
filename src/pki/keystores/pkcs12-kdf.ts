/**
 * The PKCS#12 key derivation (RFC 7292 Appendix B.2), which derives the
 * legacy PBE keys and IVs and every profile's MAC key from the password.
 */
import { createHash } from 'node:crypto';

export const Purpose = { key: 1, iv: 2, mac: 3 } as const;

/** The password as PKCS#12 wants it: big-endian UTF-16 (BMPString) with a two-byte terminator. */
export function bmpPassword(password: string): Buffer {
  const out = Buffer.alloc(2 * password.length + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), 2 * i);
  return out;
}

function fill(data: Buffer, v: number): Buffer {
  if (data.length === 0) return data;
  const out = Buffer.alloc(v * Math.ceil(data.length / v));
  for (let i = 0; i < out.length; i++) out[i] = data[i % data.length]!;
  return out;
}

/** `n` bytes for `purpose`, from the BMP password, the salt and the iteration count, with `hash` (sha1 or sha256). */
export function pkcs12Kdf(hash: 'sha1' | 'sha256', password: Buffer, salt: Buffer, iterations: number, purpose: number, n: number): Buffer {
  const u = hash === 'sha1' ? 20 : 32;
  const v = 64;
  const d = Buffer.alloc(v, purpose);
  const i = Buffer.concat([fill(salt, v), fill(password, v)]);
  const out: Buffer[] = [];
  for (let got = 0; got < n; got += u) {
    let a = createHash(hash).update(d).update(i).digest();
    for (let r = 1; r < iterations; r++) a = createHash(hash).update(a).digest();
    out.push(a);
    if (got + u >= n) break;
    const b = fill(a, v);
    // I_j = (I_j + B + 1) mod 2^(8v), for each v-byte block of I.
    for (let j = 0; j < i.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = i[j + k]! + b[k]! + carry;
        i[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, n);
}
