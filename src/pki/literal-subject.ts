/**
 * cert-manager's `spec.literalSubject`: a subject written as an RFC 4514 string
 * ("CN=foo,DC=corp,DC=example,DC=com") and put into the certificate exactly in
 * that order, which LDAP servers that authenticate by subject need.
 *
 * RFC 4514 writes the last RDN of the ASN.1 sequence first, so the parsed RDNs
 * are reversed, as cert-manager does. The attribute names are cert-manager's
 * (C, O, OU, CN, SERIALNUMBER, L, ST, STREET, POSTALCODE, UID, DC) or dotted
 * OIDs; values are PrintableString where they fit it and UTF8String otherwise,
 * as Go encodes them. A string that does not parse throws a message naming
 * the character at fault, for the Certificate's status.
 */
import { directoryString } from './names.ts';
import { x509 } from './x509.ts';

const ATTRIBUTE_OIDS: Record<string, string> = {
  C: '2.5.4.6',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
  SERIALNUMBER: '2.5.4.5',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  STREET: '2.5.4.9',
  POSTALCODE: '2.5.4.17',
  UID: '0.9.2342.19200300.100.1.1',
  DC: '0.9.2342.19200300.100.1.25',
};

export interface Attribute {
  oid: string;
  value: string;
}

/** The RDNs of an RFC 4514 string, in ASN.1 order (the string's last RDN first). */
export function parseLiteralSubject(text: string): Attribute[][] {
  const rdns: Attribute[][] = [];
  let rdn: Attribute[] = [];
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`spec.literalSubject ${JSON.stringify(text)} is not an RFC 4514 name: ${what} at character ${i + 1}`);
  };
  const skipSpaces = () => {
    while (text[i] === ' ') i++;
  };
  skipSpaces();
  if (i === text.length) return [];
  for (;;) {
    skipSpaces();
    const typeStart = i;
    while (i < text.length && text[i] !== '=') i++;
    if (i === text.length) fail('an attribute without "="');
    const type = text.slice(typeStart, i).trim();
    const oid = /^\d+(\.\d+)+$/.test(type) ? type : ATTRIBUTE_OIDS[type.toUpperCase()];
    if (!oid) fail(`the attribute type ${JSON.stringify(type)}, which is not one of ${Object.keys(ATTRIBUTE_OIDS).join(', ')} or a dotted OID`);
    i++;
    skipSpaces();
    const value = text[i] === '#' ? readHex() : readString();
    rdn.push({ oid: oid!, value });
    skipSpaces();
    if (i === text.length) break;
    const separator = text[i++];
    if (separator === '+') continue;
    if (separator !== ',' && separator !== ';') fail(`an unexpected ${JSON.stringify(separator)}`);
    rdns.push(rdn);
    rdn = [];
  }
  rdns.push(rdn);
  return rdns.reverse();

  function readString(): string {
    const bytes: number[] = [];
    let trailingSpaces = 0;
    while (i < text.length && !',+;'.includes(text[i]!)) {
      const c = text[i]!;
      if (c === '\\') {
        const next = text[i + 1];
        if (next === undefined) fail('a "\\" at the end');
        if (/^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
          bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
          i += 3;
        } else {
          bytes.push(...Buffer.from(next!, 'utf8'));
          i += 2;
        }
        trailingSpaces = 0;
        continue;
      }
      if (c === '"' || c === '<' || c === '>' || c === '=') fail(`an unescaped ${JSON.stringify(c)} (write it as \\${c})`);
      trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
      bytes.push(...Buffer.from(c, 'utf8'));
      i++;
    }
    return Buffer.from(bytes.slice(0, bytes.length - trailingSpaces)).toString('utf8');
  }

  function readHex(): string {
    const start = ++i;
    while (i < text.length && /[0-9a-fA-F]/.test(text[i]!)) i++;
    const der = Buffer.from(text.slice(start, i), 'hex');
    if (der.length < 2 || der.length !== 2 + (der[1] ?? 0) || ![0x0c, 0x13, 0x16].includes(der[0] ?? 0)) {
      fail('a #hex value that is not a short DER UTF8String, PrintableString or IA5String');
    }
    return der.subarray(2).toString('utf8');
  }
}

/** The subject to put in a CSR for a literalSubject. */
export function literalSubjectName(text: string): x509.Name {
  return new x509.Name(parseLiteralSubject(text).map((rdn) => {
    const item: x509.JsonAttributeAndObjectValue = {};
    for (const { oid, value } of rdn) (item[oid] ??= []).push(directoryString(value));
    return item;
  }));
}

/**
 * A subject as text that ignores how each value is encoded (PrintableString or
 * UTF8String) but keeps the order of the RDNs: what the re-issue policy
 * compares, so a CSR made by cert-manager matches the same literalSubject.
 */
export function subjectKey(rdns: Attribute[][]): string {
  return rdnsKey(rdns);
}

/** The same text for a literalSubject; throws when it does not parse. */
export function literalSubjectKey(text: string): string {
  return rdnsKey(parseLiteralSubject(text));
}

function rdnsKey(rdns: Attribute[][]): string {
  return JSON.stringify(rdns.map((rdn) => rdn.map((a) => [a.oid, a.value]).sort()));
}
