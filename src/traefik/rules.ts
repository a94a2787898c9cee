/**
 * Traefik router rules, parsed for one purpose: finding the names a certificate must cover.
 *
 * Traefik hands a rule to vulcand/predicate, which parses it as a Go expression. So the grammar
 * here is that subset of Go: calls whose arguments are Go string literals (backtick raw strings
 * or double-quoted strings with Go escapes; single quotes are rune literals and rejected),
 * combined with `!`, `&&`, `||` and parentheses, with Go's precedence (`!` > `&&` > `||`).
 * Matcher names are accepted as Traefik registers them: `Host`, `host`, `HOST` and `Host` with
 * the rest lowercased (`Pathprefix`).
 *
 * Both rule syntaxes are accepted: v3 (`Host(`a`) || Host(`b`)`) and v2 (`Host(`a`, `b`)`,
 * `HostHeader`), because a route's syntax is chosen in Traefik's static configuration, which the
 * controller cannot see.
 */
import { dnsNameProblem } from '../pki/names.ts';

export interface RuleString {
  value: string;
  /** Offset of the opening quote in the rule. */
  pos: number;
}

export type RuleNode =
  | { type: 'matcher'; name: string; args: RuleString[]; pos: number }
  | { type: 'not'; operand: RuleNode; pos: number }
  | { type: 'and' | 'or'; left: RuleNode; right: RuleNode; pos: number };

/** A rule Traefik would refuse; `position` is a 0-based offset into the rule. */
export class RuleSyntaxError extends Error {
  readonly position: number;
  constructor(message: string, position: number) {
    super(message);
    this.name = 'RuleSyntaxError';
    this.position = position;
  }
}

export type RuleProblemKind = 'syntax' | 'unsupported' | 'negated' | 'invalid-host' | 'unknown-matcher' | 'too-many-hosts';

/**
 * Limits on what a namespace user can hand the parser. A certificate holds at most 100 names
 * (Let's Encrypt's limit), and no real rule nests 64 deep or runs to 16 KiB; without them a rule
 * of 40,000 hosts blocked the event loop for over a minute.
 */
export const MAX_RULE_LENGTH = 16 * 1024;
export const MAX_NESTING = 64;
export const MAX_HOSTS = 100;

export interface RuleProblem {
  /** The matcher as written (for syntax errors: the whole rule). */
  matcher: string;
  message: string;
  kind: RuleProblemKind;
  position?: number;
}

export interface ExtractedHosts {
  hosts: string[];
  problems: RuleProblem[];
}

/** Matchers Traefik v3 and v2 know, HTTP and TCP. Used only to flag typos. */
const KNOWN_MATCHERS = [
  'Header', 'HeaderRegexp', 'Host', 'HostRegexp', 'Method', 'Path', 'PathPrefix', 'PathRegexp',
  'Query', 'QueryRegexp', 'ClientIP',
  'Headers', 'HeadersRegexp', 'HostHeader',
  'HostSNI', 'HostSNIRegexp', 'ALPN',
];
const HOST_MATCHERS = new Set(['Host', 'HostHeader', 'HostSNI']);
const REGEXP_HOST_MATCHERS = new Set(['HostRegexp', 'HostSNIRegexp']);

/** The canonical matcher name for `name`, if Traefik would accept that spelling. */
export function canonicalMatcher(name: string): string | undefined {
  for (const known of KNOWN_MATCHERS) {
    const lower = known.toLowerCase();
    const title = lower.charAt(0).toUpperCase() + lower.slice(1);
    if (name === known || name === lower || name === known.toUpperCase() || name === title) return known;
  }
  return undefined;
}

export type Token =
  | { kind: 'ident'; text: string; pos: number }
  | { kind: 'string'; value: string; pos: number }
  | { kind: '(' | ')' | ',' | '&&' | '||' | '!' | 'eof'; pos: number };

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"',
};

function describe(token: Token): string {
  switch (token.kind) {
    case 'eof': return 'the end of the rule';
    case 'ident': return `"${token.text}"`;
    case 'string': return `the string \`${token.value}\``;
    default: return `"${token.kind}"`;
  }
}

