import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anonymize, maskAddress, serializeEvent } from '../../src/telemetry/anonymizer.js';
import { parseEveLine, type EveRecord } from '../../src/telemetry/eve-record.js';
import { isTelemetryAlert } from '../../src/telemetry/alert-filter.js';
import { LocalNetworks, PRIVATE_RANGES } from '../../src/telemetry/local-networks.js';
import { AddressSet } from '../../src/telemetry/address-set.js';

/** Local networks as design §3 rule 4 builds them, one source each, so each rule row can name its source. */
const nets = new LocalNetworks([
  { source: 'HOME_NET (suricata.yaml)', set: AddressSet.fromTerms(['198.18.0.0/15', '!198.18.0.9']), networks: ['[198.18.0.0/15,!198.18.0.9]'] },
  LocalNetworks.source('ETPRO_HOME_NET', ['203.0.113.0/25', '2001:db8:aa::/48']),
  LocalNetworks.source('interfaces', ['192.0.2.0/24']),
  LocalNetworks.source('private ranges', PRIVATE_RANGES),
]);

function alert(extra: EveRecord = {}): EveRecord {
  return {
    timestamp: '2026-12-03T16:23:21.758729+0000',
    flow_id: '440460830600134',
    in_iface: 'eth0',
    event_type: 'alert',
    src_ip: '198.51.100.23',
    src_port: 51724,
    dest_ip: '198.51.100.24',
    dest_port: 80,
    proto: 'TCP',
    alert: { action: 'allowed', gid: 1, signature_id: 2099003, rev: 1, signature: 'ET X', category: 'C', severity: 1, metadata: { a: ['b'] } },
    app_proto: 'http',
    ...extra,
  };
}

test('rule 1: keeps only the allowed top-level keys', () => {
  const input = alert({ pcap_cnt: 617, pkt_src: 'wire/pcap', tx_id: 0, direction: 'to_server', flow: { bytes_toserver: 1 }, payload: 'AAAA', dns: { query: [] }, parent_id: '7', vlan: [10, 20], xff: '10.1.1.1', metadata: { flowbits: ['x'] }, tls: { sni: 'a.example' }, http: { hostname: 'a.example' } });
  const out = anonymize(input, nets);
  assert.deepEqual(Object.keys(out).sort(), ['alert', 'app_proto', 'dest_ip', 'dest_port', 'event_type', 'flow_id', 'http', 'in_iface', 'proto', 'src_ip', 'src_port', 'timestamp', 'tls', 'vlan']);
});

const rule2And5Removed: [field: string, container: 'alert' | 'http', value: unknown][] = [
  ['category', 'alert', 'A Network Trojan was detected'],
  ['severity', 'alert', 1],
  ['gid', 'alert', 1],
  ['signature', 'alert', 'ET MALWARE EvilBot'],
  ['metadata', 'alert', { created_at: ['2026_11_01'] }],
  ['http_user_agent', 'http', 'EvilBot/1.0'],
  ['url', 'http', '/gate.php?id=42'],
  ['redirect', 'http', 'http://x.example/y'],
  ['http_refer', 'http', 'http://intranet.example.net/secret'],
  ['xff', 'http', '10.9.8.7'],
  ['request_headers', 'http', [{ name: 'Cookie', value: 's=1' }]],
  ['response_headers', 'http', [{ name: 'Set-Cookie', value: 's=1' }]],
  ['http_request_body', 'http', 'cGFzc3dvcmQ9MQ=='],
  ['http_response_body_printable', 'http', 'secret'],
];
for (const [field, container, value] of rule2And5Removed) {
  test(`rules 2 and 5: removes ${container}.${field} and keeps its siblings`, () => {
    const input = alert({ http: { hostname: 'a.example', http_method: 'GET', status: 200 } });
    (input[container] as Record<string, unknown>)[field] = value;
    const out = anonymize(input, nets);
    const part = out[container] as Record<string, unknown>;
    assert.equal(field in part, false);
    if (container === 'alert') assert.deepEqual(part, { action: 'allowed', signature_id: 2099003, rev: 1 });
    else assert.deepEqual(part, { hostname: 'a.example', http_method: 'GET', status: 200 });
  });
}

