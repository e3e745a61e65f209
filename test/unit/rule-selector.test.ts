import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentError } from '../../src/errors.js';
import { fnmatchToRegExp, parseMatcherList, parseModifyList, parseRuleFile, parseRuleFileDetailed, parseRuleLine, selectRules, type RuleFile, type SelectionPolicy } from '../../src/rules/rule-selector.js';

const rule = (sid: number, msg = `R ${sid}`, extra = ''): string => `alert http any any -> any any (msg:"${msg}"; ${extra}sid:${sid}; rev:1;)`;

const FILES: RuleFile[] = [
  { path: 'rules/emerging-malware.rules', text: [rule(1001, 'ET MALWARE one'), `# ${rule(1002, 'ET MALWARE two off')}`, '# a comment line', '', rule(1003, 'ET MALWARE heartbleed probe')].join('\n') },
  { path: 'rules/emerging-scan.rules', text: [rule(2001, 'ET SCAN one', 'metadata:deployment Perimeter, signature_severity Major; '), rule(2002, 'ET SCAN two')].join('\n') },
  { path: 'rules/emerging-deleted.rules', text: rule(9001, 'ET DELETED') },
  { path: 'rules/telemetry_sids.txt', text: '1001\n' },
];

const policy = (p: Partial<SelectionPolicy> = {}): SelectionPolicy => ({ categories: 'all', disable: [], enable: [], modify: [], ...p });

function lines(text: string): { on: number[]; off: number[] } {
  const on: number[] = [];
  const off: number[] = [];
  for (const r of parseRuleFile({ path: 'x', text })) (r.enabled ? on : off).push(r.sid);
  return { on: on.sort(), off: off.sort() };
}

describe('rule parsing', () => {
  it('reads sid, gid and rev, and treats #, ## and # -prefixed rules as disabled', () => {
    const r = parseRuleLine('alert tcp any any -> any any (msg:"x"; gid:3; sid:42; rev:7;)', 'f');
    assert.deepEqual([r?.gid, r?.sid, r?.rev, r?.enabled], [3, 42, 7, true]);
    for (const prefix of ['#', '# ', '## ']) assert.equal(parseRuleLine(`${prefix}${rule(5)}`, 'f')?.enabled, false, prefix);
  });

  it('skips comments, blank lines and rules without a sid', () => {
    assert.equal(parseRuleLine('# just a comment (with parens)', 'f'), null);
    assert.equal(parseRuleLine('', 'f'), null);
    assert.equal(parseRuleLine('alert tcp any any -> any any (msg:"no sid";)', 'f'), null);
  });

  it('joins backslash-continued lines into one rule', () => {
    const rules = parseRuleFile({ path: 'f', text: 'alert tcp any any -> any any (msg:"x"; \\\n sid:77; rev:1;)\n' });
    assert.deepEqual(rules.map((r) => r.sid), [77]);
  });

  it('matches fnmatch patterns anchored, with * ? and []', () => {
    assert.ok(fnmatchToRegExp('emerging-*.rules').test('emerging-dos.rules'));
    assert.ok(!fnmatchToRegExp('emerging-*.rules').test('xemerging-dos.rules'));
    assert.ok(fnmatchToRegExp('e?-[ab].rules').test('ex-b.rules'));
  });
});

