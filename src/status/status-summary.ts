import axios from 'axios';
import type { Config } from '../config.js';
import { AgentError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { createControlPlaneHttp, describeHttpFailure } from '../util/http-client.js';
import { agentVersion } from '../heartbeat/agent-version.js';
import { rulesLastUpdateAt, type AgentStatus } from './agent-status.js';
import { SubscriptionPoller, sensorInfoField, type SubscriptionState } from './sensorinfo-poller.js';

const LABEL = 22;
const row = (label: string, value: string): string => `${`${label}:`.padEnd(LABEL)}${value}`;
const orDash = (v: unknown): string => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : '-');

/**
 * The dashboard-widget part, from a subscription state alone: status, event received, last rule
 * download, last heartbeat (as the server reports them), then the reason or the explanation.
 * Used by `status --remote`, and inside `formatStatusSummary`.
 */
export function formatSubscriptionSummary(sub: SubscriptionState): string {
  const lines = [
    row('Status', sub.status === 'ERROR' && sub.lastServerStatus ? `ERROR (server last said ${sub.lastServerStatus})` : sub.status),
    row('Event received', orDash(sensorInfoField(sub.sensorInfo, 'event_received'))),
    row('Last rule download', orDash(sensorInfoField(sub.sensorInfo, 'last_rule_download'))),
    row('Last heartbeat', orDash(sensorInfoField(sub.sensorInfo, 'last_heartbeat'))),
    row('Checked at', orDash(sub.checkedAt)),
  ];
  if (sub.reason) lines.push(row('Reason', sub.reason));
  for (const e of sub.explanation) lines.push(`  ${e}`);
  return lines.join('\n');
}

/** A readable summary of a running agent's /status, like the plugin's dashboard widget plus local facts. */
export function formatStatusSummary(status: AgentStatus): string {
  const t = status.telemetry;
  const h = status.heartbeat;
  const f = t.follower;
  const out = [
    `ET Pro telemetry sidecar ${status.agent.version} on ${status.agent.platform}, up ${formatDuration(status.agent.uptimeS)}` +
      (status.agent.sensorId ? `, sensor ${status.agent.sensorId}` : ''),
    '',
    'Subscription (as the server reports it)',
    formatSubscriptionSummary(status.subscription),
    '',
    'This agent',
    row('Alerts', `${t.alertsRead} read, ${t.alertsAcked} acknowledged, ${t.alertsRejected} rejected, ${t.alertsFiltered} filtered` + (t.alertsHeld ? `, ${t.alertsHeld} held` : '') + ` (${t.alertsSent} send attempts)`),
    row('Bad eve lines', `${t.malformedLines} malformed, ${t.linesTooLong} too long`),
    row('Last alert sent', orDash(t.lastEventSentAt)),
    row('Last alert acked', orDash(t.lastAckAt)),
    row('Shipper', t.shipper.state + (t.shipper.lastError && (t.shipper.state === 'backoff' || t.shipper.state === 'auth-paused' || t.shipper.state === 'paused') ? ` (${t.shipper.lastError})` : '')),
    row('Following', f ? `${f.file} at byte ${f.offset}${f.lagBytes !== null ? `, ${f.lagBytes} bytes behind` : ''}${f.running ? '' : ' (not running)'}` : '-'),
    row('Last heartbeat', h.enabled ? (h.lastSuccessAt ? `acknowledged at ${h.lastSuccessAt}` : 'none acknowledged yet') + (h.lastError ? `; the last attempt (${orDash(h.lastAttemptAt)}) failed: ${h.lastError}` : '') : 'disabled'),
    row('Last rules update', orDash(rulesLastUpdateAt(status.rules)) + (status.rules.source ? ` (${String(status.rules.source)})` : '')),
    row('HOME_NET from', status.privacy.homeNetSource),
    ...(status.suricata ? [row('Suricata', `${status.suricata.status}${status.suricata.version ? ` ${status.suricata.version}` : ''}${status.suricata.reason ? ` (${status.suricata.reason})` : ''}`)] : []),
  ];
  for (const w of status.privacy.warnings) out.push(`  warning: ${w}`);
  return out.join('\n');
}

function formatDuration(s: number): string {
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3_600);
  const m = Math.floor((s % 3_600) / 60);
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
}

/**
 * GETs a running agent's /status. `url` is the agent's base URL (`http://127.0.0.1:9300`) or the
 * full /status URL. Rejects with ERR_STATUS_UNAVAILABLE naming the URL and the reason.
 */
export async function fetchAgentStatus(url: string, timeoutMs = 5_000): Promise<AgentStatus> {
  const target = /\/status\/?$/.test(url) ? url : `${url.replace(/\/+$/, '')}/status`;
  let res;
  try {
    res = await axios.get(target, { timeout: timeoutMs, validateStatus: () => true, responseType: 'json', proxy: false, transitional: { clarifyTimeoutError: true } });
  } catch (err) {
    throw new AgentError('ERR_STATUS_UNAVAILABLE', `The agent's status at ${target} cannot be read: ${describeHttpFailure(err).reason}. Is the agent running?`, { url: target }, { cause: err });
  }
  if (res.status !== 200) throw new AgentError('ERR_STATUS_UNAVAILABLE', `The agent's status at ${target} answered HTTP ${res.status}.`, { url: target, httpCode: res.status });
  const body = res.data as Partial<AgentStatus> | null;
  if (!body || typeof body !== 'object' || !body.subscription || !body.telemetry) {
    throw new AgentError('ERR_STATUS_UNAVAILABLE', `${target} did not answer with an agent status.`, { url: target });
  }
  return body as AgentStatus;
}

/** The status URL of the local agent for a configuration (0.0.0.0/:: are asked on loopback). */
export function localStatusUrl(config: Config): string {
  const a = config.status.addr;
  const host = a === '0.0.0.0' ? '127.0.0.1' : a === '::' ? '[::1]' : a.includes(':') ? `[${a}]` : a;
  return `http://${host}:${config.status.port}/status`;
}

/** `status --remote`: asks sensorinfo once, directly, and returns the state (never rejects). */
export async function fetchRemoteSubscription(config: Config): Promise<SubscriptionState> {
  const http = createControlPlaneHttp({
    baseUrl: config.baseUrl,
    token: config.token,
    timeoutMs: config.httpTimeoutMs,
    caFile: config.caFile,
    userAgent: `etpro-telemetry-sidecar/${agentVersion()}`,
  });
  return new SubscriptionPoller({ token: config.token, pollS: config.status.pollS, http }, silentLogger()).pollNow();
}
