import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eveLineTimestamp, parseEveTimestamp } from '../../src/eve/eve-timestamp.js';

test('parses eve timestamps with colon-less, colon, negative and Z offsets to the same instant', () => {
  const utc = Date.UTC(2026, 11, 3, 16, 20, 22, 565) + 0.676;
  const cases: [string, number][] = [
    ['2026-12-03T16:20:22.565676+0000', utc],
    ['2026-12-03T21:50:22.565676+0530', utc],
    ['2026-12-03T21:50:22.565676+05:30', utc],
    ['2026-12-03T11:20:22.565676-0500', utc],
    ['2026-12-03T16:20:22.565676Z', utc],
    ['2026-12-03T16:20:22+0000', Date.UTC(2026, 11, 3, 16, 20, 22)],
  ];
  for (const [text, want] of cases) {
    const got = parseEveTimestamp(text);
    assert.ok(got !== null && Math.abs(got - want) < 1e-6, `${text}: ${got} != ${want}`);
  }
});

test('rejects text that is not an eve timestamp', () => {
  for (const text of ['', 'yesterday', '2026-12-03 16:20:22+0000', '2026-13-03T16:20:22+0000', '2026-12-03T16:20:22', '2026-12-03T16:20:22+9900']) {
    assert.equal(parseEveTimestamp(text), null, text);
  }
});

test('finds the timestamp of an eve line, or null when it has none', () => {
  assert.equal(eveLineTimestamp('{"timestamp":"2026-12-03T16:20:22.000000+0000","event_type":"alert"}'), Date.UTC(2026, 11, 3, 16, 20, 22));
  assert.equal(eveLineTimestamp('{"event_type":"alert"}'), null);
  assert.equal(eveLineTimestamp('{"timestamp":"2026-12-03T16:2'), null);
});
