import type { SubscriptionStatus } from '../status/sensorinfo-poller.js';

export type RulesetSource = 'etpro' | 'etopen';

export interface SourceChoice {
  readonly source: RulesetSource;
  /** One sentence for the log and /status. */
  readonly reason: string;
}

/**
 * Which ruleset to fetch (pure). ACTIVE/DORMANT with a token → ET Pro. DISABLED, UNCONFIGURED or no
 * token → ET Open. ERROR (status unknown: sensorinfo failed) with a token → ET Pro is tried, and
 * the caller falls back to ET Open if that fails too.
 */
export function chooseSource(status: SubscriptionStatus, hasToken: boolean): SourceChoice {
  if (!hasToken) return { source: 'etopen', reason: 'No ET Pro token is configured (ETPRO_TOKEN): using ET Open.' };
  switch (status) {
    case 'ACTIVE':
    case 'DORMANT':
      return { source: 'etpro', reason: `Subscription status is ${status}: using ET Pro.` };
    case 'ERROR':
      return { source: 'etpro', reason: 'Subscription status is ERROR (sensorinfo failed, status unknown): trying ET Pro, ET Open if it fails.' };
    case 'DISABLED':
      return { source: 'etopen', reason: 'Subscription status is DISABLED: using ET Open.' };
    case 'UNCONFIGURED':
      return { source: 'etopen', reason: 'Subscription status is UNCONFIGURED: using ET Open.' };
  }
}

/** `7.0.10` from Suricata's `version` answer (`"7.0.10 RELEASE"`), or null. */
export function suricataVersionOf(reply: unknown): string | null {
  if (typeof reply !== 'string') return null;
  const m = /^(\d+\.\d+\.\d+)/.exec(reply.trim());
  return m ? m[1]! : null;
}

/** The ET Open archive URL for a Suricata version (`%v` = x.y.z). */
export function etOpenUrl(template: string, version: string): string {
  return template.replace(/%v/g, version);
}