const rule3: [name: string, ip: string, masked: string][] = [
  ['IPv4 a.b.c.d → xxx.xxx.xxx.d', '10.20.30.40', 'xxx.xxx.xxx.40'],
  ['fully expanded IPv6 keeps its last two groups as written', 'fe80:0000:0000:0000:0211:22ff:fec0:d65f', 'xxxx:xxxx:fec0:d65f'],
  ['expanded IPv6 with zero groups keeps them as written', '2001:0db8:00aa:0000:0000:0000:0000:0010', 'xxxx:xxxx:0000:0010'],
  ['compressed IPv6 keeps the last two pieces', '::1', 'xxxx:xxxx::1'],
];
for (const [name, ip, masked] of rule3) {
  test(`rule 3: masks a local address: ${name}`, () => {
    const out = anonymize(alert({ src_ip: ip, dest_ip: ip }), nets);
    assert.equal(out['src_ip'], masked);
    assert.equal(out['dest_ip'], masked);
  });
}

test('rule 3: passes addresses outside the local networks unchanged', () => {
  for (const ip of ['198.51.100.23', '2001:0db8:ffff:0000:0000:0000:0000:0066', 'ff02:0000:0000:0000:0000:0000:0000:0016', '8.8.8.8']) {
    const out = anonymize(alert({ src_ip: ip }), nets);
    assert.equal(out['src_ip'], ip);
  }
});

const rule4: [source: string, local: string, notLocal: string][] = [
  ['HOME_NET from suricata.yaml', '198.19.4.5', '198.20.0.1'],
  ['a HOME_NET exception is not masked by HOME_NET', '198.18.0.8', '198.18.0.9'],
  ['ETPRO_HOME_NET (IPv4)', '203.0.113.100', '203.0.113.200'],
  ['ETPRO_HOME_NET (IPv6)', '2001:0db8:00aa:0001:0000:0000:0000:0001', '2001:0db8:00ab:0000:0000:0000:0000:0001'],
  ['interface networks', '192.0.2.77', '192.0.3.77'],
  ['private 10/8', '10.255.0.1', '11.0.0.1'],
  ['private 172.16/12', '172.31.9.9', '172.32.0.1'],
  ['private 192.168/16', '192.168.31.132', '192.169.0.1'],
  ['loopback 127/8', '127.0.0.1', '128.0.0.1'],
  ['link-local 169.254/16', '169.254.1.1', '169.253.1.1'],
  ['CGNAT 100.64/10', '100.64.251.19', '100.128.0.1'],
  ['ULA fc00::/7', 'fd00:0000:0000:0000:0000:0000:0000:0002', 'fe00:0000:0000:0000:0000:0000:0000:0002'],
  ['link-local fe80::/10', 'fe80:0000:0000:0000:0211:22ff:fe33:99ba', 'fec0:0000:0000:0000:0211:22ff:fe33:99ba'],
  ['loopback ::1', '0000:0000:0000:0000:0000:0000:0000:0001', '0000:0000:0000:0000:0000:0000:0000:0002'],
];
for (const [source, local, notLocal] of rule4) {
  test(`rule 4: the local networks include ${source}`, () => {
    assert.notEqual(anonymize(alert({ src_ip: local }), nets)['src_ip'], local);
    assert.equal(anonymize(alert({ src_ip: notLocal }), nets)['src_ip'], notLocal);
  });
}

test('rule 4: without the private ranges source, a private address passes unchanged', () => {
  const homeOnly = new LocalNetworks([LocalNetworks.source('ETPRO_HOME_NET', ['203.0.113.0/24'])]);
  assert.equal(anonymize(alert({ src_ip: '10.1.2.3' }), homeOnly)['src_ip'], '10.1.2.3');
  assert.equal(anonymize(alert({ src_ip: '203.0.113.3' }), homeOnly)['src_ip'], 'xxx.xxx.xxx.3');
});

