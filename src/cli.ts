#!/usr/bin/env -S node --max-semi-space-size=4
// The young generation is capped at 4 MiB semi-spaces: eve lines are short-lived, and V8's
// default (up to 16 MiB each) cost about 35 MB of resident memory while catching up, for no
// measurable CPU gain (see the benchmark in the README).
import { parseArgs } from 'node:util';
import { loadConfig, parseDuration, type Config } from './config.js';
import { AgentError, errorMessage, isAgentError } from './errors.js';
import { createLogger, type Logger } from './logger.js';
// Each command loads its own modules (dynamic imports): `run` does not carry the collector, etc.

const USAGE = `Usage: etpro-sidecar <command> [options]

Commands:
  run                         Follow eve.json, ship anonymized alerts, heartbeat, rules updates (the agent).
  dump [--eve PATH] [--all | --since 1h] [--limit N] [--raw]
                              Print what would be sent, one JSON object a line. Sends nothing; needs no token.
  status [--url URL] [--remote] [--json]
                              Summary of the running agent's /status (or, with --remote, the server's sensorinfo).
  heartbeat [--send]          Print the heartbeat payload (and send it with --send).
  rules update [--force]      Download, install and reload the ruleset now.
  collector [--port P] [--host H] [--data DIR] [--rules DIR] [--tokens FILE]
                              Run the reference collector (the ET telemetry API, locally).
  help                        This text.

Configuration comes from ETPRO_* environment variables (see the README).`;

function usageError(message: string): AgentError {
  return new AgentError('ERR_USAGE', `${message}\n\n${USAGE}`);
}

