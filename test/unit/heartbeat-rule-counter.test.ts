import assert from 'node:assert/strict';
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RuleCounter, enabledSids, parseSidList } from '../../src/heartbeat/rule-counter.js';

const RULES = [
  'alert http any any -> any any (msg:"one"; sid:1; rev:1;)',
  '# alert http any any -> any any (msg:"commented"; sid:2; rev:1;)',
  '#alert http any any -> any any (msg:"commented"; sid:3; rev:1;)',
  ' alert http any any -> any any (msg:"leading space is skipped by Suricata"; sid:4; rev:1;)',
  '\talert http any any -> any any (msg:"leading tab"; sid:5; rev:1;)',
  'drop tcp any any -> any any (msg:"continued"; \\',
  '  content:"x"; sid:6; rev:1;)',
  'alert tcp any any -> any any (msg:"sid in msg sid:99; is not a sid"; sid: 7 ; rev:1;)',
  'alert tcp any any -> any any (msg:"duplicate"; sid:1; rev:2;)',
  '',
  'alert tcp any any -> any any (msg:"no sid"; rev:1;)',
].join('\n');

describe('enabled rule count', () => {
  it('counts distinct SIDs of uncommented rules as Suricata loads them', () => {
    assert.deepEqual([...enabledSids(RULES)].sort((a, b) => a - b), [1, 6, 7]);
  });

  it('reads telemetry_sids.txt one SID a line, ignoring blanks and comments', () => {
    assert.deepEqual([...parseSidList('2099001\n\n# comment\n 2099002 \r\nabc\n')], [2099001, 2099002]);
  });

  it('does not parse an unchanged rule file again, and does when its mtime changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rule-counter-'));
    const file = join(dir, 'suricata.rules');
    writeFileSync(file, RULES);
    const counter = new RuleCounter();
    assert.equal((await counter.enabledSids([file])).size, 3);
    assert.equal((await counter.enabledSids([file])).size, 3);
    assert.equal(counter.parses, 1);
    writeFileSync(file, `${RULES}\nalert ip any any -> any any (msg:"new"; sid:8; rev:1;)\n`);
    utimesSync(file, new Date(), new Date(Date.now() + 5_000));
    assert.equal((await counter.enabledSids([file])).size, 4);
    assert.equal(counter.parses, 2);
  });

  it('rejects with ENOENT for a rule file that vanished', async () => {
    await assert.rejects(new RuleCounter().enabledSids([join(tmpdir(), 'gone-dir', 'x.rules')]), { code: 'ENOENT' });
  });
});
