import { parseIp } from './address-set.js';
import type { EveRecord } from './eve-record.js';
import type { LocalNetworks } from './local-networks.js';

/**
 * The privacy contract (design §3), in one pure function: record in, anonymized record out.
 * No I/O, no clock; the input is never mutated.
 *
 * Decisions beyond the letter of §3, and what is deliberately kept:
 * - Top-level keys outside the allow-list are dropped, which removes `flow` (byte counts,
 *   times), `payload`/`packet`/`payload_printable`, `dns`, `fileinfo`, `tx_id`, `pcap_cnt`,
 *   `pkt_src`, `direction`, `parent_id`, `host`, a top-level `xff`, `metadata` (flowbits, pcre
 *   vars) and anything a later Suricata adds.
 * - Inside `http`, the request and response bodies (`http_request_body`,
 *   `http_response_body` and their `_printable` forms, present only when the operator enables
 *   `http-body` logging) are removed as well: they are raw payload and can carry credentials.
 *   This goes beyond the plugin; the parity fixture has no such fields.
 * - `http.hostname` and `tls.sni` that are host names (not IP literals) are kept, as the
 *   plugin keeps them and the parity fixture expects them; they name the remote party of most
 *   alerts. `tls.subject`, `tls.issuerdn`, `tls.serial`, `tls.fingerprint`, `tls.ja3`/`ja3s`
 *   describe the server's certificate and are kept for the same reason.
 * - `in_iface` and `vlan` are kept (plugin behaviour); they name local interfaces and VLANs,
 *   not hosts.
 * - An IP literal is recognized strictly (dotted quad, or IPv6 in any spelling, bracketed or
 *   not); octal/hex/short IPv4 spellings in a Host header are treated as names, not masked.
 * - Nested values that need no change (e.g. `tls.ja3`, `vlan`) are shared with the input, not
 *   copied; treat both records as immutable.
 */

/** Top-level keys that may leave the host (§3 rule 1). */
const ALLOWED = new Set([
  'timestamp',
  'flow_id',
  'in_iface',
  'event_type',
  'vlan',
  'src_ip',
  'src_port',
  'dest_ip',
  'dest_port',
  'proto',
  'alert',
  'tls',
  'http',
  'app_proto',
]);

/** §3 rule 2 (and `__proto__`, which a plain assignment would turn into a prototype). */
const ALERT_REMOVED = new Set(['category', 'severity', 'gid', 'signature', 'metadata', '__proto__']);

/** §3 rules 2 and 5, plus the bodies (see above). */
const HTTP_REMOVED = new Set([
  'http_user_agent',
  'url',
  'redirect',
  'http_refer',
  'xff',
  'request_headers',
  'response_headers',
  'http_request_body',
  'http_response_body',
  'http_request_body_printable',
  'http_response_body_printable',
  '__proto__',
]);

export function anonymize(record: EveRecord, nets: LocalNetworks): EveRecord {
  const out: EveRecord = {};
  for (const key in record) {
    if (!ALLOWED.has(key) || !Object.prototype.hasOwnProperty.call(record, key)) continue;
    const value = record[key];
    switch (key) {
      case 'src_ip':
      case 'dest_ip':
        out[key] = maskIfLocal(value, nets);
        break;
      case 'alert':
        out[key] = isObject(value) ? anonymizeAlert(value, nets) : value;
        break;
      case 'http':
        out[key] = isObject(value) ? anonymizeHttp(value, nets) : value;
        break;
      case 'tls':
        out[key] = isObject(value) ? anonymizeTls(value, nets) : value;
        break;
      default:
        out[key] = value;
    }
  }
  return out;
}

function anonymizeAlert(alert: Record<string, unknown>, nets: LocalNetworks): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in alert) {
    if (ALERT_REMOVED.has(key) || !Object.prototype.hasOwnProperty.call(alert, key)) continue;
    const value = alert[key];
    // §3 rule 5: rules with `target:` log the two ends again under alert.source / alert.target.
    if ((key === 'source' || key === 'target') && isObject(value) && 'ip' in value) {
      out[key] = { ...value, ip: maskIfLocal(value['ip'], nets) };
    } else out[key] = value;
  }
  return out;
}

