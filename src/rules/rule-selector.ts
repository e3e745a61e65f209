import { AgentError } from '../errors.js';

/**
 * Rule selection as suricata-update does it (pure: text in, text out):
 * categories (rule file names) → disable.conf → enable.conf (enable beats disable) → modify.conf,
 * ET's `*deleted.rules` ignored, one merged `suricata.rules` where disabled rules are written as `# ` + rule.
 */

const ACTIONS = new Set(['alert', 'pass', 'drop', 'reject', 'rejectsrc', 'rejectdst', 'rejectboth', 'config']);
/** suricata-update's rule regex: any leading `#`/white space marks a disabled rule, then `header (options)`. */
const RULE_RE = /^(#)?[\s#]*(([^()]+)\((.*)\)\s*)$/;

export interface ParsedRule {
  /** Rule text without any leading `#`. */
  readonly raw: string;
  readonly enabled: boolean;
  readonly gid: number;
  readonly sid: number;
  readonly rev: number;
  /** Archive path of the file the rule came from, e.g. `rules/emerging-malware.rules`. */
  readonly group: string;
}

export interface RuleFile {
  /** Path inside the archive (`rules/emerging-foo.rules`). */
  readonly path: string;
  readonly text: string;
}

function optionNumber(options: string, name: string): number | null {
  const m = new RegExp(`(?:^|;)\\s*${name}\\s*:\\s*(\\d+)\\s*;`).exec(options);
  return m ? Number(m[1]) : null;
}

/** Parses one line of a rule file; null for comments, blank lines and text that is not a rule. */
export function parseRuleLine(line: string, group: string): ParsedRule | null {
  const m = RULE_RE.exec(line.replace(/\r$/, ''));
  if (!m) return null;
  const raw = m[2]!.trim();
  const header = m[3]!.trim();
  const action = header.split(/\s+/, 1)[0]!;
  if (!ACTIONS.has(action)) return null;
  const sid = optionNumber(m[4]!, 'sid');
  if (sid === null) return null;
  return { raw, enabled: m[1] === undefined && !/^\s/.test(line), gid: optionNumber(m[4]!, 'gid') ?? 1, sid, rev: optionNumber(m[4]!, 'rev') ?? 0, group };
}

/** Lines of a rule file that are neither blank, comments nor parseable rules. */
export interface SkippedLines {
  /** Archive path of the file. */
  readonly file: string;
  readonly count: number;
  /** 1-based line number of the first one (where a `\`-continued rule starts). */
  readonly firstLine: number;
}

/**
 * Parses a rule file, joining `\`-continued lines as Suricata does, and counts the lines that are
 * not blank, not comments (`#`) and not parseable rules (e.g. a missing `;` before `sid:`).
 */
export function parseRuleFileDetailed(file: RuleFile): { rules: ParsedRule[]; skipped: SkippedLines | null } {
  const rules: ParsedRule[] = [];
  let pending = '';
  let pendingStart = 0;
  let count = 0;
  let firstLine = 0;
  const lines = file.text.split('\n');
  lines.forEach((line, i) => {
    const l = line.replace(/\r$/, '');
    if (pending === '') pendingStart = i + 1;
    if (l.endsWith('\\')) {
      pending += l.slice(0, -1);
      return;
    }
    const full = pending + l;
    pending = '';
    const r = parseRuleLine(full, file.path);
    if (r) rules.push(r);
    else if (full.trim() !== '' && !full.trimStart().startsWith('#')) {
      count++;
      if (firstLine === 0) firstLine = pendingStart;
    }
  });
  if (pending.trim() !== '' && !pending.trimStart().startsWith('#')) {
    // A file ending in a continuation: parse what is there, as Suricata would.
    const r = parseRuleLine(pending, file.path);
    if (r) rules.push(r);
    else {
      count++;
      if (firstLine === 0) firstLine = pendingStart;
    }
  }
  return { rules, skipped: count > 0 ? { file: file.path, count, firstLine } : null };
}

/** Parses a rule file, joining `\`-continued lines as Suricata does. */
export function parseRuleFile(file: RuleFile): ParsedRule[] {
  return parseRuleFileDetailed(file).rules;
}

// ---------------------------------------------------------------- matchers

export type RuleMatcher = (rule: ParsedRule) => boolean;

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** fnmatch: `*`, `?` and `[...]`, anchored, case-sensitive (as Python's fnmatch on Linux). */
export function fnmatchToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function compileRegex(source: string, where: string): RegExp {
  try {
    // Python's (?i) inline flag is common in suricata-update files; JS has no inline flags.
    return new RegExp(source.replace(/^\(\?i\)/, ''), 'i');
  } catch (err) {
    throw new AgentError('ERR_CONFIG_INVALID', `${where}: ${JSON.stringify(source)} is not a valid regular expression (${(err as Error).message}).`);
  }
}

function metadataPairs(raw: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  const re = /(?:^|;)\s*metadata\s*:\s*([^;]*);/g;
  for (let m = re.exec(raw); m; m = re.exec(raw)) {
    for (const item of m[1]!.split(',')) {
      const t = item.trim().split(/\s+/);
      if (t.length >= 2) pairs.push([t[0]!.toLowerCase(), t.slice(1).join(' ').toLowerCase()]);
    }
  }
  return pairs;
}

/**
 * One matcher from one line of disable.conf / enable.conf (or the matcher part of modify.conf).
 * `where` names the file and line for error messages.
 */
export function parseMatcher(text: string, where: string): RuleMatcher {
  const t = text.trim();
  if (t === '*') return () => true;
  if (t.startsWith('re:')) {
    const re = compileRegex(t.slice(3).trim(), where);
    return (r) => re.test(r.raw);
  }
  if (t.startsWith('group:') || (/\.rules$/.test(t) && !t.includes(':'))) {
    const pattern = t.startsWith('group:') ? t.slice(6).trim() : t;
    const withExt = fnmatchToRegExp(pattern.endsWith('.rules') ? pattern : `${pattern}.rules`);
    return (r) => withExt.test(basename(r.group));
  }
  if (t.startsWith('filename:')) {
    const re = fnmatchToRegExp(t.slice(9).trim());
    return (r) => re.test(r.group);
  }
  if (t.startsWith('metadata:')) {
    const parts = t.slice(9).trim().split(/\s+/);
    if (parts.length < 2) throw new AgentError('ERR_CONFIG_INVALID', `${where}: "metadata:" needs a key and a value.`);
    const key = parts[0]!.toLowerCase();
    const value = parts.slice(1).join(' ').toLowerCase();
    return (r) => metadataPairs(r.raw).some(([k, v]) => k === key && v === value);
  }
  const ids = t.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (ids.length > 0 && ids.every((s) => /^\d+(:\d+){0,2}$/.test(s))) {
    const keys = ids.map((s) => {
      const n = s.split(':').map(Number);
      return n.length === 1 ? { gid: 1, sid: n[0]!, rev: null } : { gid: n[0]!, sid: n[1]!, rev: n.length === 3 ? n[2]! : null };
    });
    return (r) => keys.some((k) => k.gid === r.gid && k.sid === r.sid && (k.rev === null || k.rev === r.rev));
  }
  throw new AgentError('ERR_CONFIG_INVALID', `${where}: ${JSON.stringify(t)} is not a rule matcher (sid, gid:sid, re:, group:, filename:, metadata: or *).`);
}

function conffLines(text: string): Array<{ line: string; n: number }> {
  const out: Array<{ line: string; n: number }> = [];
  text.split('\n').forEach((l, i) => {
    const line = l.replace(/\r$/, '').trim();
    if (line !== '' && !line.startsWith('#')) out.push({ line, n: i + 1 });
  });
  return out;
}

/** Parses a disable.conf / enable.conf: one matcher a line, `#` comments. */
export function parseMatcherList(text: string, name: string): RuleMatcher[] {
  return conffLines(text).map(({ line, n }) => parseMatcher(line, `${name} line ${n}`));
}

export interface RuleModification {
  readonly match: RuleMatcher;
  readonly from: RegExp;
  readonly to: string;
}

/** Python `re.sub` replacement (`\1`, `\\1`, `\g<1>`) → JS replacement (`$1`). */
function pythonReplacement(to: string): string {
  return to
    .replace(/\$/g, '$$$$')
    .replace(/\\g<(\d+)>/g, '$$$1')
    .replace(/\\\\(\d)/g, '$$$1')
    .replace(/\\(\d)/g, '$$$1');
}

/** Parses modify.conf: `<matcher> "<from>" "<to>"` (also oinkmaster's `modifysid <matcher> "<from>" | "<to>"`). */
export function parseModifyList(text: string, name: string): RuleModification[] {
  return conffLines(text).map(({ line, n }) => {
    const where = `${name} line ${n}`;
    const m = /^(?:modifysid\s+)?(.+?)\s+"(.*)"\s+\|?\s*"(.*)"$/.exec(line);
    if (!m) throw new AgentError('ERR_CONFIG_INVALID', `${where}: expected <matcher> "<from>" "<to>", got ${JSON.stringify(line)}.`);
    let from: RegExp;
    try {
      from = new RegExp(m[2]!);
    } catch (err) {
      throw new AgentError('ERR_CONFIG_INVALID', `${where}: ${JSON.stringify(m[2])} is not a valid regular expression (${(err as Error).message}).`);
    }
    return { match: parseMatcher(m[1]!, where), from, to: pythonReplacement(m[3]!) };
  });
}

// ---------------------------------------------------------------- selection

export interface SelectionPolicy {
  /** Rule file names without `.rules`, or all. */
  readonly categories: readonly string[] | 'all';
  readonly disable: readonly RuleMatcher[];
  readonly enable: readonly RuleMatcher[];
  readonly modify: readonly RuleModification[];
}

export interface SelectionResult {
  /** The merged `suricata.rules` text. */
  readonly text: string;
  readonly total: number;
  /** Enabled rules: what Suricata should report as loaded + failed + skipped. */
  readonly enabled: number;
  readonly disabled: number;
  /** `gid:sid` of enabled rules, sorted. */
  readonly enabledSids: readonly number[];
  readonly files: readonly string[];
  /** Categories asked for that the archive does not have. */
  readonly missingCategories: readonly string[];
  /** SIDs of every rule written, enabled or not, sorted. */
  readonly allSids: readonly number[];
  /** Per selected file: lines that are not blank, comments or parseable rules (left out of the set). */
  readonly skipped: readonly SkippedLines[];
}

export const IGNORED_FILE = /deleted\.rules$/;

function categoryOf(path: string): string {
  return basename(path).replace(/\.rules$/, '');
}

export function selectRules(files: readonly RuleFile[], policy: SelectionPolicy): SelectionResult {
  const ruleFiles = files
    .filter((f) => f.path.endsWith('.rules') && !IGNORED_FILE.test(basename(f.path)))
    .filter((f) => policy.categories === 'all' || policy.categories.includes(categoryOf(f.path)))
    .sort((a, b) => a.path.localeCompare(b.path));
  const present = new Set(files.map((f) => categoryOf(f.path)));
  const missingCategories = policy.categories === 'all' ? [] : policy.categories.filter((c) => !present.has(c));

  // Duplicate gid:sid: the highest rev wins (Suricata refuses duplicates of the same rev).
  const byKey = new Map<string, { rule: ParsedRule; enabled: boolean; raw: string }>();
  const skipped: SkippedLines[] = [];
  for (const f of ruleFiles) {
    const parsed = parseRuleFileDetailed(f);
    if (parsed.skipped) skipped.push(parsed.skipped);
    for (const rule of parsed.rules) {
      const key = `${rule.gid}:${rule.sid}`;
      const prev = byKey.get(key);
      if (prev && prev.rule.rev >= rule.rev) continue;
      let enabled = rule.enabled;
      if (policy.disable.some((m) => m(rule))) enabled = false;
      if (policy.enable.some((m) => m(rule))) enabled = true;
      let raw = rule.raw;
      for (const mod of policy.modify) if (mod.match(rule)) raw = raw.replace(mod.from, mod.to);
      byKey.set(key, { rule, enabled, raw });
    }
  }
  const lines: string[] = [];
  const enabledSids: number[] = [];
  let enabled = 0;
  for (const { rule, enabled: on, raw } of byKey.values()) {
    lines.push(on ? raw : `# ${raw}`);
    if (on) {
      enabled++;
      enabledSids.push(rule.sid);
    }
  }
  enabledSids.sort((a, b) => a - b);
  const allSids = [...byKey.values()].map((v) => v.rule.sid).sort((a, b) => a - b);
  return {
    text: lines.length > 0 ? `${lines.join('\n')}\n` : '',
    total: byKey.size,
    enabled,
    disabled: byKey.size - enabled,
    enabledSids,
    files: ruleFiles.map((f) => f.path),
    missingCategories,
    allSids,
    skipped,
  };
}
