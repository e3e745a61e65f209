/**
 * One eve.json record, parsed. `flow_id` and `parent_id` are kept as exact decimal digit
 * strings (never rounded through a float); `serializeEvent` in anonymizer.ts writes them back
 * as JSON numbers with the same digits.
 */
export type EveRecord = Record<string, unknown>;

export type EveLineResult =
  | { ok: true; record: EveRecord }
  | { ok: false; code: 'ERR_EVE_LINE_NOT_JSON' | 'ERR_EVE_LINE_NO_TIMESTAMP'; reason: string };

/** Suricata writes compact JSON, so an alert line always contains this exact text. */
const ALERT_MARK = '"event_type":"alert"';

/**
 * Quotes the digits of `flow_id`/`parent_id` before JSON.parse. A key in compact JSON follows
 * `{` or `,`; inside a string value a quote is always escaped (`\"`), so this cannot match there.
 */
const BIG_IDS = /([{,])"(flow_id|parent_id)":(\d+)/g;
const ID_KEY_HINT = '_id":';

/**
 * The cheap pre-check of the hot path: true when the line may be an alert. Lines for which it
 * is false are certainly not alerts and need no JSON.parse. A true answer still needs
 * `parseEveLine` and the alert filter (the text could sit inside a string value).
 */
export function looksLikeAlert(line: string): boolean {
  return line.includes(ALERT_MARK);
}

/** Parses one eve.json line: it must be a JSON object with a string `timestamp`. */
export function parseEveLine(line: string): EveLineResult {
  const text = line.includes(ID_KEY_HINT) ? line.replace(BIG_IDS, '$1"$2":"$3"') : line;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, code: 'ERR_EVE_LINE_NOT_JSON', reason: `not JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'ERR_EVE_LINE_NOT_JSON', reason: `not a JSON object (${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value})` };
  }
  const record = value as EveRecord;
  const ts = record['timestamp'];
  if (typeof ts !== 'string' || ts.length === 0) {
    return {
      ok: false,
      code: 'ERR_EVE_LINE_NO_TIMESTAMP',
      reason: ts === undefined ? 'record has no timestamp' : 'record timestamp is not a non-empty string',
    };
  }
  return { ok: true, record };
}
