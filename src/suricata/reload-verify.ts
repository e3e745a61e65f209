import { AgentError, errorCode, errorMessage, isAgentError } from '../errors.js';
import type { SuricataControl } from './suricata-control.js';

/** How Suricata was told to reload. */
export type ReloadMethodUsed = 'socket' | 'docker' | 'signal' | 'none';

/** What the reload is expected to show. */
export interface ReloadExpectation {
  /** Enabled rules written: Suricata must account (loaded + failed + skipped) for at least this many. */
  readonly enabledRules: number;
}

export interface FailedRule {
  readonly rule: string;
  readonly filename?: string;
  readonly line?: number;
  readonly error?: string;
}

export interface ReloadResult {
  readonly method: ReloadMethodUsed;
  readonly ok: boolean;
  /** True when the outcome was checked through the control socket (reload time, stats, failed rules). */
  readonly verified: boolean;
  readonly loaded: number | null;
  readonly failed: number | null;
  readonly skipped: number | null;
  readonly durationMs: number;
  /** Set when !ok: stable code and a message naming the cause and the fix. */
  readonly error?: { readonly code: string; readonly message: string };
  /** First few rules Suricata could not load. */
  readonly failedRules?: readonly FailedRule[];
  /** How the outcome was judged when it could not be verified, or why `auto` chose this method. */
  readonly note?: string;
}

/** A way of making Suricata reload its rules. `reload` reports failures in its result; it does not throw. */
export interface Reloader {
  readonly method: ReloadMethodUsed | 'auto';
  reload(expect: ReloadExpectation): Promise<ReloadResult>;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) =>
    new Promise((r) => {
      setTimeout(r, ms).unref();
    }),
};

export const SOCKET_QUERY_TIMEOUT_MS = 5_000;
const MAX_FAILED_RULES_SHOWN = 5;

function firstTenant(reply: unknown): Record<string, unknown> | null {
  if (Array.isArray(reply) && reply.length > 0 && reply[0] && typeof reply[0] === 'object') {
    const zero = (reply as Array<Record<string, unknown>>).find((r) => r['id'] === 0 || r['tenant_id'] === 0);
    return zero ?? (reply[0] as Record<string, unknown>);
  }
  return null;
}

/** `last_reload` of the default tenant, as Suricata prints it (compared as text: "moved" = different). */
export async function readReloadTime(control: SuricataControl): Promise<string | null> {
  const t = firstTenant(await control.command('ruleset-reload-time', undefined, SOCKET_QUERY_TIMEOUT_MS));
  return t && typeof t['last_reload'] === 'string' ? t['last_reload'] : null;
}

export interface RulesetStats {
  readonly loaded: number;
  readonly failed: number;
  readonly skipped: number;
}

export async function readRulesetStats(control: SuricataControl): Promise<RulesetStats> {
  const t = firstTenant(await control.command('ruleset-stats', undefined, SOCKET_QUERY_TIMEOUT_MS));
  const n = (k: string): number => (t && typeof t[k] === 'number' ? (t[k] as number) : 0);
  return { loaded: n('rules_loaded'), failed: n('rules_failed'), skipped: n('rules_skipped') };
}

export async function readFailedRules(control: SuricataControl): Promise<FailedRule[]> {
  const reply = await control.command('ruleset-failed-rules', undefined, SOCKET_QUERY_TIMEOUT_MS);
  if (!Array.isArray(reply)) return [];
  return (reply as Array<Record<string, unknown>>).slice(0, MAX_FAILED_RULES_SHOWN).map((r) => ({
    rule: String(r['rule'] ?? '').slice(0, 300),
    ...(typeof r['filename'] === 'string' ? { filename: r['filename'] } : {}),
    ...(typeof r['line'] === 'number' ? { line: r['line'] } : {}),
    ...(typeof r['error'] === 'string' ? { error: r['error'] } : {}),
  }));
}

/** The reload time when the socket answers, else null (the caller then cannot verify through it). */
export async function tryReadReloadTime(control: SuricataControl | null): Promise<{ answered: boolean; time: string | null }> {
  if (!control) return { answered: false, time: null };
  try {
    return { answered: true, time: await readReloadTime(control) };
  } catch {
    return { answered: false, time: null };
  }
}

export interface VerifyOptions {
  readonly control: SuricataControl;
  readonly method: ReloadMethodUsed;
  /** `last_reload` before the reload was triggered. */
  readonly before: string | null;
  readonly expect: ReloadExpectation;
  readonly maxFailed: number;
  /** How long to wait for `last_reload` to move (signals reload asynchronously). */
  readonly waitMs: number;
  readonly startedAt: number;
  readonly clock: Clock;
  readonly pollMs?: number;
}

