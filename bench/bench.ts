// `npm run bench`: the agent end to end (a child process running `etpro-sidecar run`) into the
// reference collector (in this process), on a deterministic corpus amplified from real Suricata
// output. Prints throughput, agent CPU per 1,000 alerts, peak RSS, idle CPU and append→receive
// latency at a steady 1,000 alerts/s.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReferenceCollector } from '../src/collector/reference-collector.js';
import { silentLogger } from '../src/logger.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/suricata-capture/eve.json');
const CLI = join(ROOT, 'dist/src/cli.js');
const TOTAL_LINES = Number(process.env['BENCH_LINES'] ?? 1_000_000);
const ALERT_EVERY = 5; // 1 line in 5 is an alert: 200,000 alerts in 1,000,000 lines
const LATENCY_RATE = 1_000; // alerts/s
const LATENCY_SECONDS = 10;
const TOKEN = 'bench-token';
const CLK_TCK = 100;

/** Small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const FLOW_ID = /"flow_id":\d+/;
const SRC_V4 = /"src_ip":"10\.20\.30\.40"/;

/** Rewrites a fixture line into a new record: unique flow_id, varied client address. */
function variant(line: string, flowId: number, rnd: () => number): string {
  let out = line.replace(FLOW_ID, `"flow_id":${flowId}`);
  out = out.replace(SRC_V4, `"src_ip":"10.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${1 + Math.floor(rnd() * 254)}"`);
  return out;
}

