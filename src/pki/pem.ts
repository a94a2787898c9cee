/**
 * PEM text handling shared by the parsers.
 *
 * Kubernetes hands PEM around in two shapes: Secret `data` and
 * CertificateRequest `spec.request` / `status.certificate` are base64 of the PEM
 * text, while everything certroute builds itself is plain PEM. Accepting both
 * at the parser boundary keeps the base64 step from being forgotten in callers.
 */
import { decodeB64 } from '../base/objects.ts';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** Returns PEM text, base64-decoding it first when it is Kubernetes-style base64 of PEM. */
export function pemText(input: string): string {
  if (input.includes('-----BEGIN')) return input;
  const decoded = Buffer.from(input.trim(), 'base64').toString('utf8');
  if (decoded.includes('-----BEGIN')) return decoded;
  throw new Error('the data is neither PEM nor base64-encoded PEM');
}

/** The PEM blocks of one label, in order, each normalised to end with a newline. */
export function pemBlocks(input: string, label: string): string[] {
  const out: string[] = [];
  for (const match of pemText(input).matchAll(BLOCK)) {
    if (match[1] === label) out.push(`${match[0]}\n`);
  }
  return out;
}

/** Decodes a Secret data value; undefined when absent or empty, as cert-manager treats both alike. */
export function secretValue(data: Record<string, string> | undefined, key: string): string | undefined {
  const text = decodeB64(data?.[key]);
  return text.length > 0 ? text : undefined;
}

/** PEM of DER bytes: base64 in lines of 64, ending with a newline. */
export function pemEncode(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The DER of the single PEM block that `input` holds, with one of `labels`, and nothing else: no
 * other block, no headers, no text after it, no character outside base64, canonical padding.
 * Strict because readers differ where PEM is loose (Go takes the first block of any label and
 * refuses bad base64; Node's decoder skips bad characters and stops at the first '='), and an
 * approver that reads one CSR while the signer reads another would approve what it never saw.
 */
export function soleBlockDer(input: string, labels: readonly string[], what: string): Buffer {
  const text = pemText(input);
  // Text before the block (`openssl req -text` prints the request first) is allowed when it holds
  // no '-----': then the only BEGIN line is the one every reader starts at.
  const begin = text.indexOf('-----BEGIN ');
  const preamble = text.slice(0, Math.max(begin, 0));
  const clean = begin >= 0 && !preamble.includes('-----') && (begin === 0 || preamble.endsWith('\n'));
  const match = clean ? /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+\n)-----END \1-----\s*$/.exec(text.slice(begin)) : null;
  const body = match?.[2]?.replace(/\r?\n/g, '') ?? '';
  const der = Buffer.from(body, 'base64');
  if (!match || !labels.includes(match[1] ?? '') || der.length === 0 || der.toString('base64') !== body) {
    throw new Error(`the ${what} must be one PEM block (${labels.join(' or ')}) and nothing else: no other blocks, headers or text after it, only base64 lines inside`);
  }
  return der;
}

/** The DER bytes of one PEM block (as `pemBlocks` returns it). */
export function pemDer(block: string): Buffer {
  return Buffer.from(block.replace(/-----(BEGIN|END) [A-Z0-9 ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}
