import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressSet, parseIp } from '../../src/telemetry/address-set.js';
import { LocalNetworks, PRIVATE_RANGES } from '../../src/telemetry/local-networks.js';
import { isAgentError } from '../../src/errors.js';

const set = AddressSet.fromTerms(['192.0.2.0/24', '!192.0.2.5', '2001:db8::/32', '10.0.0.1-10.0.0.20', '::1']);

const lookups: [what: string, ip: string, expected: boolean][] = [
  ['IPv4 inside a CIDR', '192.0.2.4', true],
  ['IPv4 excluded by an exception', '192.0.2.5', false],
  ['IPv4 outside', '192.0.3.1', false],
  ['first address of a range', '10.0.0.1', true],
  ['last address of a range', '10.0.0.20', true],
  ['just past a range', '10.0.0.21', false],
  ['Suricata-style fully expanded IPv6', '2001:0db8:0000:0000:0000:0000:0000:0001', true],
  ['compressed IPv6', '2001:db8::1', true],
  ['upper-case IPv6', '2001:DB8::ABCD', true],
  ['IPv6 outside', '2001:0db9:0000:0000:0000:0000:0000:0001', false],
  ['bracketed IPv6 as in an HTTP Host header', '[2001:db8::1]', true],
  ['bracketed loopback', '[::1]', true],
  ['expanded loopback', '0000:0000:0000:0000:0000:0000:0000:0001', true],
  ['IPv4-mapped dotted', '::ffff:192.0.2.7', true],
  ['IPv4-mapped fully expanded hex, on an exception', '0000:0000:0000:0000:0000:ffff:c000:0205', false],
  ['IPv4-mapped compressed hex', '::ffff:c000:207', true],
  ['IPv4-mapped outside', '::ffff:8.8.8.8', false],
  ['a host name', 'intranet.example.net', false],
  ['an integer (not read as an IPv4 address)', '3221225988', false],
  ['a short IPv4 form', '192.0.2', false],
  ['an octal-looking IPv4', '0300.0.2.4', false],
  ['an unclosed bracket', '[::1', false],
  ['empty text', '', false],
  ['garbage with colons', ':::1::', false],
  ['an absurdly long text', `${'1:'.repeat(500)}1`, false],
];
for (const [what, ip, expected] of lookups) {
  test(`AddressSet.contains answers ${expected} for ${what}`, () => {
    assert.equal(set.contains(ip), expected);
  });
}

test('AddressSet.contains answers false for non-strings without throwing', () => {
  assert.equal(set.contains(undefined as unknown as string), false);
  assert.equal(set.contains(42 as unknown as string), false);
});

const terms: [term: string, cidrs: string[]][] = [
  ['any', ['0.0.0.0/0', '::/0']],
  ['10.1.2.3', ['10.1.2.3/32']],
  ['10.1.2.3/8', ['10.0.0.0/8']],
  ['10.1.2.3/255.255.0.0', ['10.1.0.0/16']],
  ['192.0.2.0-192.0.2.3', ['192.0.2.0/30']],
  ['192.0.2.1-192.0.2.4', ['192.0.2.1/32', '192.0.2.2/31', '192.0.2.4/32']],
  ['2001:db8::/32', ['2001:db8::/32']],
  ['2001:0db8:0000:0000:0000:0000:0000:0001', ['2001:db8::1/128']],
  ['2001:db8::1-2001:db8::2', ['2001:db8::1/128', '2001:db8::2/128']],
  ['::ffff:10.0.0.0/104', ['10.0.0.0/8']],
  ['::ffff:10.1.2.3', ['10.1.2.3/32']],
];
for (const [term, cidrs] of terms) {
  test(`AddressSet.fromTerm reads ${JSON.stringify(term)}`, () => {
    assert.deepEqual(AddressSet.fromTerm(term).toCidrs(), cidrs);
  });
}

