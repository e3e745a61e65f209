import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { parseDocument } from 'yaml';
import { AgentError, errorCode } from '../errors.js';

/**
 * What the agent needs from suricata.yaml: where the rules are (`default-rule-path` +
 * `rule-files`) and whether Suricata runs inline (IPS). HOME_NET is read by the privacy code.
 * Parsed with `yaml`; Suricata's `%YAML 1.1` header makes `yes`/`no` booleans, both spellings
 * are accepted. `include:` files are not followed.
 */
export interface SuricataYamlInfo {
  /** `default-rule-path`, or null when the yaml does not set it. */
  readonly defaultRulePath: string | null;
  /** `rule-files` entries exactly as written (may be relative, may be glob patterns). */
  readonly ruleFiles: readonly string[];
  /** IPS when an af-packet entry has `copy-mode: ips` with a `copy-iface` (see modeFromYaml). */
  readonly mode: 'IPS' | 'IDS';
  /** Why `mode` was chosen, for logs and /status. */
  readonly modeReason: string;
}

function asRecord(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/**
 * IPS when any af-packet entry has both `copy-mode: ips` and a non-empty `copy-iface`
 * (Suricata's AFPRunModeIsIPS returns true if any entry does). An `nfq:` or `ipfw:` section alone
 * selects nothing — those modes are chosen on the command line (`-q`, `-d`), which only the
 * running Suricata can tell (see `modeFromCaptureMode`).
 */
function modeFromYaml(root: Record<string, unknown>): { mode: 'IPS' | 'IDS'; reason: string } {
  const afp = root['af-packet'];
  if (Array.isArray(afp)) {
    for (const entry of afp) {
      const e = asRecord(entry);
      if (!e) continue;
      const copyMode = typeof e['copy-mode'] === 'string' ? e['copy-mode'].trim().toLowerCase() : '';
      const copyIface = e['copy-iface'];
      if (copyMode === 'ips' && typeof copyIface === 'string' && copyIface.trim() !== '') {
        return { mode: 'IPS', reason: `af-packet interface ${String(e['interface'])} has copy-mode ips with copy-iface ${copyIface}` };
      }
    }
  }
  return { mode: 'IDS', reason: 'no af-packet interface has copy-mode ips with a copy-iface' };
}

/** Parses suricata.yaml text. Throws ERR_SURICATA_YAML_INVALID naming `source` when it is not YAML. */
export function parseSuricataYaml(text: string, source = 'suricata.yaml'): SuricataYamlInfo {
  const doc = parseDocument(text, { uniqueKeys: false, strict: false, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new AgentError('ERR_SURICATA_YAML_INVALID', `${source} is not valid YAML: ${doc.errors[0]!.message}`, { file: source });
  }
  const root = asRecord(doc.toJS({ maxAliasCount: 1_000 }));
  if (!root) throw new AgentError('ERR_SURICATA_YAML_INVALID', `${source} is not a YAML mapping.`, { file: source });

  const drp = root['default-rule-path'];
  const defaultRulePath = typeof drp === 'string' && drp.trim() !== '' ? drp.trim() : null;
  const rf = root['rule-files'];
  const ruleFiles = Array.isArray(rf) ? rf.filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim()) : [];
  const { mode, reason } = modeFromYaml(root);
  return { defaultRulePath, ruleFiles, mode, modeReason: reason };
}

/** Reads and parses suricata.yaml. ENOENT → ERR_SURICATA_YAML_MISSING; other read errors → ERR_SURICATA_YAML_INVALID. */
export async function readSuricataYaml(path: string): Promise<SuricataYamlInfo> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') throw new AgentError('ERR_SURICATA_YAML_MISSING', `suricata.yaml ${path} does not exist.`, { file: path }, { cause: err });
    throw new AgentError('ERR_SURICATA_YAML_INVALID', `suricata.yaml ${path} cannot be read (${code ?? 'error'}).`, { file: path }, { cause: err });
  }
  return parseSuricataYaml(text, path);
}

/**
 * The mode the running Suricata reports through the `capture-mode` socket command, when known:
 * NFQ and IPFW are always inline. Any other capture mode leaves the yaml's answer for af-packet
 * (`AF_PACKET_DEV`) and makes everything else (`PCAP_DEV`, …) IDS.
 */
export function modeFromCaptureMode(captureMode: string | null, yaml: Pick<SuricataYamlInfo, 'mode'> | null): 'IPS' | 'IDS' | null {
  if (captureMode === null) return yaml?.mode ?? null;
  const m = captureMode.toUpperCase();
  if (m.startsWith('NFQ') || m.startsWith('IPFW')) return 'IPS';
  if (m.startsWith('AF_PACKET') || m.startsWith('AF-PACKET')) return yaml?.mode ?? 'IDS';
  return 'IDS';
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (const ch of pattern) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * The absolute rule files Suricata loads: each `rule-files` entry joined to `default-rule-path`
 * (absolute entries as they are), glob patterns (`*`, `?` in the file name) expanded against the
 * directory. Without `rule-files`, every `*.rules` file in `fallbackDir` (the rules volume).
 * Files that do not exist are left out; a pattern matching nothing adds nothing.
 */
export async function resolveRuleFiles(info: Pick<SuricataYamlInfo, 'defaultRulePath' | 'ruleFiles'> | null, fallbackDir: string): Promise<string[]> {
  const base = info?.defaultRulePath ?? fallbackDir;
  const entries = info && info.ruleFiles.length > 0 ? info.ruleFiles : ['*.rules'];
  const dirForEntries = info && info.ruleFiles.length > 0 ? base : fallbackDir;
  const out: string[] = [];
  const listing = new Map<string, string[]>();
  const list = async (dir: string): Promise<string[]> => {
    let names = listing.get(dir);
    if (!names) {
      try {
        names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile() || d.isSymbolicLink()).map((d) => d.name);
      } catch {
        names = [];
      }
      listing.set(dir, names);
    }
    return names;
  };
  for (const entry of entries) {
    const full = isAbsolute(entry) ? entry : join(dirForEntries, entry);
    const dir = dirname(full);
    const name = basename(full);
    const names = await list(dir);
    if (/[*?]/.test(name)) {
      const re = globToRegExp(name);
      for (const n of names.filter((x) => re.test(x)).sort()) out.push(join(dir, n));
    } else if (names.includes(name)) {
      out.push(full);
    }
  }
  return [...new Set(out)];
}
