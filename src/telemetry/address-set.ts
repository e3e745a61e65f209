import ipaddr from 'ipaddr.js';
import { AgentError } from '../errors.js';

/**
 * A set of IPv4 and IPv6 addresses, stored as sorted, disjoint, inclusive intervals of
 * 32-bit and 128-bit integers. Exceptions (`!X` in Suricata's grammar) are applied when the
 * set is built, by interval subtraction, so a lookup is one binary search. Parsing of address
 * text is left to ipaddr.js.
 */

type Interval = readonly [lo: bigint, hi: bigint];
type Intervals = readonly Interval[];

const V4_MAX = (1n << 32n) - 1n;
const V6_MAX = (1n << 128n) - 1n;
/** The top 96 bits of an IPv4-mapped IPv6 address (::ffff:0:0/96). */
const MAPPED_TOP = 0xffffn;

/** An address as the set sees it: family and integer value. IPv4-mapped IPv6 is reported as IPv4. */
export interface ParsedIp {
  readonly family: 4 | 6;
  readonly value: bigint;
  /** True when the text was an IPv4-mapped IPv6 address (any spelling); `value` is then the IPv4 value. */
  readonly mapped: boolean;
}

/** Longest text worth handing to the parser: a full IPv6 with embedded IPv4, brackets and a zone. */
const MAX_IP_TEXT = 80;

/**
 * Parses an address literal strictly: dotted-quad IPv4 (no octal/hex/short forms), IPv6 in any
 * spelling (compressed, fully expanded, with an embedded IPv4), optionally in brackets (`[::1]`,
 * as HTTP Host headers write it). Anything else, including host names, gives null; never throws.
 */
export function parseIp(text: string): ParsedIp | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_IP_TEXT) return null;
  let s = text;
  if (s.charCodeAt(0) === 91 /* [ */) {
    if (s.charCodeAt(s.length - 1) !== 93 /* ] */) return null;
    s = s.slice(1, -1);
  }
  if (s.includes(':')) {
    let v6: ipaddr.IPv6;
    try {
      v6 = ipaddr.IPv6.parse(s);
    } catch {
      return null;
    }
    if (v6.isIPv4MappedAddress()) return { family: 4, value: v4Value(v6.toIPv4Address()), mapped: true };
    return { family: 6, value: v6Value(v6), mapped: false };
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(s)) return null;
  return { family: 4, value: v4Value(ipaddr.IPv4.parse(s)), mapped: false };
}

/** Builds a set from normalized intervals; assigned by the class (its constructor is private). */
let build: (v4: Intervals, v6: Intervals) => AddressSet;

export class AddressSet {
  static {
    build = (v4, v6) => new AddressSet(v4, v6);
  }

  private constructor(
    private readonly v4: Intervals,
    private readonly v6: Intervals,
  ) {}

  static empty(): AddressSet {
    return EMPTY;
  }

  /** Every IPv4 and IPv6 address (Suricata's `any`). */
  static any(): AddressSet {
    return ANY;
  }

  /**
   * One address term: `any`, a bare address, a CIDR (`10.0.0.0/8`, `2001:db8::/32`, also an IPv4
   * netmask `10.0.0.0/255.0.0.0`), or a range `a-b` of one family. Host bits in a CIDR are
   * ignored, as Suricata does. An IPv4-mapped IPv6 CIDR of /96 or longer is stored as IPv4.
   * Throws AgentError ERR_ADDRESS_INVALID naming the term and the problem.
   */
  static fromTerm(term: string): AddressSet {
    const t = term.trim();
    if (t.length === 0) throw invalid(term, 'it is empty');
    if (t.toLowerCase() === 'any') return ANY;
    const dash = t.indexOf('-');
    if (dash >= 0) return rangeTerm(term, t.slice(0, dash).trim(), t.slice(dash + 1).trim());
    const slash = t.indexOf('/');
    if (slash >= 0) return cidrTerm(term, t.slice(0, slash).trim(), t.slice(slash + 1).trim());
    const ip = parseIp(t);
    if (ip === null) throw invalid(term, 'it is not an IPv4 or IPv6 address, CIDR, range or "any"');
    return single(ip.family, [[ip.value, ip.value]]);
  }

  /**
   * A list of terms, each optionally prefixed with `!` (an exception): the union of the plain
   * terms minus the union of the exceptions. A list of exceptions only means "everything except".
   */
  static fromTerms(terms: readonly string[]): AddressSet {
    let plus = EMPTY;
    let minus = EMPTY;
    let anyPlus = false;
    for (const raw of terms) {
      const t = raw.trim();
      if (t.startsWith('!')) minus = minus.union(AddressSet.fromTerm(t.slice(1)));
      else {
        plus = plus.union(AddressSet.fromTerm(t));
        anyPlus = true;
      }
    }
    return (anyPlus ? plus : minus.isEmpty() ? EMPTY : ANY).subtract(minus);
  }

  union(other: AddressSet): AddressSet {
    if (other.isEmpty()) return this;
    if (this.isEmpty()) return other;
    return build(unionOf(this.v4, other.v4), unionOf(this.v6, other.v6));
  }

  subtract(other: AddressSet): AddressSet {
    if (other.isEmpty() || this.isEmpty()) return this;
    return build(subtractOf(this.v4, other.v4), subtractOf(this.v6, other.v6));
  }

  isEmpty(): boolean {
    return this.v4.length === 0 && this.v6.length === 0;
  }

  /**
   * True when `ip` is an address literal inside the set. IPv4-mapped IPv6 (`::ffff:10.1.2.3`,
   * `0000:…:ffff:0a01:0203`) is judged by its IPv4 address. Host names, garbage and non-strings
   * give false; never throws.
   */
  contains(ip: string): boolean {
    const p = parseIp(ip);
    return p !== null && this.containsParsed(p);
  }

