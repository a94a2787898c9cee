/**
 * cert-manager's `spec.nameConstraints` (RFC 5280 §4.2.1.10), for CA
 * certificates: the names every certificate below the CA must (permitted) or
 * must not (excluded) fall under. The CSR carries the extension, and the
 * SelfSigned and CA signers write it anew from its strict reading, so the CSR
 * is also what the re-issue policy compares, by meaning rather than by bytes.
 *
 * Written and read here with der.ts, in both directions the way Go reads it
 * (cert-manager's approvers): an IP range is the address's own 4 or 16 bytes
 * and a contiguous mask (an IPv4-mapped IPv6 range stays IPv6), and names are
 * ASCII domains Go accepts. Anything else is refused, naming the entry.
 */
import { isIP } from 'node:net';
import type { NameConstraintItems, NameConstraints } from '../api/types.ts';
import { children, extensionDer, sequence, Tag, tlv, whole, type RawExtension } from './der.ts';

export const NAME_CONSTRAINTS_OID = '2.5.29.30';

const KINDS = [
  ['dnsDomains', 0x82],
  ['ipRanges', 0x87],
  ['emailAddresses', 0x81],
  ['uriDomains', 0x86],
] as const;

/**
 * The whole Extension for a spec, or undefined when it constrains nothing. Throws, naming the
 * field, for an entry Go would not read: an IP range that is not CIDR, a domain with an empty or
 * non-ASCII label, a URI domain that is an address.
 */
export function nameConstraintsExtension(spec: NameConstraints | undefined): Uint8Array | undefined {
  const value = constraintsValue(spec);
  return value && extensionDer(NAME_CONSTRAINTS_OID, spec?.critical ?? false, value);
}

/** The extension's value (NameConstraints) for a spec, or undefined when it constrains nothing. */
function constraintsValue(spec: NameConstraints | undefined): Uint8Array | undefined {
  const side = (tag: number, items: NameConstraintItems | undefined, field: string) => {
    const trees = KINDS.flatMap(([kind, nameTag]) => (items?.[kind] ?? []).map((value) => {
      const what = `spec.nameConstraints.${field}.${kind} entry ${JSON.stringify(value)}`;
      const bytes = kind === 'ipRanges' ? rangeOctets(value, what) : Buffer.from(checkedName(kind, value, what), 'latin1');
      return sequence(tlv(nameTag, bytes));
    }));
    return trees.length ? [tlv(tag, ...trees)] : [];
  };
  const parts = [...side(0xa0, spec?.permitted, 'permitted'), ...side(0xa1, spec?.excluded, 'excluded')];
  return parts.length ? sequence(...parts) : undefined;
}

/**
 * A name constraints extension read strictly, as the spec's fields: { [0] permitted, [1]
 * excluded } of subtrees with only a base, each a DNS, email or URI name or an IP range. Throws
 * on anything else (other name kinds, a mask with holes, BER, trailing bytes).
 */
export function nameConstraintsOf(ext: Pick<RawExtension, 'value' | 'critical'>): NameConstraints {
  const der = ext.value;
  const outer = whole(der, 'name constraints extension');
  const parts = outer.tag === Tag.SEQUENCE ? children(der, outer) : [];
  const [first, second] = parts;
  const ordered = parts.length === 1 ? first!.tag === 0xa0 || first!.tag === 0xa1 : parts.length === 2 && first!.tag === 0xa0 && second?.tag === 0xa1;
  if (!ordered) throw new Error('the name constraints extension is not { [0] permitted, [1] excluded }');
  const out: NameConstraints = { critical: ext.critical };
  for (const part of parts) {
    const field = part.tag === 0xa0 ? 'permitted' : 'excluded';
    const items: Required<NameConstraintItems> = { dnsDomains: [], ipRanges: [], emailAddresses: [], uriDomains: [] };
    const trees = children(der, part);
    if (trees.length === 0) throw new Error('the name constraints extension holds an empty list of subtrees');
    for (const tree of trees) {
      const [base, ...bounds] = tree.tag === Tag.SEQUENCE ? children(der, tree) : [];
      if (!base || bounds.length) throw new Error(`the name constraints extension holds a subtree that is not one name at byte ${tree.header}`);
      const kind = KINDS.find(([, tag]) => tag === base.tag)?.[0];
      if (!kind) throw new Error(`the name constraints extension holds a name of tag 0x${base.tag.toString(16)}; cert-manager's spec.nameConstraints has DNS, IP, email and URI names only`);
      const bytes = der.subarray(base.start, base.end);
      const what = `the name constraints' ${field} ${kind} entry at byte ${base.header}`;
      items[kind].push(kind === 'ipRanges' ? rangeText(bytes, what) : checkedName(kind, Buffer.from(bytes).toString('latin1'), what));
    }
    out[field] = Object.fromEntries(Object.entries(items).filter(([, v]) => v.length)) as NameConstraintItems;
  }
  return out;
}

/** What a name constraints extension says, as comparable text; '' when there is none. */
export function nameConstraintsKey(extensions: readonly RawExtension[]): string {
  const ext = extensions.find((e) => e.oid === NAME_CONSTRAINTS_OID);
  if (!ext) return '';
  return constraintsKey(nameConstraintsOf(ext));
}

/** Comparable text of constraints as read: criticality and each side's entries, in order. */
function constraintsKey(parsed: NameConstraints): string {
  const side = (items: NameConstraintItems | undefined): string[] => KINDS.flatMap(([kind]) => (items?.[kind] ?? []).map((v) => `${kind}:${v}`)).sort();
  return JSON.stringify({ critical: parsed.critical ?? false, permitted: side(parsed.permitted), excluded: side(parsed.excluded) });
}

