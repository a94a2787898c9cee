/**
 * Traefik rule parsing, as the IngressRoute shim uses it: which names a certificate must cover,
 * and what is explained back to the user when a matcher cannot become a certificate name.
 */
import test from 'ava';
import { dnsNameProblem } from '../../src/pki/names.ts';
import { canonicalMatcher, extractHosts, MAX_HOSTS, MAX_NESTING, MAX_RULE_LENGTH, parseRule, RuleSyntaxError, type RuleProblemKind } from '../../src/traefik/rules.ts';

interface HostCase {
  name: string;
  rule: string;
  hosts: string[];
  problems?: RuleProblemKind[];
}

const hostCases: HostCase[] = [
  { name: 'a v3 rule joining two Host matchers with || covers both names', rule: 'Host(`a.test`) || Host(`b.test`)', hosts: ['a.test', 'b.test'] },
  { name: 'a v2 rule with two names in one Host matcher covers both names', rule: 'Host(`a.test`, `b.test`)', hosts: ['a.test', 'b.test'] },
  { name: 'a v2 rule may end its argument list with a comma, as Go allows', rule: 'Host(`a.test`,`b.test`,)', hosts: ['a.test', 'b.test'] },
  { name: 'Host combined with PathPrefix by && covers the host only', rule: 'Host(`a.test`) && PathPrefix(`/x`)', hosts: ['a.test'] },
  { name: 'nested parentheses are followed to every Host', rule: '((Host(`a.test`) || (Host(`b.test`))) && (PathPrefix(`/api`) || Path(`/`)))', hosts: ['a.test', 'b.test'] },
  { name: '&& binds tighter than ||, and both sides of || count', rule: 'Host(`a.test`) && Path(`/a`) || Host(`b.test`) && Path(`/b`)', hosts: ['a.test', 'b.test'] },
  { name: 'double-quoted values are read as Go strings, escapes included', rule: 'Host("a.test") || Host("b\\x2etest")', hosts: ['a.test', 'b.test'] },
  { name: 'a rule may span several lines', rule: 'Host(`a.test`)\n  || Host(`b.test`)', hosts: ['a.test', 'b.test'] },
  { name: 'uppercase hosts are lowercased', rule: 'Host(`WWW.Example.TEST`)', hosts: ['www.example.test'] },
  { name: 'a name that appears twice is listed once, where it first appears', rule: 'Host(`b.test`) || Host(`a.test`) || Host(`B.test`, `a.test`)', hosts: ['b.test', 'a.test'] },
  { name: 'matcher names are accepted in the spellings Traefik registers', rule: 'host(`a.test`) || HOST(`b.test`) && pathprefix(`/`) || Hostheader(`c.test`)', hosts: ['a.test', 'b.test', 'c.test'] },
  { name: 'the v2 HostHeader matcher counts as Host', rule: 'HostHeader(`a.test`)', hosts: ['a.test'] },
  { name: 'HostSNI names count, for TCP routes', rule: 'HostSNI(`a.test`)', hosts: ['a.test'] },
  { name: 'a wildcard name that is a valid DNS wildcard is kept', rule: 'Host(`*.a.test`)', hosts: ['*.a.test'] },
  { name: 'a negated Host is excluded by the rule and is not a certificate name', rule: 'Host(`a.test`) && !Host(`admin.a.test`)', hosts: ['a.test'], problems: ['negated'] },
  { name: 'negation reaches through parentheses', rule: '!(Host(`a.test`) || Host(`b.test`)) && Host(`c.test`)', hosts: ['c.test'], problems: ['negated', 'negated'] },
  { name: 'a double negation is positive', rule: '!!Host(`a.test`)', hosts: ['a.test'] },
  { name: 'HostRegexp cannot become a certificate name and says so', rule: 'HostRegexp(`^.+\\.a\\.test$`)', hosts: [], problems: ['unsupported'] },
  { name: 'HostRegexp beside a Host keeps the Host', rule: 'Host(`a.test`) || HostRegexp(`{sub:[a-z]+}.a.test`)', hosts: ['a.test'], problems: ['unsupported'] },
  { name: 'HostSNIRegexp cannot become a certificate name and says so', rule: 'HostSNIRegexp(`^.+$`)', hosts: [], problems: ['unsupported'] },
  { name: 'HostSNI(`*`) matches everything and is not a certificate name', rule: 'HostSNI(`*`)', hosts: [], problems: ['unsupported'] },
  { name: 'a name that is not a DNS name is left out and explained', rule: 'Host(`a_b.test`) || Host(`a.test:8080`) || Host(`c.test`)', hosts: ['c.test'], problems: ['invalid-host', 'invalid-host'] },
  { name: 'a wildcard anywhere but the leftmost label is left out', rule: 'Host(`a.*.test`, `**.test`)', hosts: [], problems: ['invalid-host', 'invalid-host'] },
  { name: 'an internationalized name must be written in punycode', rule: 'Host(`bücher.test`) || Host(`xn--bcher-kva.test`)', hosts: ['xn--bcher-kva.test'], problems: ['invalid-host'] },
  { name: 'Host with no argument names nothing', rule: 'Host()', hosts: [], problems: ['invalid-host'] },
  { name: 'a misspelt matcher is reported', rule: 'Hots(`a.test`)', hosts: [], problems: ['unknown-matcher'] },
  { name: 'a rule with only paths has no hosts and no problems', rule: 'PathPrefix(`/`)', hosts: [] },
];

