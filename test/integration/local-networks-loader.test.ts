import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { interfaceNetworks, loadLocalNetworks, networkCidr } from '../../src/telemetry/local-networks-loader.js';
import { PRIVATE_RANGES } from '../../src/telemetry/local-networks.js';
import { createLogger } from '../../src/logger.js';
import { requireOrSkip } from '../helpers/requirements.js';

function capturingLogger(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { log: createLogger('debug', 'json', stream), lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'localnets-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const YAML = '%YAML 1.1\n---\nvars:\n  address-groups:\n    HOME_NET: "[198.18.0.0/15,!198.18.0.9,$LAB]"\n    LAB: "2001:db8:1::/48"\n    EXTERNAL_NET: "!$HOME_NET"\n';

test('joins HOME_NET from suricata.yaml, ETPRO_HOME_NET, interface networks and private ranges', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'suricata.yaml'), YAML);
  const cap = capturingLogger();
  const r = await loadLocalNetworks({ suricataYaml: join(dir, 'suricata.yaml'), homeNet: ['203.0.113.0/25', '2001:db8:2::7'], maskInterfaceNetworks: true, maskPrivateRanges: true }, cap.log);
  assert.equal(r.homeNetSource, 'suricata.yaml');
  assert.deepEqual(r.warnings, []);
  const d = r.networks.describe();
  assert.deepEqual(d.map((s) => s.source), ['HOME_NET (suricata.yaml)', 'ETPRO_HOME_NET', 'interfaces', 'private ranges']);
  assert.deepEqual(d[0]!.networks, ['[198.18.0.0/15,!198.18.0.9,$LAB]']);
  assert.deepEqual(d[1]!.networks, ['203.0.113.0/25', '2001:db8:2::7']);
  assert.deepEqual(d[3]!.networks, [...PRIVATE_RANGES]);
  const cases: [string, boolean][] = [
    ['198.19.1.1', true],
    ['198.18.0.9', false],
    ['2001:0db8:0001:0000:0000:0000:0000:0001', true],
    ['203.0.113.5', true],
    ['203.0.113.200', false],
    ['2001:db8:2::7', true],
    ['10.1.2.3', true],
    ['127.0.0.1', true],
    ['8.8.8.8', false],
  ];
  for (const [ip, inside] of cases) assert.equal(r.networks.contains(ip), inside, ip);
  assert.ok(cap.lines().some((l) => l['message'] === 'Local networks loaded.' && l['homeNetSource'] === 'suricata.yaml'));
});

test('says at start that no HOME_NET could be read when suricata.yaml is missing, and still masks private ranges and interface networks', async (t) => {
  const dir = tempDir(t);
  const cap = capturingLogger();
  const r = await loadLocalNetworks({ suricataYaml: join(dir, 'missing.yaml'), homeNet: [], maskInterfaceNetworks: true, maskPrivateRanges: true }, cap.log);
  assert.equal(r.homeNetSource, 'none');
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /No HOME_NET could be read \(.*missing\.yaml cannot be read \(ENOENT\)\); only private ranges and interface networks are masked\./);
  assert.ok(cap.lines().some((l) => l['level'] === 'warn' && l['message'] === r.warnings[0]));
  assert.equal(r.networks.contains('192.168.1.1'), true);
});

test('names ETPRO_HOME_NET among what is masked when suricata.yaml is missing', async (t) => {
  const dir = tempDir(t);
  const r = await loadLocalNetworks({ suricataYaml: join(dir, 'missing.yaml'), homeNet: ['203.0.113.0/24'], maskInterfaceNetworks: false, maskPrivateRanges: true }, capturingLogger().log);
  assert.equal(r.homeNetSource, 'none');
  assert.match(r.warnings[0]!, /only ETPRO_HOME_NET and private ranges are masked/);
  assert.equal(r.networks.contains('203.0.113.1'), true);
});