/**
 * Splits a rule into tokens, one at a time, so that a syntax error is reported where the parser
 * first sees it rather than at the first odd character further on.
 */
class Lexer {
  private readonly rule: string;
  private i = 0;

  constructor(rule: string) {
    this.rule = rule;
  }

  next(): Token {
    const rule = this.rule;
    while (/[ \t\n\r]/.test(rule.charAt(this.i))) this.i++;
    const start = this.i;
    const c = rule.charAt(start);
    if (start >= rule.length) return { kind: 'eof', pos: start };
    if (c === '(' || c === ')' || c === ',' || c === '!') {
      this.i++;
      return { kind: c, pos: start };
    }
    if (c === '&' || c === '|') {
      if (rule.charAt(start + 1) !== c) throw new RuleSyntaxError(`"${c}" is not an operator; use "${c}${c}"`, start);
      this.i += 2;
      return { kind: c === '&' ? '&&' : '||', pos: start };
    }
    if (/[A-Za-z_]/.test(c)) {
      const [text = ''] = /^[A-Za-z0-9_]+/.exec(rule.slice(start)) ?? [];
      this.i += text.length;
      return { kind: 'ident', text, pos: start };
    }
    if (c === '`') {
      const end = rule.indexOf('`', start + 1);
      if (end < 0) throw new RuleSyntaxError('unterminated `…` string: add the closing backtick', start);
      this.i = end + 1;
      // Go drops carriage returns from raw strings.
      return { kind: 'string', value: rule.slice(start + 1, end).replaceAll('\r', ''), pos: start };
    }
    if (c === '"') {
      const { value, end } = readQuoted(rule, start);
      this.i = end;
      return { kind: 'string', value, pos: start };
    }
    if (c === "'") throw new RuleSyntaxError('single quotes are not accepted; quote values with backticks (`) or double quotes', start);
    throw new RuleSyntaxError(`unexpected character "${c}"`, start);
  }
}

/** All tokens of a rule, for tools and tests. Throws RuleSyntaxError on characters Go's scanner rejects. */
export function tokenize(rule: string): Token[] {
  const lexer = new Lexer(rule);
  const tokens: Token[] = [];
  for (;;) {
    const token = lexer.next();
    tokens.push(token);
    if (token.kind === 'eof') return tokens;
  }
}

/** Reads a Go interpreted string literal starting at the `"` at `start`. */
function readQuoted(rule: string, start: number): { value: string; end: number } {
  let value = '';
  let i = start + 1;
  while (i < rule.length) {
    const c = rule.charAt(i);
    if (c === '"') return { value, end: i + 1 };
    if (c === '\n') break;
    if (c !== '\\') { value += c; i++; continue; }
    const e = rule.charAt(i + 1);
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) { value += simple; i += 2; continue; }
    const hexLength = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    const digits = hexLength > 0 ? rule.slice(i + 2, i + 2 + hexLength) : rule.slice(i + 1, i + 4);
    if (hexLength > 0 && new RegExp(`^[0-9A-Fa-f]{${hexLength}}$`).test(digits)) {
      value += String.fromCodePoint(Number.parseInt(digits, 16));
      i += 2 + hexLength;
    } else if (hexLength === 0 && /^[0-7]{3}$/.test(digits) && Number.parseInt(digits, 8) < 256) {
      value += String.fromCharCode(Number.parseInt(digits, 8));
      i += 4;
    } else {
      throw new RuleSyntaxError(`invalid escape "\\${e}" in a double-quoted string; use backticks to avoid escaping`, i);
    }
  }
  throw new RuleSyntaxError('unterminated "…" string: add the closing double quote', start);
}

/**
 * Recursive descent over the tokens: or := and ('||' and)*; and := unary ('&&' unary)*. Chains of
 * operators are loops; only parentheses recurse, and only MAX_NESTING deep.
 */
class Parser {
  private readonly lexer: Lexer;
  /** Read only when asked for, so an error is raised at the token that caused it. */
  private lookahead: Token | undefined;
  private depth = 0;

  constructor(lexer: Lexer) {
    this.lexer = lexer;
  }