for (const c of hostCases) {
  test(c.name, (t) => {
    const result = extractHosts(c.rule);
    t.deepEqual(result.hosts, c.hosts);
    t.deepEqual(result.problems.map((p) => p.kind), c.problems ?? []);
  });
}

const garbage: Array<{ name: string; rule: string; column: number; says: RegExp }> = [
  { name: 'an empty rule is a syntax error', rule: '', column: 1, says: /empty/ },
  { name: 'a missing closing parenthesis is a syntax error at the end', rule: 'Host(`a.test`', column: 14, says: /"," or "\)"/ },
  { name: 'an unterminated backtick string is a syntax error where it starts', rule: 'Host(`a.test)', column: 6, says: /closing backtick/ },
  { name: 'an unterminated double-quoted string is a syntax error', rule: 'Host("a.test)', column: 6, says: /closing double quote/ },
  { name: 'single quotes are a syntax error that names the fix', rule: "Host('a.test')", column: 6, says: /backticks/ },
  { name: 'a single & is a syntax error that names the fix', rule: 'Host(`a.test`) & Path(`/`)', column: 16, says: /"&&"/ },
  { name: 'an unquoted value is a syntax error', rule: 'Host(a.test)', column: 6, says: /quoted value/ },
  { name: 'two matchers with no operator between them are a syntax error', rule: 'Host(`a.test`) Path(`/`)', column: 16, says: /"&&", "\|\|"/ },
  { name: 'a dangling operator is a syntax error', rule: 'Host(`a.test`) ||', column: 18, says: /end of the rule/ },
  { name: 'an unclosed group is a syntax error', rule: '(Host(`a.test`) || Host(`b.test`)', column: 34, says: /close the "\(" at column 1/ },
  { name: 'an unknown escape in a double-quoted string is a syntax error', rule: 'Host("a\\qb")', column: 8, says: /escape/ },
  { name: 'random text is a syntax error', rule: 'give me a certificate', column: 6, says: /expected "\("/ },
];

for (const c of garbage) {
  test(c.name, (t) => {
    const result = extractHosts(c.rule);
    t.deepEqual(result.hosts, []);
    t.is(result.problems.length, 1);
    const [problem] = result.problems;
    t.is(problem?.kind, 'syntax');
    t.is(problem?.position, c.column - 1);
    t.regex(problem?.message ?? '', new RegExp(`column ${c.column}:`));
    t.regex(problem?.message ?? '', c.says);
  });
}