const badTerms: [term: string, problem: RegExp][] = [
  ['192.0.2.0/33', /prefix length/],
  ['2001:db8::/129', /prefix length/],
  ['10.0.0.0/255.0.255.0', /contiguous netmask/],
  ['1.2.3', /not an IPv4 or IPv6 address/],
  ['10.0.0.5-10.0.0.1', /start is above its end/],
  ['::1-10.0.0.1', /different IP families/],
  ['foo/8', /not an IPv4 address/],
  ['', /empty/],
];
for (const [term, problem] of badTerms) {
  test(`AddressSet.fromTerm rejects ${JSON.stringify(term)} with ERR_ADDRESS_INVALID naming it`, () => {
    assert.throws(
      () => AddressSet.fromTerm(term),
      (err: unknown) => isAgentError(err, 'ERR_ADDRESS_INVALID') && err.message.includes(JSON.stringify(term)) && problem.test(err.message),
    );
  });
}

test('AddressSet.fromTerms with only exceptions means everything except them', () => {
  const s = AddressSet.fromTerms(['!10.0.0.0/8']);
  assert.equal(s.contains('10.1.1.1'), false);
  assert.equal(s.contains('11.1.1.1'), true);
  assert.equal(s.contains('2001:db8::1'), true);
});

test('AddressSet union and subtract merge adjacent and overlapping intervals', () => {
  const a = AddressSet.fromTerms(['10.0.0.0/25', '10.0.0.128/25', '10.0.0.64/26']);
  assert.deepEqual(a.toCidrs(), ['10.0.0.0/24']);
  assert.deepEqual(a.subtract(AddressSet.fromTerm('10.0.0.0/25')).toCidrs(), ['10.0.0.128/25']);
  assert.equal(a.subtract(a).isEmpty(), true);
});

test('parseIp reports IPv4-mapped addresses as IPv4 with the mapped flag', () => {
  assert.deepEqual(parseIp('::ffff:10.1.2.3'), { family: 4, value: 0x0a010203n, mapped: true });
  assert.deepEqual(parseIp('10.1.2.3'), { family: 4, value: 0x0a010203n, mapped: false });
  assert.equal(parseIp('example.com'), null);
});

test('PRIVATE_RANGES is exactly the private, loopback, link-local, CGNAT and ULA ranges', () => {
  assert.deepEqual([...PRIVATE_RANGES].sort(), ['10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '::1/128', 'fc00::/7', 'fe80::/10'].sort());
});

test('LocalNetworks is the union of its sources and describes each source', () => {
  const nets = new LocalNetworks([
    { source: 'HOME_NET (suricata.yaml)', set: AddressSet.fromTerms(['198.18.0.0/15', '!198.18.0.9']), networks: ['[198.18.0.0/15,!198.18.0.9]'] },
    LocalNetworks.source('private ranges', PRIVATE_RANGES),
  ]);
  assert.equal(nets.contains('198.18.0.1'), true);
  assert.equal(nets.contains('198.18.0.9'), false);
  assert.equal(nets.contains('10.9.9.9'), true);
  assert.equal(nets.contains('8.8.8.8'), false);
  assert.deepEqual(nets.describe(), [
    { source: 'HOME_NET (suricata.yaml)', networks: ['[198.18.0.0/15,!198.18.0.9]'] },
    { source: 'private ranges', networks: [...PRIVATE_RANGES] },
  ]);
});

test('an exception in one source does not unmask an address another source covers', () => {
  const nets = new LocalNetworks([LocalNetworks.source('HOME_NET', ['10.0.0.0/8', '!10.0.0.5']), LocalNetworks.source('private ranges', PRIVATE_RANGES)]);
  assert.equal(nets.contains('10.0.0.5'), true);
});

test('LocalNetworks memo stays bounded and keeps answering correctly after eviction', () => {
  const nets = new LocalNetworks([LocalNetworks.source('private ranges', PRIVATE_RANGES)], 100);
  for (let i = 0; i < 1000; i++) assert.equal(nets.contains(`10.0.${i >> 8}.${i & 255}`), true);
  for (let i = 0; i < 1000; i++) assert.equal(nets.contains(`11.0.${i >> 8}.${i & 255}`), false);
  const memo = (nets as unknown as { memo: Map<string, boolean> }).memo;
  assert.ok(memo.size <= 100, `memo holds ${memo.size} entries`);
  assert.equal(nets.contains('10.0.0.1'), true);
});
