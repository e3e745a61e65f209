/**
 * eve.json timestamps: `2026-12-03T16:20:22.565676+0000`, local time with a colon-less
 * offset. ECMAScript only guarantees `±HH:MM`, so the form is parsed here, keeping sub-ms digits.
 */
const TS = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/;

/** Epoch milliseconds (fractional) of an eve timestamp, or null when it is not one. */
export function parseEveTimestamp(text: string): number | null {
  const m = TS.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as [string, string, string, string, string, string, string, string | undefined, string];
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return null;
  let ms = Date.UTC(Number(y), month - 1, day, Number(h), Number(mi), Number(s));
  if (frac !== undefined) ms += Number(`0.${frac}`) * 1000;
  if (zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2, 4));
    if (oh > 23 || om > 59) return null;
    ms -= sign * (oh * 60 + om) * 60_000;
  }
  return ms;
}

const KEY = '"timestamp":"';

/** The `"timestamp"` of an eve line (or of its first bytes), in epoch ms; null when absent or malformed. */
export function eveLineTimestamp(line: string): number | null {
  const at = line.indexOf(KEY);
  if (at < 0) return null;
  const start = at + KEY.length;
  const end = line.indexOf('"', start);
  if (end < 0) return null;
  return parseEveTimestamp(line.slice(start, end));
}