test('the HostRegexp warning says what to do, concretely', (t) => {
  const [problem] = extractHosts('HostRegexp(`^.+\\.a\\.test$`)').problems;
  t.is(problem?.matcher, 'HostRegexp(`^.+\\.a\\.test$`)');
  t.regex(problem?.message ?? '', /cannot be turned into a certificate name/);
  t.regex(problem?.message ?? '', /list the names in spec\.tls\.domains \(main and sans/);
  t.regex(problem?.message ?? '', /add a Host\(`…`\) matcher/);
  t.regex(problem?.message ?? '', /cert-manager\.io\/alt-names/);
});

test('parseRule builds a tree with || at the root and && below it', (t) => {
  const ast = parseRule('Host(`a`) && Path(`/`) || !Host(`b`)');
  t.is(ast.type, 'or');
  if (ast.type !== 'or') return;
  t.is(ast.left.type, 'and');
  t.is(ast.right.type, 'not');
  t.like(ast.right, { operand: { type: 'matcher', name: 'Host', args: [{ value: 'b' }] } });
});

test('parseRule throws a RuleSyntaxError that carries the offset', (t) => {
  const error = t.throws(() => parseRule('Host(`a`) ||| Host(`b`)'), { instanceOf: RuleSyntaxError });
  t.is(error?.position, 12);
});

test('raw strings keep backslashes as written, as Go raw strings do', (t) => {
  t.like(parseRule('PathRegexp(`^/a\\d+$`)'), { type: 'matcher', args: [{ value: '^/a\\d+$' }] });
});

test('canonicalMatcher accepts Traefik spellings and rejects others', (t) => {
  t.is(canonicalMatcher('PathPrefix'), 'PathPrefix');
  t.is(canonicalMatcher('pathprefix'), 'PathPrefix');
  t.is(canonicalMatcher('PATHPREFIX'), 'PathPrefix');
  t.is(canonicalMatcher('Pathprefix'), 'PathPrefix');
  t.is(canonicalMatcher('pathPrefix'), undefined);
});

test('dnsNameProblem accepts RFC 1123 names up to 253 characters and rejects longer ones', (t) => {
  const label = 'a'.repeat(63);
  const longest = [label, label, label, 'a'.repeat(61)].join('.');
  t.is(longest.length, 253);
  t.is(dnsNameProblem(longest), undefined);
  t.regex(dnsNameProblem(`${longest}a`) ?? '', /253/);
  t.regex(dnsNameProblem(`${'a'.repeat(64)}.test`) ?? '', /not a DNS label/);
  t.regex(dnsNameProblem('-a.test') ?? '', /not a DNS label/);
  t.is(dnsNameProblem('10.0.0.1'), undefined);
});

// ── Hostile rules: a namespace user writes the rule, the leader parses it ──

const hostChain = (n: number) => Array.from({ length: n }, (_, i) => `Host(\`h${i}.test\`)`).join(' || ');

test('a rule of 40,000 hosts is refused as too long, and no host is taken from it', (t) => {
  // It once took over a minute of one core (a quadratic de-duplication and a recursive walk).
  const rule = hostChain(40_000);
  const { hosts, problems } = extractHosts(rule);
  t.deepEqual(hosts, []);
  t.is(problems.length, 1);
  t.like(problems[0], { kind: 'syntax' });
  t.regex(problems[0]?.message ?? '', new RegExp(`the rule is ${rule.length} characters long, more than the ${MAX_RULE_LENGTH}`));
});

test('a rule naming more hosts than a certificate can hold is refused with one problem', (t) => {
  const { hosts, problems } = extractHosts(hostChain(MAX_HOSTS + 1));
  t.deepEqual(hosts, []);
  t.deepEqual(problems.map((p) => p.kind), ['too-many-hosts']);
  t.regex(problems[0]?.message ?? '', /names 101 hosts, more than the 100 a certificate can hold/);
  t.is(extractHosts(hostChain(MAX_HOSTS)).hosts.length, MAX_HOSTS);
});

test('a long run of "!" is read without recursing on it', (t) => {
  // 15,000 nested calls overflowed the stack before; the loop reads them flat.
  const { hosts, problems } = extractHosts(`${'!'.repeat(15_000)}Host(\`a.test\`)`);
  t.deepEqual(hosts, ['a.test'], 'an even number of "!" cancels out');
  t.deepEqual(problems, []);
  t.like(extractHosts(`${'!'.repeat(15_001)}Host(\`a.test\`)`).problems[0], { kind: 'negated' });
});

test('parentheses nested deeper than the limit are a syntax problem, not a stack overflow', (t) => {
  const deep = (n: number) => `${'('.repeat(n)}Host(\`a.test\`)${')'.repeat(n)}`;
  t.deepEqual(extractHosts(deep(MAX_NESTING)).hosts, ['a.test']);
  const { hosts, problems } = extractHosts(deep(MAX_NESTING + 1));
  t.deepEqual(hosts, []);
  t.like(problems[0], { kind: 'syntax' });
  t.regex(problems[0]?.message ?? '', /parentheses nest more than 64 deep/);
});

test('a long chain of hosts, repeated, keeps each host once in order of appearance', (t) => {
  const rule = `${hostChain(50)} || ${hostChain(50)}`;
  t.deepEqual(extractHosts(rule).hosts, Array.from({ length: 50 }, (_, i) => `h${i}.test`));
});