function anonymizeHttp(http: Record<string, unknown>, nets: LocalNetworks): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in http) {
    if (HTTP_REMOVED.has(key) || !Object.prototype.hasOwnProperty.call(http, key)) continue;
    const value = http[key];
    out[key] = key === 'hostname' ? maskHostIfLocal(value, nets) : value;
  }
  return out;
}

function anonymizeTls(tls: Record<string, unknown>, nets: LocalNetworks): Record<string, unknown> {
  if (!('sni' in tls)) return tls;
  return { ...tls, sni: maskHostIfLocal(tls['sni'], nets) };
}

/**
 * A Host header or SNI as the client sent it may wrap an IP literal: a trailing dot
 * (`10.1.2.3.`) or a port (`10.1.2.3:8080`, `[::1]:8080`). The address part is judged and
 * masked; the dot or port is kept.
 */
const HOST_WITH_SUFFIX = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])(\.?(?::\d{1,5})?)$/;

function maskHostIfLocal(value: unknown, nets: LocalNetworks): unknown {
  if (typeof value !== 'string') return value;
  if (nets.contains(value)) return maskAddress(value);
  const m = HOST_WITH_SUFFIX.exec(value);
  if (m === null || m[2] === '' || !nets.contains(m[1]!)) return value;
  return maskAddress(m[1]!) + m[2]!;
}

function maskIfLocal(value: unknown, nets: LocalNetworks): unknown {
  return typeof value === 'string' && nets.contains(value) ? maskAddress(value) : value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const V4_MASK = 'xxx.xxx.xxx.';
const V6_MASK = 'xxxx:xxxx:';

/**
 * Masks one address literal as the plugin does (§3 rules 3 and 7):
 * IPv4 `a.b.c.d` → `xxx.xxx.xxx.d`; IPv6 → `xxxx:xxxx:` + its last two groups as written
 * (`fe80:0000:…:fec0:d65f` → `xxxx:xxxx:fec0:d65f`, `::1` → `xxxx:xxxx::1`); IPv4-mapped IPv6
 * in any spelling → `::ffff:xxx.xxx.xxx.d`. Brackets (`[::1]`) are kept. Text that is not an
 * address literal comes back fully masked (`xxx`), never unchanged.
 */
export function maskAddress(ip: string): string {
  if (ip.length > 1 && ip.charCodeAt(0) === 91 /* [ */ && ip.charCodeAt(ip.length - 1) === 93 /* ] */) {
    return `[${maskAddress(ip.slice(1, -1))}]`;
  }
  if (ip.includes(':')) {
    const lower = ip.toLowerCase();
    if (lower.includes('ffff')) {
      const p = parseIp(ip);
      if (p !== null && p.mapped) return `::ffff:${V4_MASK}${Number(p.value & 0xffn)}`;
    }
    const groups = ip.split(':');
    const last = groups[groups.length - 1]!;
    const beforeLast = groups[groups.length - 2] ?? '';
    // An embedded dotted quad (`64:ff9b::10.1.2.3`) would otherwise show the whole IPv4 address.
    if (last.includes('.')) return `${V6_MASK}${beforeLast}:${maskV4(last)}`;
    return `${V6_MASK}${beforeLast}:${last}`;
  }
  if (ip.includes('.')) return maskV4(ip);
  return 'xxx';
}

function maskV4(ip: string): string {
  const dot = ip.lastIndexOf('.');
  return dot < 0 ? 'xxx' : V4_MASK + ip.slice(dot + 1);
}

/**
 * Serializes an (anonymized) record for the wire: JSON, with `flow_id` and `parent_id`
 * written as JSON numbers carrying exactly the digits parseEveLine kept as strings.
 * A quote inside a string value is always escaped, so the pattern only meets real keys.
 */
export function serializeEvent(rec: EveRecord): string {
  return JSON.stringify(rec).replace(QUOTED_IDS, '$1"$2":$3');
}

const QUOTED_IDS = /([{,])"(flow_id|parent_id)":"(\d+)"/g;
