import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { redactConfig, type Config } from './config.js';
import { AgentError, errorCode, errorMessage } from './errors.js';
import type { Logger } from './logger.js';
import { CheckpointStore } from './eve/checkpoint-store.js';
import { EveFollower, type FollowerStats } from './eve/eve-follower.js';
import { EventShipper, type Outcome } from './telemetry/event-shipper.js';
import { createTelemetryClient, type TelemetryClient } from './telemetry/telemetry-client.js';
import { interfaceNetworks, loadLocalNetworks } from './telemetry/local-networks-loader.js';
import { LocalNetworks } from './telemetry/local-networks.js';
import { TelemetrySids } from './telemetry/telemetry-sids.js';
import { TelemetryPipeline } from './telemetry/telemetry-pipeline.js';
import { UnixSocketControl } from './suricata/suricata-control.js';
import { createHeartbeatFacts, HeartbeatJob } from './heartbeat/heartbeat-job.js';
import type { HeartbeatFacts } from './heartbeat/heartbeat-facts.js';
import { SensorIdStore } from './heartbeat/sensor-id.js';
import { agentVersion } from './heartbeat/agent-version.js';
import { createControlPlaneHttp } from './util/http-client.js';
import { SubscriptionPoller } from './status/sensorinfo-poller.js';
import { StatusServer, type Readiness } from './status/status-server.js';
import type { AgentStatus, FollowerStatus, RulesStatus, SuricataStatus } from './status/agent-status.js';
import { RulesUpdater, rulesHealthProblem, rulesUpdaterConfig } from './rules/rules-updater.js';
import { RulesScheduler } from './rules/rules-scheduler.js';
import { createReloader } from './suricata/reload-strategy.js';
import type { SuricataControl } from './suricata/suricata-control.js';
import type { SubscriptionStatus } from './status/sensorinfo-poller.js';

/** The shipper failing without a single success for this long makes /readyz answer 503. */
const PROLONGED_FAILURE_MS = 10 * 60_000;
/**
 * How often telemetry_sids.txt and suricata.yaml (HOME_NET) are checked for changes: a stat
 * each, so a HOME_NET edit applies within seconds, not after alerts were masked the old way.
 */
const FILES_REFRESH_MS = 2_000;
/** Reading pauses while more than this much of unsent lines is held in memory. */
const MAX_HELD_BYTES = 32 * 1_048_576;
/** Every this many file checks, Suricata's socket is asked whether it runs (30 s). */
const SURICATA_CHECK_EVERY = 15;
/** Least time between two re-checks of sensorinfo/heartbeat after the collector accepted the token again. */
const AUTH_RECOVERY_RECHECK_MS = 10_000;

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/**
 * The running agent: builds every component from the validated config, starts them, and stops
 * them in data order (readiness off → schedulers → shipper drains → follower writes the final
 * checkpoint → clients → status server).
 */
