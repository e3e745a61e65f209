import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { parseAddressExpression, resolveHomeNet } from '../../src/telemetry/home-net.js';
import { isAgentError } from '../../src/errors.js';
import { requireOrSkip } from '../helpers/requirements.js';

function yamlWith(groups: Record<string, string>): string {
  const lines = Object.entries(groups).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`);
  return `%YAML 1.1\n---\nvars:\n  address-groups:\n${lines.join('\n')}\n    EXTERNAL_NET: "!$HOME_NET"\n`;
}

/** suricata-reference §5.1, one row each: HOME_NET, addresses inside, addresses outside. */
const grammar: [home: string, inside: string[], outside: string[]][] = [
  ['[192.0.2.0/24,2001:db8::/32]', ['192.0.2.1', '2001:0db8:0000:0000:0000:0000:0000:0001'], ['198.51.100.1', '2001:0db9::1']],
  ['[192.0.2.0/24, 198.51.100.0/24]', ['192.0.2.1', '198.51.100.254'], ['203.0.113.1']],
  ['[192.0.2.0/24,!192.0.2.5]', ['192.0.2.4', '192.0.2.6'], ['192.0.2.5']],
  ['[192.0.2.0/24,[198.51.100.0/24,!198.51.100.7]]', ['192.0.2.7', '198.51.100.6'], ['198.51.100.7']],
  ['192.0.2.0/24', ['192.0.2.200'], ['192.0.3.1']],
  ['[192.0.2.1-192.0.2.20]', ['192.0.2.1', '192.0.2.20'], ['192.0.2.0', '192.0.2.21']],
  ['!192.0.2.0/24', ['8.8.8.8', '2001:db8::1'], ['192.0.2.9']],
  ['[!192.0.2.5]', ['192.0.2.4', '10.0.0.1'], ['192.0.2.5']],
  ['any', ['8.8.8.8', '2001:db8::1', '::ffff:1.2.3.4'], []],
  ['192.0.2.0/24,198.51.100.0/24', ['192.0.2.1', '198.51.100.1'], ['203.0.113.1']],
  ['[ 192.0.2.0/24 , ! 192.0.2.128/25 ]', ['192.0.2.1'], ['192.0.2.200']],
];
for (const [home, inside, outside] of grammar) {
  test(`resolves HOME_NET ${home}`, () => {
    const r = resolveHomeNet(yamlWith({ HOME_NET: home }));
    assert.equal(r.expression, home);
    assert.ok(r.set !== null);
    for (const ip of inside) assert.equal(r.set.contains(ip), true, `${ip} should be inside`);
    for (const ip of outside) assert.equal(r.set.contains(ip), false, `${ip} should be outside`);
  });
}

test('resolves $VAR references against vars.address-groups, nested', () => {
  const r = resolveHomeNet(yamlWith({ HOME_NET: '[$SERVERS,$CLIENTS,!192.0.2.9]', SERVERS: '[192.0.2.0/28,$DMZ]', DMZ: '198.51.100.0/24', CLIENTS: '2001:db8:1::/48' }));
  assert.ok(r.set !== null);
  for (const ip of ['192.0.2.1', '198.51.100.77', '2001:db8:1::5']) assert.equal(r.set.contains(ip), true, ip);
  for (const ip of ['192.0.2.9', '192.0.2.16', '2001:db8:2::5']) assert.equal(r.set.contains(ip), false, ip);
});

test('a negated $VAR is an exception: [10.0.0.0/8,!$LAB]', () => {
  const r = resolveHomeNet(yamlWith({ HOME_NET: '[10.0.0.0/8,!$LAB]', LAB: '[10.9.0.0/16,!10.9.9.9]' }));
  assert.ok(r.set !== null);
  assert.equal(r.set.contains('10.1.1.1'), true);
  assert.equal(r.set.contains('10.9.1.1'), false);
  assert.equal(r.set.contains('10.9.9.9'), true);
});

const malformed: [home: string, problem: RegExp][] = [
  ['[192.0.2.0/24', /never closed/],
  ['[192.0.2.0/33]', /192\.0\.2\.0\/33.*prefix length/],
  ['[]', /empty element/],
  ['[192.0.2.1,,192.0.2.2]', /empty element/],
  ['192.0.2.1]', /unexpected "\]"/],
  ['!!192.0.2.1', /double negation/],
  ['[192.0.2.1-192.0.2.0]', /start is above its end/],
  ['[$]', /without a variable name/],
  ['', /empty/],
  ['[host.example]', /host\.example/],
];
for (const [home, problem] of malformed) {
  test(`rejects malformed HOME_NET ${JSON.stringify(home)} with ERR_HOME_NET_INVALID naming the expression`, () => {
    assert.throws(
      () => resolveHomeNet(yamlWith({ HOME_NET: home })),
      (err: unknown) => isAgentError(err, 'ERR_HOME_NET_INVALID') && err.message.includes(JSON.stringify(home)) && problem.test(err.message),
    );
  });
}

test('rejects a reference loop and names every variable in it', () => {
  assert.throws(
    () => resolveHomeNet(yamlWith({ HOME_NET: '[$SMTP_SERVERS,192.0.2.0/24]', SMTP_SERVERS: '$HOME_NET' })),
    (err: unknown) =>
      isAgentError(err, 'ERR_HOME_NET_INVALID') &&
      err.message.includes('$HOME_NET -> $SMTP_SERVERS -> $HOME_NET') &&
      JSON.stringify(err.details['variables']) === '["HOME_NET","SMTP_SERVERS"]',
  );
});

test('rejects a reference to an undefined variable and names it', () => {
  assert.throws(
    () => resolveHomeNet(yamlWith({ HOME_NET: '[$NOPE]' })),
    (err: unknown) => isAgentError(err, 'ERR_HOME_NET_INVALID') && err.message.includes('$NOPE'),
  );
});

test('warns when the exceptions remove every address: [192.0.2.0/24,!192.0.2.0/24]', () => {
  const r = resolveHomeNet(yamlWith({ HOME_NET: '[192.0.2.0/24,!192.0.2.0/24]' }));
  assert.equal(r.set?.isEmpty(), true);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /leaves no addresses/);
});

test('gives no set and a warning when suricata.yaml has no HOME_NET', () => {
  for (const text of ['%YAML 1.1\n---\nvars:\n  address-groups:\n    EXTERNAL_NET: any\n', '%YAML 1.1\n---\nrule-files: [a.rules]\n']) {
    const r = resolveHomeNet(text);
    assert.equal(r.set, null);
    assert.equal(r.expression, null);
    assert.match(r.warnings[0] ?? '', /HOME_NET/);
  }
});

test('reads an unquoted YAML list as a list, with a warning to quote it', () => {
  const r = resolveHomeNet('vars:\n  address-groups:\n    HOME_NET: [10.0.0.0/8, 192.168.0.0/16]\n');
  assert.equal(r.expression, '[10.0.0.0/8,192.168.0.0/16]');
  assert.equal(r.set?.contains('192.168.1.1'), true);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /Quote it/);
});

test('rejects suricata.yaml that is not valid YAML with ERR_HOME_NET_INVALID', () => {
  assert.throws(() => resolveHomeNet('vars: [\n  a: b\n'), (err: unknown) => isAgentError(err, 'ERR_HOME_NET_INVALID') && /not valid YAML/.test(err.message));
});

test('parseAddressExpression resolves a bare expression without suricata.yaml', () => {
  assert.deepEqual(parseAddressExpression('[$A,!10.0.0.1]', { A: '10.0.0.0/30' }).toCidrs(), ['10.0.0.0/32', '10.0.0.2/31']);
});

test('reads the packaged suricata.yaml (%YAML 1.1 header) and its HOME_NET', (t) => {
  const path = '/etc/suricata/suricata.yaml';
  if (!requireOrSkip(t, existsSync(path), `${path} (installed with Suricata)`)) return;
  const r = resolveHomeNet(readFileSync(path, 'utf8'));
  assert.ok(r.set !== null && r.expression !== null);
  assert.equal(r.set.contains('192.168.1.1'), true);
  assert.equal(r.set.contains('8.8.8.8'), false);
});