/** Checks a reload through the socket: `last_reload` moved, the new count is loaded, failures within the limit. */
export async function verifyReload(o: VerifyOptions): Promise<ReloadResult> {
  const base = { method: o.method, verified: true };
  const fail = (code: string, message: string, extra: Partial<ReloadResult> = {}): ReloadResult => ({
    ...base,
    ok: false,
    loaded: null,
    failed: null,
    skipped: null,
    durationMs: o.clock.now() - o.startedAt,
    error: { code, message },
    ...extra,
  });
  try {
    const deadline = o.clock.now() + o.waitMs;
    let after = await readReloadTime(o.control);
    while (after === o.before && o.clock.now() < deadline) {
      await o.clock.sleep(o.pollMs ?? 100);
      after = await readReloadTime(o.control);
    }
    if (after === o.before) {
      return fail(
        'ERR_RELOAD_FAILED',
        `Suricata's ruleset-reload-time did not move (still ${String(o.before)}) within ${o.waitMs} ms: the reload did not happen or failed early (for instance a suricata.yaml error; see Suricata's log).`,
      );
    }
    const stats = await readRulesetStats(o.control);
    const counts = { loaded: stats.loaded, failed: stats.failed, skipped: stats.skipped };
    const accounted = stats.loaded + stats.failed + stats.skipped;
    if (o.expect.enabledRules > 0 && stats.loaded === 0) {
      return fail('ERR_RELOAD_FAILED', `Suricata reloaded but loaded 0 rules (expected ${o.expect.enabledRules}): the rule file is missing or not in rule-files.`, counts);
    }
    if (accounted < o.expect.enabledRules) {
      return fail(
        'ERR_RELOAD_FAILED',
        `Suricata accounts for ${accounted} rules (${stats.loaded} loaded, ${stats.failed} failed, ${stats.skipped} skipped) but ${o.expect.enabledRules} were written: it is not reading the rules this agent writes (check default-rule-path and rule-files).`,
        counts,
      );
    }
    if (stats.failed > o.maxFailed) {
      const failedRules = await readFailedRules(o.control).catch(() => []);
      const first = failedRules[0];
      return fail(
        'ERR_RELOAD_FAILED',
        `Suricata failed to load ${stats.failed} rules (ETPRO_RULES_MAX_FAILED=${o.maxFailed})${first ? `, first: ${first.filename ?? ''}${first.line ? `:${first.line}` : ''} ${first.rule.slice(0, 120)}` : ''}.`,
        { ...counts, failedRules },
      );
    }
    return { ...base, ok: true, ...counts, durationMs: o.clock.now() - o.startedAt };
  } catch (err) {
    return fail(errorCode(err) ?? 'ERR_RELOAD_FAILED', `Could not verify the reload through the control socket: ${errorMessage(err)}`);
  }
}

/** A failed result from an error thrown while triggering a reload. */
export function failedResult(method: ReloadMethodUsed, startedAt: number, clock: Clock, err: unknown, verified = false): ReloadResult {
  const code = isAgentError(err) ? err.code : (errorCode(err) ?? 'ERR_RELOAD_FAILED');
  return { method, ok: false, verified, loaded: null, failed: null, skipped: null, durationMs: clock.now() - startedAt, error: { code, message: errorMessage(err) } };
}

export function unavailable(message: string, details: Record<string, unknown> = {}): AgentError {
  return new AgentError('ERR_RELOAD_UNAVAILABLE', message, details);
}

export interface SignalledReloadOptions {
  readonly method: 'docker' | 'signal';
  readonly control: SuricataControl | null;
  /** What `tryReadReloadTime` said before the signal. */
  readonly before: { readonly answered: boolean; readonly time: string | null };
  readonly expect: ReloadExpectation;
  readonly maxFailed: number;
  readonly waitMs: number;
  readonly startedAt: number;
  readonly clock: Clock;
  /** Without a socket: how long Suricata must stay up after the signal. */
  readonly settleMs: number;
  readonly stillRunning: () => Promise<boolean> | boolean;
  /** Error message when Suricata went away after the signal. */
  readonly exitedMessage: string;
  /** Note of an unverified success. */
  readonly unverifiedNote: string;
}

/**
 * After SIGUSR2 (through Docker or a pidfile): verified through the socket when it answered
 * before the signal; otherwise Suricata staying up for `settleMs` is all that can be checked.
 */
export async function confirmSignalledReload(o: SignalledReloadOptions): Promise<ReloadResult> {
  if (o.control && o.before.answered) {
    return verifyReload({ control: o.control, method: o.method, before: o.before.time, expect: o.expect, maxFailed: o.maxFailed, waitMs: o.waitMs, startedAt: o.startedAt, clock: o.clock });
  }
  await o.clock.sleep(o.settleMs);
  if (!(await o.stillRunning())) return failedResult(o.method, o.startedAt, o.clock, new AgentError('ERR_RELOAD_FAILED', o.exitedMessage));
  return { method: o.method, ok: true, verified: false, loaded: null, failed: null, skipped: null, durationMs: o.clock.now() - o.startedAt, note: o.unverifiedNote };
}