export class Agent {
  private readonly startedAt = Date.now();
  private readonly control: UnixSocketControl;
  private readonly checkpoints: CheckpointStore;
  private readonly sids: TelemetrySids;
  private readonly facts: HeartbeatFacts;
  private readonly heartbeat: HeartbeatJob;
  private readonly subscription: SubscriptionPoller;
  private readonly statusServer: StatusServer;
  private readonly sensorIds: SensorIdStore;
  private readonly rulesUpdater: RulesUpdater;
  private readonly rulesScheduler: RulesScheduler;
  private client: TelemetryClient | null = null;
  private shipper: EventShipper | null = null;
  private follower: EveFollower | null = null;
  private pipeline: TelemetryPipeline | null = null;
  private networks: LocalNetworks = new LocalNetworks([]);
  private privacy = { homeNetSource: 'not loaded yet', warnings: [] as string[] };
  /** Set while HOME_NET in suricata.yaml is unusable: alerts are held, not sent. */
  private homeNetInvalid: string | null = null;
  /** A HOME_NET from suricata.yaml has been in force since start. */
  private hadHomeNet = false;
  private yamlSignature: string | null = null;
  private sensorId: string | null = null;
  private filesTimer: NodeJS.Timeout | null = null;
  private filesTicks = 0;
  private suricataState: SuricataStatus = { status: 'unknown', version: null, checkedAt: null, reason: null };
  private lastAuthRecheckAt = 0;
  private stopping: Promise<void> | null = null;
  private ready = false;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
    /** For tests: how often telemetry_sids.txt and suricata.yaml are checked (default 30 s). */
    private readonly options: { readonly filesRefreshMs?: number } = {},
  ) {
    this.control = new UnixSocketControl(config.suricata.socket);
    this.checkpoints = new CheckpointStore(config.stateDir, log.child({ component: 'checkpoint' }));
    this.sids = new TelemetrySids(config.rules.dir, log.child({ component: 'telemetry-sids' }));
    this.sensorIds = new SensorIdStore(config.stateDir, log.child({ component: 'sensor-id' }));
    const http = createControlPlaneHttp({ baseUrl: config.baseUrl, token: config.token, timeoutMs: config.httpTimeoutMs, caFile: config.caFile });
    this.facts = createHeartbeatFacts(config, log.child({ component: 'heartbeat' }), this.control);
    this.heartbeat = new HeartbeatJob(
      { facts: this.facts, http, enabled: config.heartbeat.enabled && config.token !== null, spreadS: config.heartbeat.spreadS },
      log.child({ component: 'heartbeat' }),
    );
    this.subscription = new SubscriptionPoller(
      {
        token: config.token,
        pollS: config.status.pollS,
        http,
        explain: () => ({
          lastEventAckAt: iso(this.shipper?.stats().lastAckAt),
          lastHeartbeatAckAt: this.heartbeat.state().lastSuccessAt,
          startedAt: iso(this.startedAt)!,
          alertsAcked: this.shipper?.stats().acked ?? 0,
          shipperLastError: this.shipper?.stats().lastError ?? null,
        }),
      },
      log.child({ component: 'subscription' }),
    );
    this.rulesUpdater = createRulesUpdater(config, this.control, () => this.subscription.current().status, log.child({ component: 'rules' }));
    this.rulesScheduler = new RulesScheduler(this.rulesUpdater, config.rules, log.child({ component: 'rules' }));
    this.statusServer = new StatusServer(
      { port: config.status.port, addr: config.status.addr, snapshot: () => this.snapshot(), readiness: () => this.readiness() },
      log.child({ component: 'status' }),
    );
  }

  get statusUrl(): string | null {
    return this.statusServer.url;
  }

  async start(): Promise<void> {
    const { config, log } = this;
    log.info('Agent starting.', { version: agentVersion(), config: redactConfig(config) });
    if (config.tokenWasTrimmed) log.warn('The token had white space around it; it was trimmed.');
    if (config.token === null) log.warn('No token configured (ETPRO_TOKEN / ETPRO_TOKEN_FILE): no alerts or heartbeats are sent; rules come from ET Open.');

    await this.statusServer.start();
    await this.checkStateDir();
    if (this.stopping) return;
    await this.refreshLocalNetworks();
    await this.sids.refresh();
    void this.checkSuricata();
    this.filesTimer = setInterval(() => {
      void this.sids.refresh();
      this.refreshLocalNetworks().catch((err: unknown) => log.error('Could not re-read the local networks; the previous ones stay in force.', { error: errorMessage(err) }));
      if (++this.filesTicks % SURICATA_CHECK_EVERY === 0) {
        void this.checkSuricata();
        void this.rulesUpdater.loadInstalled().catch(() => undefined);
      }
    }, this.options.filesRefreshMs ?? FILES_REFRESH_MS);
    this.filesTimer.unref();
    this.sensorId = await this.sensorIds.get().catch(() => null);
    if (this.stopping) return;

    if (config.token !== null) {
      this.client = createTelemetryClient({
        baseUrl: config.baseUrl,
        token: config.token,
        timeoutMs: config.httpTimeoutMs,
        caFile: config.caFile,
        maxConnections: config.shipper.maxInFlight,
        userAgent: `etpro-telemetry-sidecar/${agentVersion()}`,
      });
      this.shipper = new EventShipper(
        { ...config.shipper, maxQueued: config.eve.maxPendingLines },
        this.client,
        log.child({ component: 'shipper' }),
        (id: number, outcome: Outcome) => {
          this.follower?.ack(id);
          if (outcome === 'acked') this.recheckAfterAuthRecovery();
        },
      );
      this.shipper.onCapacity(() => this.pipeline?.drain());
      this.shipper.start();
    }

    this.pipeline = new TelemetryPipeline(
      {
        networks: () => this.networks,
        telemetrySids: () => this.sids.current(),
        sink: this.shipper,
        ack: (seq) => this.follower?.ack(seq),
        blocked: () => (this.homeNetInvalid === null ? null : `Alerts are held (not sent, not skipped) until HOME_NET is fixed: ${this.homeNetInvalid}`),
        onStats: (record) => this.facts.noteEveStats(record),
      },
      log.child({ component: 'pipeline' }),
    );
    this.follower = new EveFollower(
      {
        path: config.eve.path,
        startAt: config.eve.startAt,
        maxLineBytes: config.eve.maxLineBytes,
        pollIntervalMs: config.eve.pollIntervalMs,
        maxPendingLines: config.eve.maxPendingLines,
        lineFilter: this.pipeline.wantsLine,
        // Held lines (no token, HOME_NET unusable) are kept in memory: bound them by size too.
        readGate: () => (this.pipeline?.heldBytes ?? 0) < MAX_HELD_BYTES,
      },
      this.checkpoints,
      log.child({ component: 'follower' }),
      (lines) => this.pipeline!.handle(lines),
    );
    await this.follower.start();
    if (this.stopping) return; // a signal arrived during start-up: start nothing more

    await this.rulesUpdater.loadInstalled().catch((err: unknown) => log.warn('Could not read the installed rules version.', { error: errorMessage(err) }));
    await this.subscription.start();
    if (this.stopping) return;
    this.heartbeat.start();
    if (config.rules.updateEnabled) this.rulesScheduler.start();
    this.ready = true;
    log.info('Agent started.', { eve: config.eve.path, collector: config.baseUrl, status: this.statusServer.url });
  }

  /** Idempotent; resolves when everything has stopped. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const { log, config } = this;
    this.ready = false;
    log.info('Agent stopping.', { graceMs: config.shutdownGraceMs });
    const step = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        log.error(`Failed to stop ${what} cleanly.`, { error: errorMessage(err) });
      }
    };
    if (this.filesTimer) clearInterval(this.filesTimer);
    // The schedulers start nothing new from here on. A rules update or heartbeat already running
    // may take long (a download, a reload): the event drain must not wait behind it, so both run
    // side by side, and the wait for them is bounded by the same grace period.
    const grace = new Promise<void>((r) => setTimeout(r, config.shutdownGraceMs).unref());
    const jobs = Promise.all([
      step('the rules scheduler', () => this.rulesScheduler.stop()),
      step('the subscription poller', () => this.subscription.stop()),
      step('the heartbeat', () => this.heartbeat.stop()),
    ]);
    await step('the shipper', () => this.shipper?.stop(config.shutdownGraceMs));
    await step('the follower', () => this.follower?.stop());
    await Promise.race([jobs, grace]);
    await step('the telemetry client', () => this.client?.close());
    await step('the status server', () => this.statusServer.stop());
    const f = this.follower?.stats();
    log.info('Agent stopped.', { checkpoint: f?.checkpoint ?? null, alertsAcked: this.shipper?.stats().acked ?? 0 });
  }

  /** Fails fast, naming the directory, when the state dir cannot be created or written. */
  private async checkStateDir(): Promise<void> {
    const dir = this.config.stateDir;
    const probe = join(dir, `.write-test-${process.pid}`);
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(probe, '');
      await rm(probe, { force: true });
    } catch (err) {
      throw new AgentError(
        'ERR_STATE_DIR_UNUSABLE',
        `The state dir ${dir} (ETPRO_STATE_DIR) cannot be created or written (${errorCode(err) ?? errorMessage(err)}): the checkpoint and sensor id live there.`,
        { stateDir: dir },
        { cause: err },
      );
    }
  }

  /**
   * (Re)builds the local networks when suricata.yaml changed (Suricata re-reads it at every rule
   * reload, so a HOME_NET edit takes effect there too). An unusable HOME_NET holds alerts back.
   */
  private async refreshLocalNetworks(): Promise<void> {
    const yaml = this.config.privacy.suricataYaml;
    const yamlSig = await stat(yaml).then(
      (st) => `${st.ino}:${st.size}:${st.mtimeMs}`,
      (err: unknown) => `missing:${errorCode(err) ?? ''}`,
    );
    // The host's interface networks are part of the local networks too (a new address, a VPN).
    const ifaces = this.config.privacy.maskInterfaceNetworks ? (await interfaceNetworks()).join(',') : '';
    const signature = `${yamlSig}|${ifaces}`;
    if (signature === this.yamlSignature) return;
    this.yamlSignature = signature;
    const loaded = await loadLocalNetworks(this.config.privacy, this.log.child({ component: 'privacy' }));
    // Once a HOME_NET was in force, losing it (file emptied, rewritten in place, unreadable) must
    // not quietly unmask its addresses: hold alerts as for an unusable HOME_NET.
    const lost =
      loaded.homeNetInvalid === null && loaded.homeNetSource === 'none' && this.hadHomeNet
        ? `${yaml} no longer yields a HOME_NET (it did before); restart the agent if that is intended`
        : null;
    if (loaded.homeNetSource === 'suricata.yaml') this.hadHomeNet = true;
    const invalid = loaded.homeNetInvalid ?? lost;
    if (invalid === null || lost === null) this.networks = loaded.networks; // keep the last good networks while HOME_NET is lost
    const held = invalid === null ? [] : [`Alerts are held (not sent, not skipped) until HOME_NET is fixed: ${invalid}`];
    this.privacy = { homeNetSource: lost === null ? loaded.homeNetSource : this.privacy.homeNetSource, warnings: [...held, ...loaded.warnings] };
    const wasInvalid = this.homeNetInvalid;
    this.homeNetInvalid = invalid;
    if (this.homeNetInvalid !== null) this.log.error(held[0]!, { file: yaml });
    else if (wasInvalid !== null) {
      this.log.info('HOME_NET is usable again: sending the held alerts.', { file: yaml });
      this.pipeline?.drain();
    }
  }

  /** Suricata as its control socket answers (for /status and /metrics; not a readiness condition). */
  private async checkSuricata(): Promise<void> {
    const checkedAt = new Date().toISOString();
    try {
      const version = await this.control.command('version', undefined, 5_000);
      this.suricataState = { status: 'Running', version: typeof version === 'string' ? version : null, checkedAt, reason: null };
    } catch (err) {
      const stopped = errorCode(err) === 'ERR_SURICATA_UNAVAILABLE';
      this.suricataState = { status: stopped ? 'Stopped' : 'ERROR', version: this.suricataState.version, checkedAt, reason: errorMessage(err) };
    }
  }

  /**
   * An alert was acknowledged: if sensorinfo or the last heartbeat had been refused (401/403),
   * the token works again, so ask both again now instead of at their next slot.
   */
  private recheckAfterAuthRecovery(): void {
    const refused = (code: number | null): boolean => code === 401 || code === 403;
    const subRefused = refused(this.subscription.current().httpCode);
    const hbRefused = refused(this.heartbeat.state().lastHttpCode);
    if (!subRefused && !hbRefused) return;
    const now = Date.now();
    if (now - this.lastAuthRecheckAt < AUTH_RECOVERY_RECHECK_MS) return;
    this.lastAuthRecheckAt = now;
    this.log.info('The collector accepts the token again: re-checking the subscription status and the heartbeat now.');
    if (subRefused) void this.subscription.pollNow().catch(() => undefined);
    if (hbRefused) void this.heartbeat.runOnce().catch(() => undefined);
  }

  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.homeNetInvalid !== null) reasons.push(`alerts are held: ${this.homeNetInvalid}`);
    if (!this.ready) reasons.push('the agent is not started (or is stopping)');
    const f = this.follower?.stats();
    if (f && f.state === 'stopped') reasons.push('the eve.json follower is stopped');
    const s = this.shipper?.stats();
    const rulesProblem = rulesHealthProblem(this.rulesUpdater.status());
    if (rulesProblem !== null) reasons.push(rulesProblem);
    if (s && s.state === 'auth-paused') reasons.push(`the collector refuses the token (HTTP ${s.lastAuthFailureStatus ?? '401/403'}): sending is paused`);
    if (s && s.failingSince !== null && Date.now() - s.failingSince > PROLONGED_FAILURE_MS) {
      reasons.push(`the collector has been failing since ${iso(s.failingSince)} (${s.lastError ?? 'unknown error'})`);
    }
    return { ready: reasons.length === 0, reasons };
  }

  snapshot(): AgentStatus {
    const f = this.follower?.stats() ?? null;
    const s = this.shipper?.stats() ?? null;
    const c = this.pipeline?.counters;
    return {
      agent: {
        version: agentVersion(),
        startedAt: iso(this.startedAt)!,
        uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
        sensorId: this.sensorId,
        platform: this.config.platform,
      },
      subscription: this.subscription.current(),
      telemetry: {
        follower: f === null ? null : followerStatus(f),
        alertsRead: c?.alertsRead ?? 0,
        alertsSent: s?.sent ?? 0,
        alertsAcked: s?.acked ?? 0,
        alertsRejected: s?.rejected ?? 0,
        alertsHeld: this.pipeline?.heldAlerts ?? 0,
        retries: s?.retries ?? 0,
        authFailures: s?.authFailures ?? 0,
        alertsFiltered: c?.alertsFiltered ?? 0,
        malformedLines: c?.malformedLines ?? 0,
        linesTooLong: f?.linesTooLong ?? 0,
        lastEventSentAt: iso(c?.lastAlertAt),
        lastAckAt: iso(s?.lastAckAt),
        shipper: {
          state: s === null ? (this.config.token === null ? 'paused' : 'idle') : s.state === 'retrying' ? 'backoff' : s.state,
          lastError: s?.lastError ?? (this.config.token === null ? 'no token configured' : null),
          inFlight: s?.inFlight ?? 0,
        },
      },
      heartbeat: this.heartbeat.state(),
      rules: this.rulesUpdater.status() as unknown as RulesStatus,
      privacy: this.privacy,
      suricata: this.suricataState,
      config: redactConfig(this.config),
    };
  }
}

