import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { EveLine } from '../../src/eve/eve-follower.js';
import type { Logger } from '../../src/logger.js';
import { LocalNetworks } from '../../src/telemetry/local-networks.js';
import { TelemetryPipeline, type AlertSink, type TelemetryPipelineDeps } from '../../src/telemetry/telemetry-pipeline.js';

const HOME = new LocalNetworks([LocalNetworks.source('HOME_NET', ['10.0.0.0/8', '2001:db8:aa::/48'])]);

/** A logger writing JSON lines into an array, so a test can see what was logged. */
function recordingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const log = winston.createLogger({ level: 'debug', format: winston.format.json(), transports: [new winston.transports.Stream({ stream })] });
  return { log, lines };
}

class RecordingSink implements AlertSink {
  readonly submitted: { id: number; body: Record<string, unknown> }[] = [];
  capacity = Infinity;
  hasCapacity(): boolean {
    return this.submitted.length < this.capacity;
  }
  submit(id: number, body: string): void {
    this.submitted.push({ id, body: JSON.parse(body) as Record<string, unknown> });
  }
}

const alertLine = (sid: number, src = '10.20.30.40', extra = ''): string =>
  `{"timestamp":"2026-12-03T16:23:21.406468+0000","flow_id":334986191968220,"event_type":"alert","src_ip":"${src}","src_port":51552,"dest_ip":"198.51.100.23","dest_port":80,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":${sid},"rev":1,"signature":"ET TEST","category":"Misc","severity":3}${extra}}`;
const flowLine = '{"timestamp":"2026-12-03T16:23:21.406468+0000","flow_id":1,"event_type":"flow","src_ip":"10.1.1.1"}';
const statsLine = '{"timestamp":"2026-12-03T16:23:21.406468+0000","event_type":"stats","stats":{"uptime":5,"decoder":{"pkts":10}}}';

let seq = 0;
const line = (text: string, file = '/var/log/suricata/eve.json', offset = 0): EveLine => ({ seq: ++seq, text, file, offset });

function pipeline(over: Partial<TelemetryPipelineDeps> = {}, log: Logger = recordingLogger().log): { p: TelemetryPipeline; acked: number[]; sink: RecordingSink } {
  const acked: number[] = [];
  const sink = new RecordingSink();
  const p = new TelemetryPipeline({ networks: () => HOME, telemetrySids: () => null, sink, ack: (s) => acked.push(s), ...over }, log);
  return { p, acked, sink: (over.sink as RecordingSink | undefined) ?? sink };
}

test('non-alert lines are acknowledged at once without reaching the sink', () => {
  const { p, acked, sink } = pipeline();
  const lines = [line(flowLine), line('{"timestamp":"2026-12-03T16:23:21+0000","event_type":"dns"}')];
  p.handle(lines);
  assert.deepEqual(acked, lines.map((l) => l.seq));
  assert.equal(sink.submitted.length, 0);
  assert.equal(p.counters.alertsRead, 0);
});

test('an alert line is anonymized and submitted under its sequence number, not acknowledged by the pipeline', () => {
  const { p, acked, sink } = pipeline();
  const l = line(alertLine(2099004, '10.20.30.40', ',"http":{"hostname":"example.org","url":"/secret","http_user_agent":"curl"}'));
  p.handle([l]);
  assert.deepEqual(acked, []);
  assert.equal(sink.submitted.length, 1);
  const { id, body } = sink.submitted[0]!;
  assert.equal(id, l.seq);
  assert.equal(body['src_ip'], 'xxx.xxx.xxx.40');
  assert.equal(body['dest_ip'], '198.51.100.23');
  const alert = body['alert'] as Record<string, unknown>;
  assert.equal(alert['signature_id'], 2099004);
  for (const k of ['signature', 'category', 'severity', 'gid']) assert.equal(k in alert, false, `alert.${k} must be stripped`);
  const http = body['http'] as Record<string, unknown>;
  assert.equal('url' in http, false);
  assert.equal('http_user_agent' in http, false);
  assert.equal(p.counters.alertsRead, 1);
  assert.equal(p.counters.addressesMasked, 1);
});

test('an IPv6 address in the local networks is masked to its last two groups', () => {
  const { p, sink } = pipeline();
  p.handle([line(alertLine(2099006, '2001:db8:aa::10'))]);
  assert.equal(sink.submitted[0]!.body['src_ip'], 'xxxx:xxxx::10');
});

test('alerts outside the telemetry SIDs are acknowledged, counted and not submitted', () => {
  const { p, acked, sink } = pipeline({ telemetrySids: () => new Set([2099004]) });
  const kept = line(alertLine(2099004));
  const dropped = line(alertLine(2099005));
  p.handle([kept, dropped]);
  assert.deepEqual(acked, [dropped.seq]);
  assert.deepEqual(
    sink.submitted.map((s) => s.id),
    [kept.seq],
  );
  assert.equal(p.counters.alertsFiltered, 1);
  assert.equal(p.counters.alertsRead, 1);
});

