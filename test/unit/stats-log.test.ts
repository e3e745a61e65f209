import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LOG_STAT_NAMES, logStatsFromBlock, logStatsFromEve, parseLastStatsBlock, readLastStatsBlock } from '../../src/heartbeat/stats-log.js';

const FIXTURE = new URL('../fixtures/suricata-capture/', import.meta.url);
const statsText = readFileSync(new URL('stats.log', FIXTURE), 'utf8');
const SEP = '-'.repeat(84);

function block(date: string, rows: Record<string, number>): string {
  const lines = [SEP, `Date: ${date} (uptime: 0d, 01h 02m 03s)`, SEP, 'Counter                                       | TM Name                   | Value', SEP];
  for (const [k, v] of Object.entries(rows)) lines.push(`${k.padEnd(45)} | ${'Total'.padEnd(25)} | ${v}`);
  return `${lines.join('\n')}\n`;
}

describe('stats.log parsing', () => {
  it('reads the Total rows of the block Suricata wrote for the capture fixture', () => {
    const b = parseLastStatsBlock(statsText);
    assert.ok(b);
    assert.equal(b.date, '12/3/2026 -- 16:23:44');
    assert.equal(b.uptimeS, 0);
    assert.equal(b.counters.get('decoder.pkts'), 1654);
    assert.equal(b.counters.get('tcp.reassembly_memuse'), 229376);
    assert.deepEqual(logStatsFromBlock(b), {
      'capture.kernel_packets': null,
      'decoder.pkts': 1654,
      'decoder.bytes': 226083,
      'decoder.ipv4': 911,
      'decoder.ipv6': 743,
      'flow.tcp': 130,
      'flow.udp': 0,
      'detect.alert': 112,
    });
  });

  it('takes the last of several blocks and computes the uptime', () => {
    const text = block('12/3/2026 -- 16:20:34', { 'decoder.pkts': 5 }) + block('12/3/2026 -- 16:20:42', { 'decoder.pkts': 9, 'capture.kernel_packets': 18 });
    const b = parseLastStatsBlock(text)!;
    assert.equal(b.date, '12/3/2026 -- 16:20:42');
    assert.equal(b.uptimeS, 3_723);
    assert.equal(b.counters.get('decoder.pkts'), 9);
    assert.equal(logStatsFromBlock(b)['capture.kernel_packets'], 18);
  });

  it('treats a missing row in a present block as 0, except capture.kernel_packets which stays null', () => {
    const s = logStatsFromBlock(parseLastStatsBlock(block('1/2/2026 -- 00:00:01', { 'decoder.pkts': 3 }))!);
    assert.equal(s['decoder.pkts'], 3);
    assert.equal(s['detect.alert'], 0);
    assert.equal(s['flow.udp'], 0);
    assert.equal(s['capture.kernel_packets'], null);
  });

  it('ignores per-thread rows and a last line still being written', () => {
    const text = `${block('1/2/2026 -- 00:00:01', { 'decoder.pkts': 3 })}decoder.pkts                                  | W#01-eth0                 | 77\ndetect.alert                                  | Total                     | 4`;
    const b = parseLastStatsBlock(text)!;
    assert.equal(b.counters.get('decoder.pkts'), 3);
    assert.equal(b.counters.has('detect.alert'), false);
  });

  it('returns null for text without a block', () => {
    assert.equal(parseLastStatsBlock(''), null);
    assert.equal(parseLastStatsBlock('garbage\nmore garbage\n'), null);
  });

  it('reads the last block from the tail of a large stats.log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stats-log-'));
    const file = join(dir, 'stats.log');
    writeFileSync(file, '');
    for (let i = 0; i < 3_000; i++) appendFileSync(file, block('12/3/2026 -- 16:20:34', { 'decoder.pkts': i, 'flow.tcp': 1, 'flow.udp': 2, 'decoder.ipv4': 3 }));
    const { block: b, mtimeMs } = await readLastStatsBlock(file);
    assert.ok(mtimeMs > 0);
    assert.equal(b?.counters.get('decoder.pkts'), 2_999);
  });

  it('rejects with ENOENT when stats.log does not exist', async () => {
    await assert.rejects(readLastStatsBlock(join(tmpdir(), 'no-such-dir-stats', 'stats.log')), { code: 'ENOENT' });
  });
});

describe('eve stats record', () => {
  it('gives the same counters as stats.log for the capture fixture, with zeros present', () => {
    const line = readFileSync(new URL('eve.json', FIXTURE), 'utf8')
      .split('\n')
      .find((l) => l.includes('"event_type":"stats"'))!;
    const s = logStatsFromEve(JSON.parse(line))!;
    assert.equal(s['decoder.pkts'], 1654);
    assert.equal(s['decoder.ipv6'], 743);
    assert.equal(s['detect.alert'], 112);
    assert.equal(s['flow.udp'], 0);
    // pcap-file mode has no capture section: absent means null
    assert.equal(s['capture.kernel_packets'], null);
    assert.deepEqual(Object.keys(s), [...LOG_STAT_NAMES]);
  });

  it('returns null for a record that is not a stats record', () => {
    assert.equal(logStatsFromEve({ event_type: 'alert', alert: {} }), null);
    assert.equal(logStatsFromEve(null), null);
  });
});
