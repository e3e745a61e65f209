import { readFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import type { Logger } from '../logger.js';
import { errorCode, errorMessage, isAgentError } from '../errors.js';
import { AddressSet } from './address-set.js';
import { resolveHomeNet } from './home-net.js';
import { LocalNetworks, PRIVATE_RANGES, type NetworkSource } from './local-networks.js';

export interface LocalNetworksOptions {
  readonly suricataYaml: string;
  readonly homeNet: readonly string[];
  readonly maskInterfaceNetworks: boolean;
  readonly maskPrivateRanges: boolean;
}

export interface LoadedLocalNetworks {
  readonly networks: LocalNetworks;
  /** Where HOME_NET came from: suricata.yaml, or nowhere (design §3 rule 8). */
  readonly homeNetSource: 'suricata.yaml' | 'none';
  /** Problems worth showing on /status; each was also logged. */
  readonly warnings: string[];
  /**
   * Set when suricata.yaml was read but its HOME_NET is unusable (malformed, unknown `$VAR`, a
   * loop, invalid YAML). Suricata itself refuses such a HOME_NET, and sending alerts without it
   * could leak addresses the operator meant to mask, so the agent holds alerts until it is fixed.
   */
  readonly homeNetInvalid: string | null;
}

/**
 * Builds the local networks (design §3 rule 4): HOME_NET from suricata.yaml, ETPRO_HOME_NET,
 * the host's interface networks and the private ranges (the last two can be switched off).
 * A missing or unusable HOME_NET is not fatal: it is reported once here (and returned for
 * /status) and the other sources still apply. Bad ETPRO_HOME_NET entries are reported and
 * skipped (the configuration loader has already checked their shape).
 */
export async function loadLocalNetworks(opts: LocalNetworksOptions, log: Logger): Promise<LoadedLocalNetworks> {
  const warnings: string[] = [];
  const sources: NetworkSource[] = [];
  let homeNetSource: 'suricata.yaml' | 'none' = 'none';
  let homeNetProblem: string | null = null;
  let homeNetInvalid: string | null = null;

  let yamlText: string | null = null;
  try {
    yamlText = await readFile(opts.suricataYaml, 'utf8');
  } catch (err) {
    homeNetProblem = `${opts.suricataYaml} cannot be read (${errorCode(err) ?? errorMessage(err)})`;
  }
  if (yamlText !== null) {
    try {
      const home = resolveHomeNet(yamlText);
      for (const w of home.warnings) warnings.push(`${opts.suricataYaml}: ${w}`);
      if (home.set !== null && home.expression !== null) {
        sources.push({ source: 'HOME_NET (suricata.yaml)', set: home.set, networks: [home.expression] });
        homeNetSource = 'suricata.yaml';
      } else homeNetProblem = `${opts.suricataYaml} defines no HOME_NET`;
    } catch (err) {
      if (!isAgentError(err, 'ERR_HOME_NET_INVALID')) throw err;
      homeNetProblem = `HOME_NET in ${opts.suricataYaml} is unusable: ${err.message}`;
      homeNetInvalid = homeNetProblem;
    }
  }

  const extra: string[] = [];
  for (const term of opts.homeNet) {
    try {
      AddressSet.fromTerm(term);
      extra.push(term);
    } catch (err) {
      warnings.push(`ETPRO_HOME_NET entry ${JSON.stringify(term)} is skipped: ${errorMessage(err)}`);
    }
  }
  if (extra.length > 0) sources.push(LocalNetworks.source('ETPRO_HOME_NET', extra));

  if (opts.maskInterfaceNetworks) {
    const cidrs = await interfaceNetworks();
    if (cidrs.length > 0) sources.push(LocalNetworks.source('interfaces', cidrs));
  }
  if (opts.maskPrivateRanges) sources.push(LocalNetworks.source('private ranges', PRIVATE_RANGES));

  if (homeNetProblem !== null) {
    const masked = [
      extra.length > 0 ? 'ETPRO_HOME_NET' : null,
      opts.maskPrivateRanges ? 'private ranges' : null,
      opts.maskInterfaceNetworks ? 'interface networks' : null,
    ].filter((s): s is string => s !== null);
    const verb = masked.length === 1 && masked[0] === 'ETPRO_HOME_NET' ? 'is' : 'are';
    const only = masked.length > 0 ? `only ${joinAnd(masked)} ${verb} masked` : 'no address is masked at all';
    warnings.push(`No HOME_NET could be read (${homeNetProblem}); ${only}.`);
  }

  for (const w of warnings) log.warn(w);
  const networks = new LocalNetworks(sources);
  log.info('Local networks loaded.', { homeNetSource, sources: networks.describe().map((d) => `${d.source}: ${d.networks.length}`) });
  return { networks, homeNetSource, warnings, homeNetInvalid };
}

/**
 * The networks of the host's interfaces as CIDRs (`192.0.2.0/24`, `fe80::/64`), loopback
 * included, deduplicated. Read with node:os, which lists every address of an interface
 * (systeminformation reports only one IPv4 and one IPv6 per interface, losing secondary and
 * link-local addresses).
 */
export async function interfaceNetworks(): Promise<string[]> {
  const out = new Set<string>();
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      const cidr = networkCidr(a.address, a.netmask);
      if (cidr !== null) out.add(cidr);
    }
  }
  return [...out];
}

/** The network of an address and netmask (`192.0.2.2` + `255.255.255.0` → `192.0.2.0/24`); null when unusable. */
export function networkCidr(address: string, netmask: string): string | null {
  try {
    const addr = ipaddr.parse(address.split('%')[0]!);
    const mask = ipaddr.parse(netmask);
    const bits = mask.kind() === addr.kind() ? mask.prefixLengthFromSubnetMask() : null;
    if (bits === null || bits === 0) return null;
    const net = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(`${address}/${bits}`) : ipaddr.IPv6.networkAddressFromCIDR(`${address.split('%')[0]!}/${bits}`);
    return `${net.toString()}/${bits}`;
  } catch {
    return null;
  }
}

function joinAnd(items: string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]!}`;
}