test('a malformed alert line is counted, logged with its file and offset, and acknowledged', () => {
  const rec = recordingLogger();
  const { p, acked, sink } = pipeline({}, rec.log);
  const broken = line('{"event_type":"alert","src_ip":"10.0.0.1" this is cut', '/logs/eve.json', 4096);
  const noTimestamp = line('{"event_type":"alert","src_ip":"10.0.0.1","alert":{"signature_id":1}}', '/logs/eve.json', 8192);
  p.handle([broken, noTimestamp]);
  assert.deepEqual(acked, [broken.seq, noTimestamp.seq]);
  assert.equal(sink.submitted.length, 0);
  assert.equal(p.counters.malformedLines, 2);
  const warn = rec.lines.find((l) => l['level'] === 'warn' && l['file'] === '/logs/eve.json');
  assert.ok(warn, `expected a warning naming the file, got ${JSON.stringify(rec.lines)}`);
  assert.equal(warn['offset'], 4096);
});

test('a line not shaped like a JSON object is counted as malformed and acknowledged', () => {
  const { p, acked } = pipeline();
  const l = line('garbage that is not json');
  p.handle([l]);
  assert.deepEqual(acked, [l.seq]);
  assert.equal(p.counters.malformedLines, 1);
});

test('without a sink (no token) alerts are held, never acknowledged, with a single warning', () => {
  const rec = recordingLogger();
  const acked: number[] = [];
  const p = new TelemetryPipeline({ networks: () => HOME, telemetrySids: () => null, sink: null, ack: (s) => acked.push(s) }, rec.log);
  const a1 = line(alertLine(2099004));
  const f = line(flowLine);
  const a2 = line(alertLine(2099005));
  p.handle([a1, f, a2]);
  p.handle([line(alertLine(2099001))]);
  p.drain();
  assert.deepEqual(acked, [], 'nothing after the first held alert may be acknowledged');
  assert.equal(p.heldLines, 4);
  const warnings = rec.lines.filter((l) => l['level'] === 'warn' && /token/i.test(String(l['message'])));
  assert.equal(warnings.length, 1);
  assert.equal(p.counters.alertsRead, 0);
});

test('a sink without capacity holds lines, and drain() feeds them in order once it has room', () => {
  const { p, acked, sink } = pipeline();
  sink.capacity = 1;
  const lines = [line(alertLine(2099001)), line(alertLine(2099002)), line(flowLine), line(alertLine(2099003))];
  p.handle(lines);
  assert.deepEqual(
    sink.submitted.map((s) => s.id),
    [lines[0]!.seq],
  );
  assert.equal(p.heldLines, 3);
  assert.deepEqual(acked, [], 'the flow line waits behind the held alert');
  sink.capacity = 2;
  p.drain();
  assert.deepEqual(
    sink.submitted.map((s) => s.id),
    [lines[0]!.seq, lines[1]!.seq],
  );
  sink.capacity = Infinity;
  p.drain();
  assert.deepEqual(
    sink.submitted.map((s) => s.id),
    [lines[0]!.seq, lines[1]!.seq, lines[3]!.seq],
  );
  assert.deepEqual(acked, [lines[2]!.seq]);
  assert.equal(p.heldLines, 0);
  assert.equal(p.counters.alertsRead, 3);
});

test('stats records reach onStats and are acknowledged', () => {
  const stats: unknown[] = [];
  const { p, acked } = pipeline({ onStats: (r) => stats.push(r) });
  const l = line(statsLine);
  p.handle([l]);
  assert.deepEqual(acked, [l.seq]);
  assert.equal(stats.length, 1);
  assert.equal(p.counters.statsRecords, 1);
});

test('wantsLine keeps alerts, stats (only with a listener) and lines not shaped like JSON objects, and drops other event types', () => {
  const check = (p: TelemetryPipeline, text: string): boolean => {
    const padded = Buffer.from(`xx${text}\nyy`);
    return p.wantsLine(padded, 2, 2 + Buffer.byteLength(text));
  };
  const withStats = pipeline({ onStats: () => undefined }).p;
  const withoutStats = pipeline().p;
  for (const p of [withStats, withoutStats]) {
    assert.equal(check(p, alertLine(2099004)), true, 'alert');
    assert.equal(check(p, 'not json at all'), true, 'not a JSON object');
    assert.equal(check(p, '{"event_type":"alert", cut off'), true, 'cut-off object');
    assert.equal(check(p, flowLine), false, 'flow');
    assert.equal(check(p, '{"timestamp":"2026-12-03T16:23:21+0000","event_type":"http","http":{}}'), false, 'http');
  }
  assert.equal(check(withStats, statsLine), true, 'stats with a listener');
  assert.equal(check(withoutStats, statsLine), false, 'stats without a listener');
});

test('counts the size of held lines, so the follower can stop reading, and releases it on drain', () => {
  const sink = new RecordingSink();
  sink.capacity = 0;
  const { p } = pipeline({ sink });
  const lines = [line(alertLine(1)), line(flowLine), line(alertLine(2))];
  p.handle(lines);
  assert.equal(p.heldLines, 3);
  assert.equal(p.heldBytes, lines.reduce((n, l) => n + l.text.length, 0));
  sink.capacity = Infinity;
  p.drain();
  assert.equal(p.heldLines, 0);
  assert.equal(p.heldBytes, 0);
  assert.equal(sink.submitted.length, 2);
});
