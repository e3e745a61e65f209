import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, redactConfig, VARIABLES, parseStartAt } from '../../src/config.js';
import { isAgentError } from '../../src/errors.js';

test('uses the documented defaults when nothing is set', () => {
  const c = loadConfig({});
  assert.equal(c.token, null);
  assert.equal(c.baseUrl, 'https://opnsense.emergingthreats.net');
  assert.equal(c.eve.path, '/var/log/suricata/eve.json');
  assert.deepEqual(c.eve.startAt, { kind: 'lookback', ms: 86_400_000, text: '1d' });
  assert.equal(c.rules.dir, '/var/lib/suricata/rules');
  assert.equal(c.status.port, 9300);
  assert.equal(c.rules.reload, 'auto');
  assert.equal(c.rules.categories, 'all');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.eve));
});

test('reports every bad variable at once and refuses to start', () => {
  try {
    loadConfig({ ETPRO_STATUS_PORT: 'abc', ETPRO_START_AT: 'yesterday', ETPRO_RELOAD: 'magic', ETPRO_MASK_PRIVATE_RANGES: 'maybe', ETPRO_TYPO: '1' });
    assert.fail('expected an error');
  } catch (err) {
    assert.ok(isAgentError(err, 'ERR_CONFIG_INVALID'));
    const problems = err.details['problems'] as string[];
    assert.equal(problems.length, 5);
    for (const name of ['ETPRO_STATUS_PORT', 'ETPRO_START_AT', 'ETPRO_RELOAD', 'ETPRO_MASK_PRIVATE_RANGES', 'ETPRO_TYPO']) {
      assert.ok(problems.some((p) => p.includes(name)), `no problem names ${name}`);
    }
  }
});

test('trims the token, notes that it did, and never shows it in the redacted config', () => {
  const c = loadConfig({ ETPRO_TOKEN: '  s3cr3t-token\n' });
  assert.equal(c.token, 's3cr3t-token');
  assert.equal(c.tokenWasTrimmed, true);
  assert.ok(!JSON.stringify(redactConfig(c)).includes('s3cr3t'));
  assert.equal(loadConfig({ ETPRO_TOKEN: 'abc' }).tokenWasTrimmed, false);
});

test('reads the token from ETPRO_TOKEN_FILE, and names the file when it cannot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'token'), 'file-token\n');
  const c = loadConfig({ ETPRO_TOKEN_FILE: join(dir, 'token') });
  assert.equal(c.token, 'file-token');
  assert.equal(c.tokenWasTrimmed, false);
  assert.throws(() => loadConfig({ ETPRO_TOKEN_FILE: join(dir, 'missing') }), /ETPRO_TOKEN_FILE=.*missing cannot be read \(ENOENT\)/);
});

test('treats empty variables as unset', () => {
  const c = loadConfig({ ETPRO_STATUS_PORT: '', ETPRO_TOKEN: '' });
  assert.equal(c.status.port, 9300);
  assert.equal(c.token, null);
});

test('parses start positions and look-backs', () => {
  assert.deepEqual(parseStartAt('end'), { kind: 'end' });
  assert.deepEqual(parseStartAt('beginning'), { kind: 'beginning' });
  assert.deepEqual(parseStartAt('2h'), { kind: 'lookback', ms: 7_200_000, text: '2h' });
  assert.equal(parseStartAt('2 days ago'), null);
});

test('the README table lists every variable the agent reads', () => {
  // From test/unit (sources) or dist/test/unit (compiled): the repository root holds package.json.
  const root = [new URL('../../', import.meta.url), new URL('../../../', import.meta.url)].find((u) => existsSync(new URL('package.json', u)))!;
  const readme = readFileSync(new URL('README.md', root), 'utf8');
  for (const v of VARIABLES) assert.ok(readme.includes(`\`${v.name}\``), `README does not list ${v.name}`);
});

test('refuses base URLs with credentials or a query, and status addresses that are not IPs', () => {
  for (const [env, name] of [
    [{ ETPRO_BASE_URL: 'http://user:pass@127.0.0.1:8080' }, 'ETPRO_BASE_URL'],
    [{ ETPRO_BASE_URL: 'http://127.0.0.1:8080?x=1' }, 'ETPRO_BASE_URL'],
    [{ ETPRO_STATUS_ADDR: '999.1.1.1' }, 'ETPRO_STATUS_ADDR'],
    [{ ETPRO_HOME_NET: '10.0.0.0/33' }, 'ETPRO_HOME_NET'],
  ] as const) {
    assert.throws(() => loadConfig(env), (err: unknown) => isAgentError(err, 'ERR_CONFIG_INVALID') && err.message.includes(name), JSON.stringify(env));
  }
  assert.equal(loadConfig({ ETPRO_STATUS_ADDR: '::' }).status.addr, '::');
  assert.deepEqual(loadConfig({ ETPRO_HOME_NET: '10.0.0.0/8, 2001:db8::/32' }).privacy.homeNet, ['10.0.0.0/8', '2001:db8::/32']);
});