test('warns that nothing is masked when every source is off or missing', async (t) => {
  const dir = tempDir(t);
  const r = await loadLocalNetworks({ suricataYaml: join(dir, 'missing.yaml'), homeNet: [], maskInterfaceNetworks: false, maskPrivateRanges: false }, capturingLogger().log);
  assert.match(r.warnings[0]!, /no address is masked at all/);
  assert.equal(r.networks.isEmpty(), true);
  assert.equal(r.networks.contains('10.0.0.1'), false);
});

test('turns a HOME_NET reference loop into a warning naming the variables and goes on without HOME_NET', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'suricata.yaml'), 'vars:\n  address-groups:\n    HOME_NET: "[$SMTP_SERVERS,192.0.2.0/24]"\n    SMTP_SERVERS: "$HOME_NET"\n');
  const r = await loadLocalNetworks({ suricataYaml: join(dir, 'suricata.yaml'), homeNet: [], maskInterfaceNetworks: false, maskPrivateRanges: true }, capturingLogger().log);
  assert.equal(r.homeNetSource, 'none');
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /\$HOME_NET -> \$SMTP_SERVERS -> \$HOME_NET/);
  assert.match(r.warnings[0]!, /only private ranges are masked/);
  assert.equal(r.networks.contains('192.0.2.1'), false);
});

test('reports a suricata.yaml without HOME_NET and a bad ETPRO_HOME_NET entry as warnings', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'suricata.yaml'), '%YAML 1.1\n---\nrule-files:\n  - suricata.rules\n');
  const r = await loadLocalNetworks({ suricataYaml: join(dir, 'suricata.yaml'), homeNet: ['10.0.0.0/40', '203.0.113.9'], maskInterfaceNetworks: false, maskPrivateRanges: false }, capturingLogger().log);
  assert.equal(r.homeNetSource, 'none');
  assert.ok(r.warnings.some((w) => /defines no vars.address-groups|no HOME_NET/.test(w)));
  assert.ok(r.warnings.some((w) => w.includes('"10.0.0.0/40"')));
  assert.ok(r.warnings.some((w) => /only ETPRO_HOME_NET is masked\./.test(w)));
  assert.equal(r.networks.contains('203.0.113.9'), true);
});

test('interface networks cover every address of every interface of this host', async () => {
  const cidrs = await interfaceNetworks();
  assert.ok(cidrs.length > 0);
  assert.ok(cidrs.includes('127.0.0.0/8'), `loopback missing from ${cidrs.join(', ')}`);
  const r = await loadLocalNetworks({ suricataYaml: '/nonexistent/suricata.yaml', homeNet: [], maskInterfaceNetworks: true, maskPrivateRanges: false }, capturingLogger().log);
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) assert.equal(r.networks.contains(a.address.split('%')[0]!), true, a.address);
  }
});

const cidrRows: [address: string, netmask: string, cidr: string | null][] = [
  ['192.0.2.2', '255.255.255.0', '192.0.2.0/24'],
  ['127.0.0.1', '255.0.0.0', '127.0.0.0/8'],
  ['fd00::2', 'ffff:ffff:ffff:ffff::', 'fd00::/64'],
  ['fe80::fc:ff:fe00:1%eth0', 'ffff:ffff:ffff:ffff::', 'fe80::/64'],
  ['::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '::1/128'],
  ['10.0.0.1', '255.0.255.0', null],
  ['10.0.0.1', '0.0.0.0', null],
  ['garbage', '255.0.0.0', null],
];
for (const [address, netmask, cidr] of cidrRows) {
  test(`networkCidr turns ${address} with ${netmask} into ${String(cidr)}`, () => {
    assert.equal(networkCidr(address, netmask), cidr);
  });
}

test('reads HOME_NET from the packaged suricata.yaml', async (t) => {
  const path = '/etc/suricata/suricata.yaml';
  if (!requireOrSkip(t, existsSync(path), `${path} (installed with Suricata)`)) return;
  const r = await loadLocalNetworks({ suricataYaml: path, homeNet: [], maskInterfaceNetworks: false, maskPrivateRanges: false }, capturingLogger().log);
  assert.equal(r.homeNetSource, 'suricata.yaml');
  assert.deepEqual(r.warnings, []);
  assert.equal(r.networks.describe()[0]!.source, 'HOME_NET (suricata.yaml)');
});