  parse(): RuleNode {
    if (this.peek().kind === 'eof') throw new RuleSyntaxError('the rule is empty', 0);
    const node = this.or();
    const rest = this.peek();
    if (rest.kind !== 'eof') {
      throw new RuleSyntaxError(`expected "&&", "||" or the end of the rule, found ${describe(rest)}`, rest.pos);
    }
    return node;
  }

  private peek(): Token {
    this.lookahead ??= this.lexer.next();
    return this.lookahead;
  }

  private next(): Token {
    const token = this.peek();
    this.lookahead = undefined;
    return token;
  }

  // `or` and `and` are alike on purpose: one method per precedence level, the
  // usual shape of a recursive-descent parser; folding them would hide the grammar.
  private or(): RuleNode {
    let left = this.and();
    while (this.peek().kind === '||') {
      const op = this.next();
      left = { type: 'or', left, right: this.and(), pos: op.pos };
    }
    return left;
  }

  private and(): RuleNode {
    let left = this.unary();
    while (this.peek().kind === '&&') {
      const op = this.next();
      left = { type: 'and', left, right: this.unary(), pos: op.pos };
    }
    return left;
  }

  private unary(): RuleNode {
    // A run of "!" is read in a loop, and parentheses recurse at most MAX_NESTING deep.
    const nots: Token[] = [];
    let token = this.next();
    while (token.kind === '!') {
      nots.push(token);
      token = this.next();
    }
    let node: RuleNode;
    if (token.kind === '(') {
      if (++this.depth > MAX_NESTING) throw new RuleSyntaxError(`parentheses nest more than ${MAX_NESTING} deep; simplify the rule`, token.pos);
      const inner = this.or();
      this.depth--;
      const close = this.next();
      if (close.kind !== ')') {
        throw new RuleSyntaxError(`expected ")" to close the "(" at column ${token.pos + 1}, found ${describe(close)}`, close.pos);
      }
      node = inner;
    } else if (token.kind === 'ident') {
      node = this.call(token.text, token.pos);
    } else {
      throw new RuleSyntaxError(`expected a matcher such as Host(\`example.com\`), "!" or "(", found ${describe(token)}`, token.pos);
    }
    for (let i = nots.length - 1; i >= 0; i--) node = { type: 'not', operand: node, pos: (nots[i] as Token).pos };
    return node;
  }

  private call(name: string, pos: number): RuleNode {
    const open = this.next();
    if (open.kind !== '(') {
      throw new RuleSyntaxError(`expected "(" after ${name}, found ${describe(open)}`, open.pos);
    }
    const args: RuleString[] = [];
    for (;;) {
      const token = this.next();
      if (token.kind === ')') break;
      if (token.kind !== 'string') {
        throw new RuleSyntaxError(`expected a quoted value or ")" in ${name}(…), found ${describe(token)}; quote values with backticks`, token.pos);
      }
      args.push({ value: token.value, pos: token.pos });
      const sep = this.next();
      if (sep.kind === ')') break;
      if (sep.kind !== ',') {
        throw new RuleSyntaxError(`expected "," or ")" after a value of ${name}, found ${describe(sep)}`, sep.pos);
      }
    }
    return { type: 'matcher', name, args, pos };
  }
}

/** Parses a Traefik rule. Throws RuleSyntaxError with the offset of the first error. */
export function parseRule(rule: string): RuleNode {
  return new Parser(new Lexer(rule)).parse();
}