  containsParsed(p: ParsedIp): boolean {
    return search(p.family === 4 ? this.v4 : this.v6, p.value);
  }

  /** The set as a minimal list of CIDRs (IPv4 first), for display. */
  toCidrs(): string[] {
    const out: string[] = [];
    for (const [lo, hi] of this.v4) for (const [a, bits] of toPrefixes(lo, hi, 32)) out.push(`${v4Text(a)}/${bits}`);
    for (const [lo, hi] of this.v6) for (const [a, bits] of toPrefixes(lo, hi, 128)) out.push(`${v6Text(a)}/${bits}`);
    return out;
  }
}

const EMPTY = build([], []);
const ANY = build([[0n, V4_MAX]], [[0n, V6_MAX]]);

function single(family: 4 | 6, intervals: Intervals): AddressSet {
  return family === 4 ? build(intervals, []) : build([], intervals);
}

function invalid(term: string, problem: string): AgentError {
  return new AgentError('ERR_ADDRESS_INVALID', `Address ${JSON.stringify(term)} is invalid: ${problem}.`, { term, problem });
}

function rangeTerm(term: string, a: string, b: string): AddressSet {
  const lo = parseIp(a);
  const hi = parseIp(b);
  if (lo === null || hi === null) throw invalid(term, `range ends must be addresses (${JSON.stringify(lo === null ? a : b)} is not)`);
  if (lo.family !== hi.family) throw invalid(term, 'range ends are of different IP families');
  if (lo.value > hi.value) throw invalid(term, 'range start is above its end');
  return single(lo.family, [[lo.value, hi.value]]);
}

function cidrTerm(term: string, addrText: string, bitsText: string): AddressSet {
  if (addrText.includes(':')) {
    let base: ipaddr.IPv6;
    try {
      base = ipaddr.IPv6.parse(addrText);
    } catch {
      throw invalid(term, `${JSON.stringify(addrText)} is not an IPv6 address`);
    }
    if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > 128) throw invalid(term, 'an IPv6 prefix length must be 0 to 128');
    const bits = Number(bitsText);
    const value = v6Value(base);
    if (bits >= 96 && value >> 32n === MAPPED_TOP) return prefixSet(4, value & V4_MAX, bits - 96);
    return prefixSet(6, value, bits);
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(addrText)) throw invalid(term, `${JSON.stringify(addrText)} is not an IPv4 address`);
  let bits: number;
  if (/^\d{1,2}$/.test(bitsText) && Number(bitsText) <= 32) bits = Number(bitsText);
  else if (ipaddr.IPv4.isValidFourPartDecimal(bitsText)) {
    const fromMask = ipaddr.IPv4.parse(bitsText).prefixLengthFromSubnetMask();
    if (fromMask === null) throw invalid(term, `${bitsText} is not a contiguous netmask`);
    bits = fromMask;
  } else throw invalid(term, 'an IPv4 prefix length must be 0 to 32 (or a dotted netmask)');
  return prefixSet(4, v4Value(ipaddr.IPv4.parse(addrText)), bits);
}

function prefixSet(family: 4 | 6, value: bigint, bits: number): AddressSet {
  const width = family === 4 ? 32n : 128n;
  const hostBits = width - BigInt(bits);
  const hostMask = (1n << hostBits) - 1n;
  const lo = value & ~hostMask;
  return single(family, [[lo, lo | hostMask]]);
}

function v4Value(a: ipaddr.IPv4): bigint {
  const [o0, o1, o2, o3] = a.octets as [number, number, number, number];
  return BigInt(((o0 << 24) >>> 0) + (o1 << 16) + (o2 << 8) + o3);
}

function v6Value(a: ipaddr.IPv6): bigint {
  let v = 0n;
  for (const part of a.parts) v = (v << 16n) | BigInt(part);
  return v;
}

function v4Text(v: bigint): string {
  const n = Number(v);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function v6Text(v: bigint): string {
  const parts: number[] = [];
  for (let i = 7; i >= 0; i--) parts.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  return new ipaddr.IPv6(parts).toRFC5952String();
}

function search(list: Intervals, v: bigint): boolean {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const [a, b] = list[mid]!;
    if (v < a) hi = mid - 1;
    else if (v > b) lo = mid + 1;
    else return true;
  }
  return false;
}

function unionOf(a: Intervals, b: Intervals): Intervals {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const all = [...a, ...b].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of all) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else out.push([lo, hi]);
  }
  return out;
}

function subtractOf(a: Intervals, b: Intervals): Intervals {
  if (a.length === 0 || b.length === 0) return a;
  const out: Interval[] = [];
  let j = 0;
  for (const [lo0, hi] of a) {
    let lo = lo0;
    while (j < b.length && b[j]![1] < lo) j++;
    let k = j;
    while (k < b.length && b[k]![0] <= hi && lo <= hi) {
      const [blo, bhi] = b[k]!;
      if (blo > lo) out.push([lo, blo - 1n]);
      lo = bhi + 1n;
      k++;
    }
    if (lo <= hi) out.push([lo, hi]);
  }
  return out;
}

/** Splits an inclusive interval into the fewest aligned prefixes. */
function toPrefixes(lo: bigint, hi: bigint, width: number): [bigint, number][] {
  const out: [bigint, number][] = [];
  let cur = lo;
  while (cur <= hi) {
    let size = 0;
    while (size < width) {
      const next = size + 1;
      const block = 1n << BigInt(next);
      if ((cur & (block - 1n)) !== 0n || cur + block - 1n > hi) break;
      size = next;
    }
    out.push([cur, width - size]);
    cur += 1n << BigInt(size);
  }
  return out;
}