const rule5: [name: string, extra: EveRecord, path: [string, string, string?], expected: unknown][] = [
  ['alert.source.ip', { alert: { signature_id: 1, source: { ip: '10.1.2.3', port: 443 } } }, ['alert', 'source', 'ip'], 'xxx.xxx.xxx.3'],
  ['alert.target.ip', { alert: { signature_id: 1, target: { ip: '100.64.3.4', port: 50123 } } }, ['alert', 'target', 'ip'], 'xxx.xxx.xxx.4'],
  ['alert.target.ip outside the local networks', { alert: { signature_id: 1, target: { ip: '198.51.100.9', port: 1 } } }, ['alert', 'target', 'ip'], '198.51.100.9'],
  ['http.hostname as a local IPv4 literal', { http: { hostname: '127.0.0.1' } }, ['http', 'hostname'], 'xxx.xxx.xxx.1'],
  ['http.hostname as a bracketed local IPv6 literal', { http: { hostname: '[::1]' } }, ['http', 'hostname'], '[xxxx:xxxx::1]'],
  ['http.hostname as a bracketed expanded IPv6 literal', { http: { hostname: '[2001:db8:aa::10]' } }, ['http', 'hostname'], '[xxxx:xxxx::10]'],
  ['http.hostname as a public IP literal', { http: { hostname: '198.51.100.7' } }, ['http', 'hostname'], '198.51.100.7'],
  ['http.hostname as a local IPv4 literal with a trailing dot', { http: { hostname: '10.1.2.3.' } }, ['http', 'hostname'], 'xxx.xxx.xxx.3.'],
  ['http.hostname as a local IPv4 literal with a port', { http: { hostname: '10.1.2.3:8080' } }, ['http', 'hostname'], 'xxx.xxx.xxx.3:8080'],
  ['http.hostname as a bracketed local IPv6 literal with a port', { http: { hostname: '[::1]:8080' } }, ['http', 'hostname'], '[xxxx:xxxx::1]:8080'],
  ['http.hostname as a public IPv4 literal with a port', { http: { hostname: '198.51.100.7:443' } }, ['http', 'hostname'], '198.51.100.7:443'],
  ['tls.sni as a local IPv4 literal with a trailing dot', { tls: { sni: '192.168.1.9.' } }, ['tls', 'sni'], 'xxx.xxx.xxx.9.'],
  ['http.hostname as a host name', { http: { hostname: 'intranet.example.net' } }, ['http', 'hostname'], 'intranet.example.net'],
  ['tls.sni as a local IPv4 literal', { tls: { sni: '192.168.31.132', version: 'TLS 1.2' } }, ['tls', 'sni'], 'xxx.xxx.xxx.132'],
  ['tls.sni as a host name', { tls: { sni: 'c2-9.example.org' } }, ['tls', 'sni'], 'c2-9.example.org'],
];
for (const [name, extra, [a, b, c], expected] of rule5) {
  test(`rule 5: ${name} becomes ${JSON.stringify(expected)}`, () => {
    const out = anonymize(alert(extra), nets);
    const part = (out[a] as Record<string, unknown>)[b];
    const value = c === undefined ? part : (part as Record<string, unknown>)[c];
    assert.equal(value, expected);
  });
}

test('rule 5: keeps the port of alert.source and alert.target', () => {
  const out = anonymize(alert({ alert: { signature_id: 1, source: { ip: '10.1.2.3', port: 443 }, target: { ip: '10.1.2.4', port: 50123 } } }), nets);
  assert.deepEqual(out['alert'], { signature_id: 1, source: { ip: 'xxx.xxx.xxx.3', port: 443 }, target: { ip: 'xxx.xxx.xxx.4', port: 50123 } });
});

test('rule 6: an empty or missing SID list lets every alert through but never another event type', () => {
  for (const sids of [null, new Set<number>()]) {
    assert.equal(isTelemetryAlert(alert(), sids), true);
    assert.equal(isTelemetryAlert({ ...alert(), event_type: 'http' }, sids), false);
  }
});

