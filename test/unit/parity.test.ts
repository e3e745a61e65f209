import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseEveLine } from '../../src/telemetry/eve-record.js';
import { isTelemetryAlert } from '../../src/telemetry/alert-filter.js';
import { anonymize, serializeEvent } from '../../src/telemetry/anonymizer.js';
import { LocalNetworks } from '../../src/telemetry/local-networks.js';

const dir = new URL('../fixtures/anchor-parity/', import.meta.url);
const read = (name: string): string => readFileSync(new URL(name, dir), 'utf8');

/** Exactly the fixture's local networks: no private ranges or interface networks added, so the result is deterministic. */
const nets = new LocalNetworks([
  LocalNetworks.source(
    'local-networks.txt',
    read('local-networks.txt')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && !l.startsWith('#')),
  ),
]);

function run(): { out: unknown[]; rejected: string[] } {
  const out: unknown[] = [];
  const rejected: string[] = [];
  for (const line of read('input.eve.json').split('\n')) {
    if (line.length === 0) continue;
    const parsed = parseEveLine(line);
    if (!parsed.ok) {
      rejected.push(parsed.code);
      continue;
    }
    if (!isTelemetryAlert(parsed.record, null)) continue;
    out.push(JSON.parse(serializeEvent(anonymize(parsed.record, nets))));
  }
  return { out, rejected };
}

const expected = read('expected.ndjson')
  .split('\n')
  .filter((l) => l.length > 0)
  .map((l) => JSON.parse(l) as unknown);

test('produces expected.ndjson from the parity input, record for record and in order', () => {
  const { out } = run();
  assert.equal(out.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.deepEqual(out[i], expected[i], `record ${i + 1}`);
});

test('drops the record without a timestamp and the torn last line of the parity input', () => {
  assert.deepEqual(run().rejected, ['ERR_EVE_LINE_NO_TIMESTAMP', 'ERR_EVE_LINE_NOT_JSON']);
});

test('sends flow_id with every digit as a JSON number', () => {
  const line = read('input.eve.json').split('\n').find((l) => l.includes('"flow_id":2251799813685247'))!;
  const parsed = parseEveLine(line);
  assert.ok(parsed.ok);
  assert.match(serializeEvent(anonymize(parsed.record, nets)), /"flow_id":2251799813685247[,}]/);
});

test('differs from the plugin output only where design rules 5 and 6 say so', () => {
  // The plugin forwards every event type and leaks Referer, XFF, headers and IP-literal hosts;
  // restricted to alerts, stripping those fields from its output must give expected.ndjson,
  // except for the masking of alert.target, http.hostname and tls.sni that rule 5 adds.
  const anchor = read('anchor-output.ndjson')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r['event_type'] === 'alert');
  assert.equal(anchor.length, expected.length);
  const { out } = run();
  for (let i = 0; i < anchor.length; i++) {
    const a = structuredClone(anchor[i]!);
    const o = structuredClone(out[i] as Record<string, unknown>);
    for (const r of [a, o]) {
      const http = r['http'] as Record<string, unknown> | undefined;
      if (http) for (const k of ['http_refer', 'xff', 'request_headers', 'response_headers', 'hostname']) delete http[k];
      const tls = r['tls'] as Record<string, unknown> | undefined;
      if (tls) delete tls['sni'];
      const al = r['alert'] as Record<string, unknown>;
      delete al['source'];
      delete al['target'];
    }
    assert.deepEqual(o, a, `record ${i + 1}`);
  }
});