describe('selectRules', () => {
  it('merges all categories, ignores *deleted.rules and keeps disabled rules as "# " lines', () => {
    const s = selectRules(FILES, policy());
    assert.deepEqual(lines(s.text), { on: [1001, 1003, 2001, 2002], off: [1002] });
    assert.match(s.text, /^# alert http any any -> any any \(msg:"ET MALWARE two off"/m);
    assert.doesNotMatch(s.text, /9001/);
    assert.equal(s.enabled, 4);
    assert.deepEqual(s.enabledSids, [1001, 1003, 2001, 2002]);
  });

  it('keeps only the listed categories and reports the ones the archive lacks', () => {
    const s = selectRules(FILES, policy({ categories: ['emerging-scan', 'emerging-nothere'] }));
    assert.deepEqual(lines(s.text), { on: [2001, 2002], off: [] });
    assert.deepEqual(s.missingCategories, ['emerging-nothere']);
  });

  it('disables by sid, gid:sid, re:, group: and metadata:, and enable beats disable', () => {
    const disable = parseMatcherList(['1001', '1:2002', 're:HEARTBLEED', 'group:emerging-scan', '# comment'].join('\n'), 'disable.conf');
    const enable = parseMatcherList(['1002', 'metadata: deployment perimeter'].join('\n'), 'enable.conf');
    const s = selectRules(FILES, policy({ disable, enable }));
    assert.deepEqual(lines(s.text), { on: [1002, 2001], off: [1001, 1003, 2002] });
  });

  it('accepts a bare file name and comma-separated sid lists as matchers', () => {
    const disable = parseMatcherList('emerging-malware.rules\n2001,2002\n', 'disable.conf');
    assert.deepEqual(lines(selectRules(FILES, policy({ disable })).text), { on: [], off: [1001, 1002, 1003, 2001, 2002] });
  });

  it('applies modify.conf substitutions with back-references to the matched rules only', () => {
    const modify = parseModifyList(['2001 "^alert" "drop"', 're:heartbleed "(msg:\\"ET MALWARE)" "\\1 MODIFIED"'].join('\n'), 'modify.conf');
    const s = selectRules(FILES, policy({ modify }));
    assert.match(s.text, /^drop http .*sid:2001;/m);
    assert.match(s.text, /msg:"ET MALWARE MODIFIED heartbleed probe".*sid:1003;/);
    assert.match(s.text, /^alert http .*sid:2002;/m);
  });

  it('keeps the highest rev of a duplicated sid', () => {
    const s = selectRules(
      [
        { path: 'rules/a.rules', text: 'alert tcp any any -> any any (msg:"old"; sid:5; rev:1;)' },
        { path: 'rules/b.rules', text: 'alert tcp any any -> any any (msg:"new"; sid:5; rev:2;)' },
      ],
      policy(),
    );
    assert.equal(s.total, 1);
    assert.match(s.text, /msg:"new"/);
  });

  it('refuses a matcher it does not understand, naming the file and line', () => {
    assert.throws(
      () => parseMatcherList('1001\nsomething odd\n', 'disable.conf'),
      (err: unknown) => isAgentError(err, 'ERR_CONFIG_INVALID') && /disable\.conf line 2/.test(err.message),
    );
    assert.throws(() => parseMatcherList('re:([bad', 'enable.conf'), (err: unknown) => isAgentError(err, 'ERR_CONFIG_INVALID') && /enable\.conf line 1/.test(err.message));
    assert.throws(() => parseModifyList('2001 "x"', 'modify.conf'), (err: unknown) => isAgentError(err, 'ERR_CONFIG_INVALID') && /modify\.conf line 1/.test(err.message));
  });
});

describe('rule lines that are not rules are counted, not dropped without a word', () => {
  const BROKEN = [
    '# header comment (c) 2024',
    rule(3001),
    'alert http any any -> any any (msg:"x"; content:"x" sid:2099099;)',
    '',
    'this is not a rule at all',
    `# ${rule(3002)}`,
    'alert http any any -> any any (msg:"continued"; \\',
    '  sid:3003; rev:1;)',
  ].join('\n');

  it('counts a rule with a missing ";" before sid and a line of prose, naming the first line number', () => {
    const { rules, skipped } = parseRuleFileDetailed({ path: 'rules/emerging-broken.rules', text: BROKEN });
    assert.deepEqual(
      rules.map((r) => [r.sid, r.enabled]),
      [
        [3001, true],
        [3002, false],
        [3003, true],
      ],
    );
    assert.deepEqual(skipped, { file: 'rules/emerging-broken.rules', count: 2, firstLine: 3 });
  });

  it('reports nothing for a file of rules, comments and blank lines', () => {
    assert.equal(parseRuleFileDetailed(FILES[0]!).skipped, null);
  });

  it('selectRules lists skipped lines per selected file and every SID written', () => {
    const sel = selectRules([...FILES, { path: 'rules/emerging-broken.rules', text: BROKEN }], policy({ disable: parseMatcherList('3001\n', 'disable') }));
    assert.deepEqual(sel.skipped, [{ file: 'rules/emerging-broken.rules', count: 2, firstLine: 3 }]);
    assert.deepEqual(sel.allSids, [1001, 1002, 1003, 2001, 2002, 3001, 3002, 3003]);
    assert.ok(!sel.text.includes('2099099'), 'the broken rule is not written');
  });
});