/** The same text for a spec. */
export function nameConstraintsSpecKey(spec: NameConstraints | undefined): string {
  const value = constraintsValue(spec);
  return value ? constraintsKey(nameConstraintsOf({ value, critical: spec?.critical ?? false })) : '';
}

/**
 * A name constraint as Go reads one (cert-manager's approvers, and any Go client of the CA):
 * ASCII only; a domain is an optional leading dot, then labels that are not empty and hold no
 * space or control character ('' matches everything); an email constraint is a domain or one
 * RFC 2821 mailbox (a dot-atom or a quoted local part, '@', a domain); a URI constraint is a
 * domain, never an IP address.
 */
function checkedName(kind: 'dnsDomains' | 'emailAddresses' | 'uriDomains', value: string, what: string): string {
  if (!/^[\x00-\x7f]*$/.test(value)) throw new Error(`${what} is not ASCII`);
  if (kind === 'uriDomains' && isIP(value) && !value.includes('%')) throw new Error(`${what} is an address; a URI constraint is a domain`);
  let domain = value.startsWith('.') ? value.slice(1) : value;
  if (kind === 'emailAddresses' && value.includes('@')) {
    const at = mailboxLocalEnd(value);
    if (at === undefined) throw new Error(`${what} is not a mailbox (local@domain) or a domain`);
    domain = value.slice(at + 1);
  }
  const labels = domain === '' ? [] : domain.split('.');
  if (labels.some((label) => !/^[\x21-\x7e]+$/.test(label))) throw new Error(`${what} is not a domain of ASCII labels such as example.com or .example.com`);
  return value;
}

/** Where the local part of an RFC 2821 mailbox ends (the index of its '@'), read as Go's parseRFC2821Mailbox reads it; undefined when it is none. */
function mailboxLocalEnd(mailbox: string): number | undefined {
  const code = (i: number) => mailbox.charCodeAt(i);
  let i = 0;
  if (mailbox[0] === '"') {
    // Quoted string: qtext, or a backslash and the character it quotes.
    for (i = 1; i < mailbox.length && mailbox[i] !== '"'; i++) {
      const c = code(i);
      if (c === 0x5c) {
        const next = code(++i);
        if (!(next >= 1 && next <= 127 && next !== 10 && next !== 13)) return undefined;
      } else if (!((c >= 1 && c <= 8) || c === 11 || c === 12 || (c >= 14 && c <= 33) || (c >= 35 && c <= 91) || (c >= 93 && c <= 126))) return undefined;
    }
    if (mailbox[i] !== '"') return undefined;
    i++;
  } else {
    // Dot-atom: atext and backslash pairs, with no empty atom.
    for (; i < mailbox.length && mailbox[i] !== '@'; i++) {
      const c = mailbox[i]!;
      if (c === '\\') i++;
      else if (c === '.' ? i === 0 || mailbox[i - 1] === '.' || mailbox[i + 1] === '@' : !/[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]/.test(c)) return undefined;
    }
    if (i === 0) return undefined;
  }
  return mailbox[i] === '@' ? i : undefined;
}

/** "address/prefix" as a constraint's bytes: the address (4 or 16 bytes, as written) and its mask. */
function rangeOctets(range: string, what: string): Buffer {
  const cut = range.lastIndexOf('/');
  const address = range.slice(0, cut);
  const version = cut > 0 ? isIP(address) : 0;
  const bits = version === 4 ? 32 : version === 6 ? 128 : 0;
  const prefix = Number(range.slice(cut + 1));
  if (!bits || !/^\d{1,3}$/.test(range.slice(cut + 1)) || prefix > bits) throw new Error(`${what} is not a CIDR range such as 10.0.0.0/8`);
  const octets = version === 4 ? Buffer.from(address.split('.').map(Number)) : ipv6Octets(address);
  const mask = Buffer.alloc(bits / 8);
  for (let i = 0; i < prefix; i++) mask[i >> 3]! |= 0x80 >> (i & 7);
  return Buffer.concat([octets, mask]);
}

/** The 16 bytes of an IPv6 address in any notation (a dotted tail, '::'), through the WHATWG URL parser. */
function ipv6Octets(address: string): Buffer {
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const groups = (text: string) => (text ? text.split(':').map((g) => parseInt(g, 16)) : []);
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** A constraint's bytes as "address/prefix": IPv4 dotted, IPv6 in canonical hex (never unmapped to IPv4). */
function rangeText(octets: Uint8Array, what: string): string {
  if (octets.length !== 8 && octets.length !== 32) throw new Error(`${what} is an IP range of ${octets.length} bytes; one has 8 (IPv4) or 32 (IPv6)`);
  const half = octets.length / 2;
  const mask = [...octets.subarray(half)].map((b) => b.toString(2).padStart(8, '0')).join('');
  if (!/^1*0*$/.test(mask)) throw new Error(`${what} has a mask that is not contiguous`);
  const address = Buffer.from(octets.subarray(0, half));
  const text = half === 4
    ? [...address].join('.')
    : new URL(`http://[${Array.from({ length: 8 }, (_, i) => address.readUInt16BE(i * 2).toString(16)).join(':')}]/`).hostname.slice(1, -1);
  return `${text}/${mask.replace(/0+$/, '').length}`;
}