const rule7: [spelling: string, masked: string, local: boolean][] = [
  ['::ffff:10.1.2.3', '::ffff:xxx.xxx.xxx.3', true],
  ['::FFFF:10.1.2.3', '::ffff:xxx.xxx.xxx.3', true],
  ['0000:0000:0000:0000:0000:ffff:0a01:0203', '::ffff:xxx.xxx.xxx.3', true],
  ['::ffff:a01:2fe', '::ffff:xxx.xxx.xxx.254', true],
  ['0:0:0:0:0:ffff:192.168.1.9', '::ffff:xxx.xxx.xxx.9', true],
  ['[::ffff:127.0.0.1]', '[::ffff:xxx.xxx.xxx.1]', true],
  ['::ffff:8.8.8.8', '::ffff:8.8.8.8', false],
  ['0000:0000:0000:0000:0000:ffff:0808:0808', '0000:0000:0000:0000:0000:ffff:0808:0808', false],
];
for (const [spelling, masked, local] of rule7) {
  test(`rule 7: IPv4-mapped ${spelling} is judged by its IPv4 address (${local ? 'local' : 'not local'})`, () => {
    const out = anonymize(alert({ src_ip: spelling, http: { hostname: spelling } }), nets);
    assert.equal(out['src_ip'], masked);
    assert.equal((out['http'] as Record<string, unknown>)['hostname'], masked);
    if (local) assert.ok(!String(out['src_ip']).includes('0a01') && !String(out['src_ip']).includes('.1.2.'));
  });
}

test('rule 8: with no local networks at all nothing is masked and nothing throws', () => {
  const none = new LocalNetworks([]);
  assert.equal(none.isEmpty(), true);
  assert.equal(anonymize(alert({ src_ip: '10.1.2.3' }), none)['src_ip'], '10.1.2.3');
});

test('does not mutate the input record', () => {
  const input = alert({ src_ip: '10.1.2.3', http: { hostname: '10.1.2.4', url: '/x' }, tls: { sni: '10.1.2.5' } });
  (input['alert'] as Record<string, unknown>)['source'] = { ip: '10.1.2.6', port: 1 };
  const before = structuredClone(input);
  anonymize(input, nets);
  assert.deepEqual(input, before);
});

test('leaves non-string and garbage addresses alone without throwing', () => {
  for (const v of [null, 42, 'not-an-ip', '', '10.1.2', '1.2.3.4.5', '[::1', '999.1.1.1', ':::']) {
    const out = anonymize(alert({ src_ip: v, http: { hostname: v } }), nets);
    assert.equal(out['src_ip'], v);
  }
});

test('maskAddress masks embedded dotted IPv4 in a non-mapped IPv6 literal', () => {
  assert.equal(maskAddress('64:ff9b::10.1.2.3'), 'xxxx:xxxx::xxx.xxx.xxx.3');
  assert.equal(maskAddress('not an address'), 'xxx');
});

test('serializeEvent writes flow_id and parent_id as JSON numbers with every digit', () => {
  const parsed = parseEveLine('{"timestamp":"t","flow_id":9007199254740993,"parent_id":18446744073709551615,"event_type":"alert","http":{"url":"/a,\\"flow_id\\":5"}}');
  assert.ok(parsed.ok);
  assert.equal(parsed.record['flow_id'], '9007199254740993');
  const text = serializeEvent(parsed.record);
  assert.match(text, /"flow_id":9007199254740993[,}]/);
  assert.match(text, /"parent_id":18446744073709551615[,}]/);
  assert.ok(text.includes('"url":"/a,\\"flow_id\\":5"'), text);
  assert.equal(JSON.parse(text).http.url, '/a,"flow_id":5');
});

test('serializeEvent leaves a numeric flow_id as it is', () => {
  assert.equal(serializeEvent({ timestamp: 't', flow_id: 123 }), '{"timestamp":"t","flow_id":123}');
});

test('a "__proto__" key inside alert or http is dropped, not turned into a prototype', () => {
  const parsed = parseEveLine('{"timestamp":"t","flow_id":1,"event_type":"alert","alert":{"signature_id":1,"__proto__":{"polluted":true}},"http":{"hostname":"a","__proto__":{"x":1}}}');
  assert.ok(parsed.ok);
  const out = anonymize(parsed.record, nets);
  assert.equal(Object.getPrototypeOf(out['alert']), Object.prototype);
  assert.equal(Object.getPrototypeOf(out['http']), Object.prototype);
  assert.equal(serializeEvent(out), '{"timestamp":"t","flow_id":1,"event_type":"alert","alert":{"signature_id":1},"http":{"hostname":"a"}}');
});
