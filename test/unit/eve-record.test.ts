import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { looksLikeAlert, parseEveLine } from '../../src/telemetry/eve-record.js';

const captureLines = readFileSync(new URL('../fixtures/suricata-capture/eve.json', import.meta.url), 'utf8').split('\n').filter((l) => l.length > 0);

test('looksLikeAlert is true for every real alert line and false for every other real line', () => {
  let alerts = 0;
  for (const line of captureLines) {
    const isAlert = (JSON.parse(line) as { event_type: string }).event_type === 'alert';
    if (isAlert) alerts++;
    assert.equal(looksLikeAlert(line), isAlert, line.slice(0, 120));
  }
  assert.ok(alerts > 0, 'the fixture has alerts');
});

test('parses every real Suricata line and keeps flow_id as its exact digits', () => {
  for (const line of captureLines) {
    const r = parseEveLine(line);
    assert.ok(r.ok, line.slice(0, 120));
    const digits = /"flow_id":(\d+)/.exec(line)?.[1];
    if (digits !== undefined) assert.equal(r.record['flow_id'], digits);
  }
});

test('keeps flow_id and parent_id digits beyond the float range', () => {
  const r = parseEveLine('{"timestamp":"2026-12-03T16:23:21.758729+0000","flow_id":9007199254740993,"parent_id":18446744073709551615,"event_type":"alert"}');
  assert.ok(r.ok);
  assert.equal(r.record['flow_id'], '9007199254740993');
  assert.equal(r.record['parent_id'], '18446744073709551615');
});

test('does not touch "flow_id" text inside a string value', () => {
  const r = parseEveLine('{"timestamp":"t","flow_id":1,"http":{"url":"/x?a={\\"flow_id\\":123}"}}');
  assert.ok(r.ok);
  assert.equal((r.record['http'] as { url: string }).url, '/x?a={"flow_id":123}');
  assert.equal(r.record['flow_id'], '1');
});

const bad: [name: string, line: string, code: string, reason: RegExp][] = [
  ['a torn line', '{"timestamp":"2026-11-22T01:02:03.000000+0000","event_type":"alert","src_ip":"10.1.1.1"', 'ERR_EVE_LINE_NOT_JSON', /not JSON/],
  ['plain text', 'hello', 'ERR_EVE_LINE_NOT_JSON', /not JSON/],
  ['a JSON array', '[1,2]', 'ERR_EVE_LINE_NOT_JSON', /not a JSON object \(array\)/],
  ['JSON null', 'null', 'ERR_EVE_LINE_NOT_JSON', /not a JSON object \(null\)/],
  ['a JSON string', '"x"', 'ERR_EVE_LINE_NOT_JSON', /not a JSON object \(string\)/],
  ['a record without timestamp', '{"event_type":"alert","src_ip":"10.0.0.1"}', 'ERR_EVE_LINE_NO_TIMESTAMP', /no timestamp/],
  ['a numeric timestamp', '{"timestamp":5,"event_type":"alert"}', 'ERR_EVE_LINE_NO_TIMESTAMP', /not a non-empty string/],
  ['an empty timestamp', '{"timestamp":"","event_type":"alert"}', 'ERR_EVE_LINE_NO_TIMESTAMP', /not a non-empty string/],
];
for (const [name, line, code, reason] of bad) {
  test(`rejects ${name} with ${code} and a reason`, () => {
    const r = parseEveLine(line);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.code, code);
      assert.match(r.reason, reason);
    }
  });
}