function followerStatus(f: FollowerStats): FollowerStatus {
  return {
    file: f.path,
    running: f.state === 'following' || f.state === 'paused',
    offset: f.offset,
    size: f.state === 'waiting-for-file' ? null : f.fileSize,
    lagBytes: f.state === 'waiting-for-file' ? null : f.lagBytes,
    checkpointOffset: f.checkpoint?.offset ?? null,
  };
}

/** The rules updater with the reload strategy of ETPRO_RELOAD (shared by `run` and `rules update`). */
export function createRulesUpdater(config: Config, control: SuricataControl, subscription: () => SubscriptionStatus, log: Logger): RulesUpdater {
  const reloader = createReloader(config.rules.reload, {
    control,
    pidfile: config.suricata.pidfile,
    dockerSocket: config.suricata.dockerSocket,
    container: config.suricata.container,
    reloadTimeoutMs: config.rules.reloadTimeoutMs,
    maxFailed: config.rules.maxFailed,
    log,
  });
  return new RulesUpdater(rulesUpdaterConfig(config, `etpro-telemetry-sidecar/${agentVersion()}`), { control, subscription, reloader }, log);
}

/**
 * `etpro-sidecar run`: start the agent and stop it on SIGTERM/SIGINT in data order. A second
 * signal forces exit. Resolves with the exit code.
 */
export async function runAgent(config: Config, log: Logger): Promise<number> {
  const agent = new Agent(config, log);
  let signals = 0;
  let resolveStop: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((r) => (resolveStop = r));
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn('Second signal: exiting at once.', { signal: sig });
      process.exit(130);
    }
    log.info('Signal received: shutting down.', { signal: sig });
    agent.stop().then(
      () => resolveStop(0),
      (err) => {
        log.error('Shutdown failed.', { error: errorMessage(err) });
        resolveStop(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A long-running agent logs a stray rejection instead of dying without its final checkpoint.
  process.on('unhandledRejection', (reason) => log.error('Unhandled rejection (a bug): the agent keeps running.', { error: errorMessage(reason) }));
  try {
    // A signal during start-up stops the agent at once instead of waiting for start() to finish.
    await Promise.race([agent.start(), stopped]);
  } catch (err) {
    log.error('Agent failed to start.', { error: errorMessage(err), code: (err as { code?: string }).code });
    await agent.stop();
    return 1;
  }
  return stopped;
}