function show(node: { name: string; args: RuleString[] }): string {
  return `${node.name}(${node.args.map((a) => `\`${a.value}\``).join(', ')})`;
}

/** What a walk over the rule collects: hosts in order of appearance, de-duplicated in O(1). */
interface Collected {
  hosts: string[];
  seen: Set<string>;
  problems: RuleProblem[];
}

/**
 * The fix for a matcher no name can be read from: Traefik's own `spec.tls.domains`, which the shim
 * reads in place of the rules, and which can hold wildcards.
 */
const LIST_THE_NAMES = 'list the names in spec.tls.domains (main and sans, e.g. main: example.com, sans: ["*.example.com"]; a wildcard needs a DNS-01 solver), add a Host(`…`) matcher for each name, or list them in the cert-manager.io/alt-names annotation';

function problemsForHosts(node: { name: string; args: RuleString[]; pos: number }, negated: boolean, out: Collected): void {
  const { problems } = out;
  const matcher = show(node);
  if (node.args.length === 0) {
    problems.push({ matcher, kind: 'invalid-host', position: node.pos, message: `${matcher} names no host; add one, e.g. ${node.name}(\`example.com\`)` });
    return;
  }
  for (const arg of node.args) {
    const host = arg.value.toLowerCase();
    if (negated) {
      problems.push({ matcher, kind: 'negated', position: arg.pos, message: `${matcher} is negated, so ${host} is excluded by the rule and is not added to the certificate` });
    } else if (host === '*') {
      problems.push({ matcher, kind: 'unsupported', position: arg.pos, message: `${matcher} matches every name and cannot be turned into a certificate name; ${LIST_THE_NAMES}` });
    } else {
      const why = dnsNameProblem(host);
      if (why !== undefined) {
        problems.push({ matcher, kind: 'invalid-host', position: arg.pos, message: `"${arg.value}" in ${matcher} is not added to the certificate: it ${why}` });
      } else if (!out.seen.has(host)) {
        out.seen.add(host);
        out.hosts.push(host);
      }
    }
  }
}

/** Visits every matcher left to right with an explicit stack: a long chain cannot overflow it. */
function walk(root: RuleNode, out: Collected): void {
  const stack: Array<{ node: RuleNode; negated: boolean }> = [{ node: root, negated: false }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { node, negated } = item;
    switch (node.type) {
      case 'and':
      case 'or':
        stack.push({ node: node.right, negated }, { node: node.left, negated });
        break;
      case 'not':
        stack.push({ node: node.operand, negated: !negated });
        break;
      case 'matcher':
        visitMatcher(node, negated, out);
    }
  }
}

function visitMatcher(node: Extract<RuleNode, { type: 'matcher' }>, negated: boolean, out: Collected): void {
  const canonical = canonicalMatcher(node.name);
  if (canonical === undefined) {
    out.problems.push({ matcher: show(node), kind: 'unknown-matcher', position: node.pos, message: `${node.name} is not a Traefik matcher (check its spelling, e.g. Host, PathPrefix); Traefik will reject this rule` });
  } else if (HOST_MATCHERS.has(canonical)) {
    problemsForHosts(node, negated, out);
  } else if (REGEXP_HOST_MATCHERS.has(canonical) && !negated) {
    const matcher = show(node);
    out.problems.push({
      matcher, kind: 'unsupported', position: node.pos,
      message: `${matcher} cannot be turned into a certificate name; ${LIST_THE_NAMES}`,
    });
  }
}

/**
 * The names a certificate for `rule` must cover: every positive Host/HostHeader/HostSNI argument,
 * lowercased, deduplicated, in order of appearance. Everything that was left out is explained in
 * `problems`, so the caller can surface it as a Warning event.
 */
export function extractHosts(rule: string): ExtractedHosts {
  if (rule.length > MAX_RULE_LENGTH) {
    return {
      hosts: [],
      problems: [{ matcher: `${rule.slice(0, 64)}…`, kind: 'syntax', message: `the rule is ${rule.length} characters long, more than the ${MAX_RULE_LENGTH} certroute reads; split the hosts over several routes or IngressRoutes` }],
    };
  }
  let ast: RuleNode;
  try {
    ast = parseRule(rule);
  } catch (error) {
    if (!(error instanceof RuleSyntaxError)) throw error;
    return {
      hosts: [],
      problems: [{ matcher: rule, kind: 'syntax', position: error.position, message: `cannot parse the rule at column ${error.position + 1}: ${error.message}` }],
    };
  }
  const out: Collected = { hosts: [], seen: new Set(), problems: [] };
  walk(ast, out);
  if (out.hosts.length > MAX_HOSTS) {
    return {
      hosts: [],
      problems: [...out.problems, { matcher: rule.slice(0, 64), kind: 'too-many-hosts', message: `the rule names ${out.hosts.length} hosts, more than the ${MAX_HOSTS} a certificate can hold; split them over several IngressRoutes, each with its own spec.tls.secretName` }],
    };
  }
  return { hosts: out.hosts, problems: out.problems };
}
