import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { requireOrSkip } from '../helpers/requirements.js';
import { modeFromCaptureMode, parseSuricataYaml, readSuricataYaml, resolveRuleFiles } from '../../src/heartbeat/suricata-yaml.js';

const HEADER = '%YAML 1.1\n---\n';
const PACKAGED = '/etc/suricata/suricata.yaml';

describe('suricata.yaml: rules and IPS/IDS mode', () => {
  it('reads the packaged suricata.yaml as IDS with its default-rule-path and rule-files', (t) => {
    if (!requireOrSkip(t, existsSync(PACKAGED), `the packaged ${PACKAGED} (Suricata installed)`)) return;
    const info = parseSuricataYaml(readFileSync(PACKAGED, 'utf8'), PACKAGED);
    assert.equal(info.mode, 'IDS');
    assert.equal(info.defaultRulePath, '/var/lib/suricata/rules');
    assert.deepEqual(info.ruleFiles, ['suricata.rules']);
  });

  it('is IPS when an af-packet interface has copy-mode ips with a copy-iface', () => {
    const info = parseSuricataYaml(
      `${HEADER}af-packet:\n  - interface: eth0\n    copy-mode: ips\n    copy-iface: eth1\n  - interface: eth1\n    copy-mode: ips\n    copy-iface: eth0\n  - interface: default\n`,
    );
    assert.equal(info.mode, 'IPS');
    assert.match(info.modeReason, /eth0.*copy-iface eth1/);
  });

  it('is IDS when copy-mode ips has no copy-iface, or copy-mode is tap', () => {
    assert.equal(parseSuricataYaml(`${HEADER}af-packet:\n  - interface: eth0\n    copy-mode: ips\n`).mode, 'IDS');
    assert.equal(parseSuricataYaml(`${HEADER}af-packet:\n  - interface: eth0\n    copy-mode: tap\n    copy-iface: eth1\n`).mode, 'IDS');
  });

  it('is IDS when only an nfq or ipfw section is present (those are chosen on the command line)', () => {
    assert.equal(parseSuricataYaml(`${HEADER}nfq:\n  mode: accept\nipfw:\n  ipfw-reinjection-rule-number: 5500\n`).mode, 'IDS');
  });

  it('lets the running capture mode decide: NFQ and IPFW are IPS, pcap is IDS even with an af-packet IPS entry', () => {
    const ips = parseSuricataYaml(`${HEADER}af-packet:\n  - interface: eth0\n    copy-mode: ips\n    copy-iface: eth1\n`);
    const ids = parseSuricataYaml(`${HEADER}af-packet:\n  - interface: eth0\n`);
    assert.equal(modeFromCaptureMode('NFQ', ids), 'IPS');
    assert.equal(modeFromCaptureMode('IPFW', null), 'IPS');
    assert.equal(modeFromCaptureMode('AF_PACKET_DEV', ips), 'IPS');
    assert.equal(modeFromCaptureMode('AF_PACKET_DEV', ids), 'IDS');
    assert.equal(modeFromCaptureMode('PCAP_DEV', ips), 'IDS');
    assert.equal(modeFromCaptureMode(null, ips), 'IPS');
    assert.equal(modeFromCaptureMode(null, null), null);
  });

  it('accepts yes/no in YAML 1.2 spelling too and ignores blank rule-files entries', () => {
    const info = parseSuricataYaml(`default-rule-path: /rules\nrule-files:\n  - a.rules\n  - ''\n  - "*.rules"\n`);
    assert.deepEqual(info.ruleFiles, ['a.rules', '*.rules']);
    assert.equal(info.defaultRulePath, '/rules');
  });

  it('rejects text that is not YAML with ERR_SURICATA_YAML_INVALID naming the file', () => {
    assert.throws(() => parseSuricataYaml('a: [1, 2\nb: {', '/etc/x/suricata.yaml'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_SURICATA_YAML_INVALID');
      assert.match(err.message, /\/etc\/x\/suricata\.yaml/);
      return true;
    });
    assert.throws(() => parseSuricataYaml('- just\n- a list\n'), { code: 'ERR_SURICATA_YAML_INVALID' });
  });

  it('reports a missing file as ERR_SURICATA_YAML_MISSING', async () => {
    await assert.rejects(readSuricataYaml(join(tmpdir(), 'nope-suricata', 'suricata.yaml')), { code: 'ERR_SURICATA_YAML_MISSING' });
  });
});

describe('rule files Suricata loads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rule-files-'));
  mkdirSync(join(dir, 'other'));
  for (const f of ['suricata.rules', 'emerging-a.rules', 'emerging-b.rules', 'notes.txt']) writeFileSync(join(dir, f), '');
  writeFileSync(join(dir, 'other', 'local.rules'), '');

  it('joins relative entries to default-rule-path, keeps absolute ones, expands globs and drops missing files', async () => {
    const files = await resolveRuleFiles(
      { defaultRulePath: dir, ruleFiles: ['suricata.rules', 'emerging-*.rules', join(dir, 'other', 'local.rules'), 'missing.rules'] },
      '/nowhere',
    );
    assert.deepEqual(files, [join(dir, 'suricata.rules'), join(dir, 'emerging-a.rules'), join(dir, 'emerging-b.rules'), join(dir, 'other', 'local.rules')]);
  });

  it('falls back to every *.rules file in the rules dir without a yaml', async () => {
    const files = await resolveRuleFiles(null, dir);
    assert.deepEqual(files, ['emerging-a.rules', 'emerging-b.rules', 'suricata.rules'].map((f) => join(dir, f)));
  });

  it('resolves rule-files against the rules dir when the yaml sets no default-rule-path', async () => {
    assert.deepEqual(await resolveRuleFiles({ defaultRulePath: null, ruleFiles: ['suricata.rules'] }, dir), [join(dir, 'suricata.rules')]);
  });
});
