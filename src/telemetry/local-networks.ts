import { AddressSet } from './address-set.js';

/**
 * Private, loopback, link-local, CGNAT and unique-local ranges (design §3 rule 4), masked by
 * default. Exactly the classes the design names; nothing else (for example 0.0.0.0/8 or
 * multicast) is added, so the output stays comparable with the plugin's.
 */
export const PRIVATE_RANGES: readonly string[] = Object.freeze([
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  'fc00::/7',
  'fe80::/10',
  '::1/128',
]);

/** One contributor to the local networks, as /status shows it. */
export interface NetworkSource {
  /** Where the networks come from, e.g. `HOME_NET (suricata.yaml)`, `ETPRO_HOME_NET`, `interfaces`, `private ranges`. */
  readonly source: string;
  readonly set: AddressSet;
  /** The networks as configured (HOME_NET keeps its text, exceptions included). */
  readonly networks: readonly string[];
}

export const DEFAULT_MEMO_ENTRIES = 10_000;

/**
 * The union of every source of local networks; `contains` decides whether an address is
 * masked. It is on the hot path (two or more lookups per alert), so answers are memoized in a
 * bounded map (oldest entry evicted first). Immutable once built: a new HOME_NET means a new
 * LocalNetworks.
 */
export class LocalNetworks {
  private readonly all: AddressSet;
  private readonly memo = new Map<string, boolean>();

  constructor(
    private readonly sources: readonly NetworkSource[],
    private readonly memoEntries = DEFAULT_MEMO_ENTRIES,
  ) {
    this.all = sources.reduce((acc, s) => acc.union(s.set), AddressSet.empty());
  }

  /** A source built from a list of terms (CIDRs, addresses, ranges, `!` exceptions). Throws ERR_ADDRESS_INVALID. */
  static source(source: string, terms: readonly string[]): NetworkSource {
    return { source, set: AddressSet.fromTerms(terms), networks: [...terms] };
  }

  /** True when `ip` (any spelling, bracketed or not) is an address inside the local networks. False for host names and garbage. */
  contains(ip: string): boolean {
    const hit = this.memo.get(ip);
    if (hit !== undefined) return hit;
    const answer = this.all.contains(ip);
    if (this.memo.size >= this.memoEntries) {
      const oldest = this.memo.keys().next();
      if (!oldest.done) this.memo.delete(oldest.value);
    }
    this.memo.set(ip, answer);
    return answer;
  }

  /** True when nothing at all is masked. */
  isEmpty(): boolean {
    return this.all.isEmpty();
  }

  describe(): { source: string; networks: string[] }[] {
    return this.sources.map((s) => ({ source: s.source, networks: [...s.networks] }));
  }
}
