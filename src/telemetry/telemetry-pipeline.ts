import type { Logger } from '../logger.js';
import { RateLimitedLog } from '../logger.js';
import type { EveLine } from '../eve/eve-follower.js';
import { looksLikeAlert, parseEveLine, type EveRecord } from './eve-record.js';
import { isTelemetryAlert } from './alert-filter.js';
import { anonymize, serializeEvent } from './anonymizer.js';
import type { LocalNetworks } from './local-networks.js';

/** Where an anonymized alert goes: the shipper (or, for `dump`, standard output). */
export interface AlertSink {
  hasCapacity(): boolean;
  submit(id: number, body: string): void;
}

export interface PipelineCounters {
  linesSeen: number;
  alertsRead: number;
  alertsFiltered: number;
  malformedLines: number;
  addressesMasked: number;
  statsRecords: number;
  lastAlertAt: number | null;
}

export interface TelemetryPipelineDeps {
  readonly networks: () => LocalNetworks;
  readonly telemetrySids: () => ReadonlySet<number> | null;
  /** Null while no token is configured: alerts are then held (not acknowledged), never dropped. */
  readonly sink: AlertSink | null;
  /** Told about every line that needs no delivery, so the follower can move its checkpoint. */
  readonly ack: (seq: number) => void;
  /**
   * Why alerts must not leave the host right now (e.g. HOME_NET is unusable), or null. While
   * set, alerts are held unacknowledged — never dropped — exactly as without a token.
   */
  readonly blocked?: () => string | null;
  /** Receives each eve `stats` record (for the heartbeat's counters). */
  readonly onStats?: (record: EveRecord) => void;
  readonly now?: () => number;
}

const STATS_MARK = '"event_type":"stats"';
const ALERT_BYTES = Buffer.from('"event_type":"alert"');
const STATS_BYTES = Buffer.from(STATS_MARK);

/**
 * The main job's transform stage: eve line → alert filter → anonymizer → sink. Non-alert lines
 * are acknowledged at once without a full JSON parse (the hot path); alert lines are parsed,
 * filtered by the telemetry SIDs, anonymized and handed to the sink under their line's sequence
 * number, which the shipper acknowledges back once the collector has answered.
 */
export class TelemetryPipeline {
  readonly counters: PipelineCounters = {
    linesSeen: 0,
    alertsRead: 0,
    alertsFiltered: 0,
    malformedLines: 0,
    addressesMasked: 0,
    statsRecords: 0,
    lastAlertAt: null,
  };
  private readonly malformedLog: RateLimitedLog;
  private readonly now: () => number;
  private readonly held: EveLine[] = [];
  /** Characters of the held lines (≈ bytes: eve is mostly ASCII). */
  private heldChars = 0;
  private warnedHold: string | null = null;

  constructor(
    private readonly deps: TelemetryPipelineDeps,
    private readonly log: Logger,
  ) {
    this.malformedLog = new RateLimitedLog(log, 'warn', 10_000);
    this.now = deps.now ?? Date.now;
  }

  /**
   * The follower's pre-filter on raw bytes: the lines this stage acts on are alerts, `stats`
   * records (when someone listens) and lines that are not even shaped like a JSON object (to count
   * them as malformed). Everything else is acknowledged without ever being decoded.
   */
  readonly wantsLine = (bytes: Buffer, start: number, end: number): boolean => {
    if (bytes[start] !== 123 /* { */ || bytes[end - 1] !== 125 /* } */) return true;
    const line = bytes.subarray(start, end);
    return line.indexOf(ALERT_BYTES) >= 0 || (this.deps.onStats !== undefined && line.indexOf(STATS_BYTES) >= 0);
  };

  /** Lines the sink had no room for yet, waiting for `drain()`. */
  get heldLines(): number {
    return this.held.length;
  }

  /** Size of the held lines in characters; the follower stops reading above a bound. */
  get heldBytes(): number {
    return this.heldChars;
  }

  /** Alert lines among the held ones (counted on demand, for /status). */
  get heldAlerts(): number {
    let n = 0;
    for (const l of this.held) if (looksLikeAlert(l.text)) n++;
    return n;
  }

  handle(lines: readonly EveLine[]): void {
    for (const line of lines) {
      if (this.held.length > 0) this.hold(line);
      else this.handleOne(line);
    }
  }

  /** Called when the sink has room again: feeds held lines in order. */
  drain(): void {
    while (this.held.length > 0 && this.sinkHasRoom()) {
      const line = this.held.shift()!;
      this.heldChars -= line.text.length;
      this.handleOne(line);
    }
  }

  private sinkHasRoom(): boolean {
    return this.deps.sink !== null && this.holdReason() === null && this.deps.sink.hasCapacity();
  }

  /** Why alerts are held back, or null when they may be sent. */
  private holdReason(): string | null {
    if (this.deps.sink === null) return 'No token configured: alerts are not sent and stay unacknowledged in eve.json until a token is set.';
    return this.deps.blocked?.() ?? null;
  }

  private handleOne(line: EveLine): void {
    this.counters.linesSeen++;
    const text = line.text;
    if (!looksLikeAlert(text)) {
      if (!isJsonObjectShape(text)) {
        this.malformed(line, 'not a JSON object');
      } else if (this.deps.onStats && text.includes(STATS_MARK)) {
        const parsed = parseEveLine(text);
        if (parsed.ok && parsed.record['event_type'] === 'stats') {
          this.counters.statsRecords++;
          this.deps.onStats(parsed.record);
        }
      }
      this.deps.ack(line.seq);
      return;
    }
    const parsed = parseEveLine(text);
    if (!parsed.ok) {
      this.malformed(line, parsed.reason);
      this.deps.ack(line.seq);
      return;
    }
    const record = parsed.record;
    if (!isTelemetryAlert(record, this.deps.telemetrySids())) {
      if (record['event_type'] === 'alert') this.counters.alertsFiltered++;
      this.deps.ack(line.seq);
      return;
    }
    const sink = this.deps.sink;
    const hold = this.holdReason();
    if (sink === null || hold !== null) {
      if (this.warnedHold !== hold) {
        this.warnedHold = hold;
        this.log.warn(hold ?? 'Alerts are held.', sink === null ? { hint: 'set ETPRO_TOKEN or ETPRO_TOKEN_FILE' } : {});
      }
      this.hold(line);
      this.counters.linesSeen--;
      return;
    }
    if (!sink.hasCapacity()) {
      this.hold(line);
      this.counters.linesSeen--;
      return;
    }
    const out = anonymize(record, this.deps.networks());
    if (out['src_ip'] !== record['src_ip']) this.counters.addressesMasked++;
    if (out['dest_ip'] !== record['dest_ip']) this.counters.addressesMasked++;
    this.counters.alertsRead++;
    this.counters.lastAlertAt = this.now();
    sink.submit(line.seq, serializeEvent(out));
  }

  private hold(line: EveLine): void {
    this.held.push(line);
    this.heldChars += line.text.length;
  }

  private malformed(line: EveLine, reason: string): void {
    this.counters.malformedLines++;
    this.malformedLog.write('Skipped a malformed eve.json line.', { file: line.file, offset: line.offset, reason });
  }
}

/** The cheap shape check for lines that are not parsed: Suricata writes one JSON object a line. */
function isJsonObjectShape(text: string): boolean {
  return text.charCodeAt(0) === 123 /* { */ && text.charCodeAt(text.length - 1) === 125 /* } */;
}
