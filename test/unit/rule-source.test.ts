import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAgentError } from '../../src/errors.js';
import { chooseSource, etOpenUrl, suricataVersionOf } from '../../src/rules/ruleset-source.js';
import { parseContainerTarget } from '../../src/suricata/docker-signaller.js';

describe('chooseSource', () => {
  const table = [
    ['ACTIVE', true, 'etpro'],
    ['DORMANT', true, 'etpro'],
    ['ERROR', true, 'etpro'],
    ['DISABLED', true, 'etopen'],
    ['UNCONFIGURED', true, 'etopen'],
    ['ACTIVE', false, 'etopen'],
  ] as const;
  for (const [status, token, source] of table) {
    it(`uses ${source} when the status is ${status} and a token is ${token ? 'set' : 'missing'}`, () => {
      const c = chooseSource(status, token);
      assert.equal(c.source, source);
      assert.match(c.reason, token ? new RegExp(status) : /No ET Pro token/);
    });
  }
});

describe('ET Open URL', () => {
  it('takes x.y.z from the version answer of the control socket', () => {
    assert.equal(suricataVersionOf('7.0.10 RELEASE'), '7.0.10');
    assert.equal(suricataVersionOf('8.0.0-dev (abc)'), '8.0.0');
    assert.equal(suricataVersionOf({}), null);
  });

  it('replaces %v in the template', () => {
    assert.equal(etOpenUrl('https://rules.emergingthreats.net/open/suricata-%v/emerging.rules.tar.gz', '7.0.10'), 'https://rules.emergingthreats.net/open/suricata-7.0.10/emerging.rules.tar.gz');
  });
});

describe('docker container target', () => {
  it('reads a name, an id and a label selector', () => {
    assert.deepEqual(parseContainerTarget('suricata'), { kind: 'name', name: 'suricata' });
    assert.deepEqual(parseContainerTarget('/deploy-suricata-1'), { kind: 'name', name: 'deploy-suricata-1' });
    assert.deepEqual(parseContainerTarget('0123456789ab'), { kind: 'id', id: '0123456789ab' });
    assert.deepEqual(parseContainerTarget('a'.repeat(64)), { kind: 'id', id: 'a'.repeat(64) });
    assert.deepEqual(parseContainerTarget('label=com.docker.compose.service=suricata'), { kind: 'label', key: 'com.docker.compose.service', value: 'suricata' });
    assert.deepEqual(parseContainerTarget('label=etpro.suricata'), { kind: 'label', key: 'etpro.suricata', value: null });
  });

  it('refuses malformed targets naming the variable', () => {
    for (const bad of ['', 'label=', 'label=key=', 'bad name', 'label==x']) {
      assert.throws(() => parseContainerTarget(bad), (err: unknown) => isAgentError(err, 'ERR_CONFIG_INVALID') && err.message.includes('ETPRO_SURICATA_CONTAINER'), bad);
    }
  });
});