async function writeCorpus(path: string): Promise<{ alerts: number; bytes: number }> {
  const lines = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.length > 0);
  const alerts = lines.filter((l) => l.includes('"event_type":"alert"'));
  const others = lines.filter((l) => !l.includes('"event_type":"alert"'));
  const rnd = prng(20261203);
  const out = createWriteStream(path);
  let nAlerts = 0;
  let bytes = 0;
  let chunk: string[] = [];
  for (let i = 0; i < TOTAL_LINES; i++) {
    const isAlert = i % ALERT_EVERY === 0;
    const base = isAlert ? alerts[Math.floor(rnd() * alerts.length)]! : others[Math.floor(rnd() * others.length)]!;
    const line = variant(base, 1_000_000_000 + i, rnd);
    if (isAlert) nAlerts++;
    chunk.push(line);
    bytes += Buffer.byteLength(line) + 1;
    if (chunk.length === 5_000) {
      if (!out.write(`${chunk.join('\n')}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
      chunk = [];
    }
  }
  if (chunk.length > 0) out.write(`${chunk.join('\n')}\n`);
  await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
  return { alerts: nAlerts, bytes };
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const dir = mkdtempSync(join(tmpdir(), 'etpro-bench-'));
  let agent: ChildProcess | null = null;
  const received = new Map<number, number>();
  let receivedCount = 0;
  const collector = new ReferenceCollector(
    {
      port: 0,
      host: '127.0.0.1',
      dataDir: null,
      rulesDir: null,
      tokens: new Map([[TOKEN, 'ACTIVE']]),
      maxInMemory: 1_000,
      onEvent: (event: Record<string, unknown>, at: number) => {
        receivedCount++;
        const id = Number(event['flow_id']);
        if (id >= 2_000_000_000) received.set(id, at);
      },
    },
    silentLogger(),
  );
  try {
    const evePath = join(dir, 'eve.json');
    const tGen = Date.now();
    const corpus = await writeCorpus(evePath);
    console.log(`corpus: ${TOTAL_LINES.toLocaleString('en')} lines, ${corpus.alerts.toLocaleString('en')} alerts, ${(corpus.bytes / 1_048_576).toFixed(0)} MiB (generated in ${((Date.now() - tGen) / 1000).toFixed(1)} s)`);
    await collector.start();

    const t0 = Date.now();
    const ownCpu0 = process.cpuUsage();
    // The agent runs as its executable does: with the node flags of its shebang line.
    const shebang = readFileSync(CLI, 'utf8').split('\n', 1)[0]!;
    const shebangArgs = shebang.replace(/^#!.*?\bnode\b/, '').split(' ').filter((a) => a !== '');
    const nodeArgs = [...shebangArgs, ...(process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '')];
    console.log(`agent: node ${[...nodeArgs, 'dist/src/cli.js', 'run'].join(' ')}`);
    agent = spawn(process.execPath, [...nodeArgs, CLI, 'run'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        ETPRO_TOKEN: TOKEN,
        ETPRO_BASE_URL: collector.url,
        ETPRO_EVE_PATH: evePath,
        ETPRO_START_AT: 'beginning',
        ETPRO_STATE_DIR: join(dir, 'state'),
        ETPRO_RULES_DIR: join(dir, 'rules'),
        ETPRO_SURICATA_YAML: join(dir, 'no-suricata.yaml'),
        ETPRO_SURICATA_SOCKET: join(dir, 'no.socket'),
        ETPRO_HOME_NET: '10.0.0.0/8',
        ETPRO_STATUS_PORT: '0',
        ETPRO_RULES_UPDATE_ENABLED: 'false',
        ETPRO_HEARTBEAT_ENABLED: 'false',
        ETPRO_LOG_LEVEL: 'warn',
        // Overrides for experiments: BENCH_ETPRO_MAX_IN_FLIGHT=64 npm run bench
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_ETPRO_')).map(([k, v]) => [k.slice(6), v])),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const pid = agent.pid!;
    await waitFor(() => receivedCount >= corpus.alerts, 600_000, `${corpus.alerts} alerts at the collector`);
    const catchUpS = (Date.now() - t0) / 1000;
    const cpuCatchUp = cpuSeconds(pid);
    const rssCatchUp = peakRssMb(pid);
    const ownCpu = process.cpuUsage(ownCpu0);
    const collectorCpuS = (ownCpu.user + ownCpu.system) / 1e6;

    // Idle: nothing is written for 5 s.
    await sleep(500);
    const idle0 = cpuSeconds(pid);
    await sleep(5_000);
    const idleCpuPct = ((cpuSeconds(pid) - idle0) / 5) * 100;

    // Latency at a steady 1,000 alerts/s: each appended alert carries a unique flow_id.
    const alertLine = readFileSync(FIXTURE, 'utf8')
      .split('\n')
      .find((l) => l.includes('"event_type":"alert"'))!;
    const appendedAt = new Map<number, number>();
    const fd = openSync(evePath, 'a');
    const total = LATENCY_RATE * LATENCY_SECONDS;
    const tick = 10; // ms
    const perTick = (LATENCY_RATE * tick) / 1000;
    const tl = Date.now();
    let next = 2_000_000_000;
    for (let k = 0; next - 2_000_000_000 < total; k++) {
      const due = tl + k * tick;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      const batch: string[] = [];
      for (let j = 0; j < perTick; j++) batch.push(alertLine.replace(FLOW_ID, `"flow_id":${next++}`));
      writeSync(fd, `${batch.join('\n')}\n`);
      const at = Date.now();
      for (let id = next - perTick; id < next; id++) appendedAt.set(id, at);
    }
    closeSync(fd);
    await waitFor(() => received.size >= total, 60_000, `${total} latency-probe alerts`);
    const latencies = [...appendedAt].map(([id, at]) => received.get(id)! - at).sort((a, b) => a - b);
    const rssEnd = peakRssMb(pid);

    agent.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => agent!.once('exit', (c) => r(c)));
    agent = null;

    const alertsPerS = corpus.alerts / catchUpS;
    const cpuPer1000Ms = (cpuCatchUp / corpus.alerts) * 1000 * 1000;
    console.log('');
    console.log('etpro-telemetry-sidecar benchmark (agent = child process, collector = this process, loopback)');
    console.log(`  catch-up:            ${corpus.alerts.toLocaleString('en')} alerts in ${catchUpS.toFixed(2)} s  -> ${Math.round(alertsPerS).toLocaleString('en')} alerts/s   (target >= 15,000)`);
    console.log(`  agent CPU:           ${cpuCatchUp.toFixed(2)} s  -> ${cpuPer1000Ms.toFixed(1)} ms per 1,000 alerts   (target <= 70)`);
    console.log(`  collector CPU:       ${collectorCpuS.toFixed(2)} s (this process, for context: the collector shares the 2 cores)`);
    console.log(`  peak RSS:            ${rssCatchUp.toFixed(0)} MB during catch-up, ${rssEnd.toFixed(0)} MB at the end   (target <= 150)`);
    console.log(`  idle CPU:            ${idleCpuPct.toFixed(2)} % of one core over 5 s with no new lines`);
    console.log(`  latency @1,000/s:    p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms, max ${latencies[latencies.length - 1]} ms over ${latencies.length.toLocaleString('en')} alerts   (target p99 < 1,000)`);
    console.log(`  agent exit code after SIGTERM: ${code}`);
  } finally {
    if (agent) agent.kill('SIGKILL');
    await collector.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