function cliLogger(config: Config | null, level?: string): Logger {
  return createLogger(level ?? config?.logLevel ?? 'info', config?.logFormat ?? 'json', process.stderr);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const config = loadConfig(process.env);
      const log = createLogger(config.logLevel, config.logFormat);
      const { runAgent } = await import('./main.js');
      const code = await runAgent(config, log);
      // Everything is stopped and the checkpoint written; a handle a library left open must not
      // keep the process alive past the grace period.
      setTimeout(() => process.exit(code), 2_000).unref();
      return code;
    }
    case 'dump': {
      const { values } = parseArgs({
        args: rest,
        options: { eve: { type: 'string' }, all: { type: 'boolean' }, since: { type: 'string' }, limit: { type: 'string' }, raw: { type: 'boolean' } },
      });
      const config = loadConfig(process.env);
      if (values.all && values.since !== undefined) throw usageError('--all and --since exclude each other');
      let sinceMs: number | null = null;
      if (values.since !== undefined) {
        sinceMs = parseDuration(values.since);
        if (sinceMs === null) throw usageError(`--since ${values.since} is not a duration such as 30m, 1h, 2d`);
      } else if (!values.all && config.eve.startAt.kind === 'lookback') {
        sinceMs = config.eve.startAt.ms;
      }
      const limit = values.limit === undefined ? null : Number(values.limit);
      if (limit !== null && (!Number.isSafeInteger(limit) || limit < 0)) throw usageError(`--limit ${values.limit} is not a whole number`);
      const { dumpEvents } = await import('./telemetry/dump.js');
      const result = await dumpEvents(
        { config, evePath: values.eve ?? config.eve.path, sinceMs, limit, raw: values.raw ?? false },
        (line) => process.stdout.write(`${line}\n`),
        cliLogger(config, 'warn'),
      );
      process.stderr.write(`${result.printed} printed; ${result.linesRead} lines read, ${result.alerts} alerts, ${result.filtered} not telemetry SIDs, ${result.malformed} malformed\n`);
      return 0;
    }
    case 'status': {
      const { values } = parseArgs({ args: rest, options: { url: { type: 'string' }, remote: { type: 'boolean' }, json: { type: 'boolean' } } });
      const config = loadConfig(process.env);
      const { fetchAgentStatus, fetchRemoteSubscription, formatStatusSummary, formatSubscriptionSummary, localStatusUrl } = await import('./status/status-summary.js');
      if (values.remote) {
        const remote = await fetchRemoteSubscription(config);
        process.stdout.write(values.json ? `${JSON.stringify(remote, null, 2)}\n` : `${formatSubscriptionSummary(remote)}\n`);
        return remote.status === 'ERROR' ? 1 : 0;
      }
      const url = values.url ?? localStatusUrl(config);
      const status = await fetchAgentStatus(url, config.httpTimeoutMs);
      process.stdout.write(values.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatusSummary(status)}\n`);
      return 0;
    }
    case 'heartbeat': {
      const { values } = parseArgs({ args: rest, options: { send: { type: 'boolean' } } });
      const config = loadConfig(process.env);
      const log = cliLogger(config, 'warn');
      const { buildHeartbeat, sendHeartbeat } = await import('./heartbeat/heartbeat-job.js');
      const { createControlPlaneHttp } = await import('./util/http-client.js');
      const { UnixSocketControl } = await import('./suricata/suricata-control.js');
      const payload = await buildHeartbeat(config, { log, control: new UnixSocketControl(config.suricata.socket) });
      process.stdout.write(`${JSON.stringify(payload, null, 2)}\n`);
      if (!values.send) return 0;
      if (config.token === null) throw new AgentError('ERR_CONFIG_INVALID', 'heartbeat --send needs a token (ETPRO_TOKEN or ETPRO_TOKEN_FILE).');
      const http = createControlPlaneHttp({ baseUrl: config.baseUrl, token: config.token, timeoutMs: config.httpTimeoutMs, caFile: config.caFile });
      const result = await sendHeartbeat(http, payload);
      process.stderr.write(result.ok ? `heartbeat sent: HTTP ${result.httpCode}\n` : `heartbeat failed: ${result.error}\n`);
      return result.ok ? 0 : 1;
    }
    case 'rules': {
      const [sub, ...args] = rest;
      if (sub !== 'update') throw usageError(`unknown rules subcommand ${JSON.stringify(sub ?? '')}`);
      const { values } = parseArgs({ args, options: { force: { type: 'boolean' } } });
      const config = loadConfig(process.env);
      const log = cliLogger(config);
      const { createControlPlaneHttp } = await import('./util/http-client.js');
      const { SubscriptionPoller } = await import('./status/sensorinfo-poller.js');
      const { UnixSocketControl } = await import('./suricata/suricata-control.js');
      const { createRulesUpdater } = await import('./main.js');
      const http = createControlPlaneHttp({ baseUrl: config.baseUrl, token: config.token, timeoutMs: config.httpTimeoutMs, caFile: config.caFile });
      // One poll to choose the source; its status-change line would only be noise here.
      const poller = new SubscriptionPoller({ token: config.token, pollS: config.status.pollS, http }, cliLogger(config, 'warn').child({ component: 'subscription' }));
      const subscription = await poller.pollNow();
      poller.stop();
      const control = new UnixSocketControl(config.suricata.socket);
      const updater = createRulesUpdater(config, control, () => subscription.status, log.child({ component: 'rules' }));
      const result = await updater.update({ force: values.force ?? false });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return result.outcome === 'rolled-back' ? 1 : 0;
    }
    case 'collector': {
      const { values } = parseArgs({
        args: rest,
        options: { port: { type: 'string' }, host: { type: 'string' }, data: { type: 'string' }, rules: { type: 'string' }, tokens: { type: 'string' } },
      });
      const port = values.port === undefined ? 9400 : Number(values.port);
      if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) throw usageError(`--port ${values.port} is not a port number`);
      const log = createLogger('info', 'json');
      const { ReferenceCollector, readTokensFile } = await import('./collector/reference-collector.js');
      const collector = new ReferenceCollector(
        {
          port,
          host: values.host ?? '127.0.0.1',
          dataDir: values.data ?? null,
          rulesDir: values.rules ?? null,
          tokens: values.tokens === undefined ? null : readTokensFile(values.tokens),
        },
        log.child({ component: 'collector' }),
      );
      await collector.start();
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await collector.stop();
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      throw usageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (isAgentError(err, 'ERR_CONFIG_INVALID')) {
      const problems = (err.details['problems'] as string[] | undefined) ?? [err.message];
      process.stderr.write(`etpro-sidecar: invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
      process.exitCode = 78;
    } else if (isAgentError(err, 'ERR_USAGE') || String((err as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`etpro-sidecar: ${errorMessage(err)}${isAgentError(err) ? '' : `\n\n${USAGE}`}\n`);
      process.exitCode = 64;
    } else {
      const code = isAgentError(err) ? ` [${err.code}]` : '';
      process.stderr.write(`etpro-sidecar: ${errorMessage(err)}${code}\n`);
      process.exitCode = 1;
    }
  },
);
