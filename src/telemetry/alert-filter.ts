import type { EveRecord } from './eve-record.js';

/**
 * Which records leave the host (design §3): only `event_type: "alert"`, and when
 * telemetry_sids.txt lists SIDs, only alerts whose `alert.signature_id` is listed. A missing or
 * empty list (null or an empty set) means every alert, never every event type (rule 6). Pure.
 */
export function isTelemetryAlert(record: EveRecord, sids: ReadonlySet<number> | null): boolean {
  if (record['event_type'] !== 'alert') return false;
  if (sids === null || sids.size === 0) return true;
  const alert = record['alert'];
  if (alert === null || typeof alert !== 'object') return false;
  const sid = (alert as Record<string, unknown>)['signature_id'];
  return typeof sid === 'number' && sids.has(sid);
}
