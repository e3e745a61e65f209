import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { VARIABLES } from '../../src/config.js';
import { commandWorks, requireOrSkip } from '../helpers/requirements.js';
import { repoRoot, run } from './docker-tools.js';

const root = repoRoot();
const chart = join(root, 'helm', 'etpro-telemetry-sidecar');
const hasHelm = commandWorks('helm', ['version', '--short']);

/** Settings that do not go through `config:` in the chart: the token comes from `token:` (a Secret). */
const TOKEN_SETTINGS = ['ETPRO_TOKEN', 'ETPRO_TOKEN_FILE'];

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: unknown };
type Container = {
  name: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  securityContext?: Record<string, unknown> & { capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  livenessProbe?: { httpGet: { path: string; port: string | number; host?: string } };
  readinessProbe?: { httpGet: { path: string; port: string | number; host?: string } };
  ports?: { name: string; containerPort: number }[];
};
type PodSpec = {
  hostNetwork?: boolean;
  dnsPolicy?: string;
  shareProcessNamespace?: boolean;
  containers: Container[];
  initContainers?: Container[];
  volumes: ({ name: string } & Record<string, unknown>)[];
};

async function template(args: string[] = []): Promise<K8sObject[]> {
  const r = await run('helm', ['template', 'sensor', chart, '--namespace', 'ids', ...args]);
  assert.equal(r.code, 0, `helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** Validates an object against the Kubernetes schema of its apiVersion/kind (kubernetes-models). */
async function validate(obj: K8sObject): Promise<void> {
  const modulePath = `kubernetes-models/${obj.apiVersion}`;
  const mod = (await import(modulePath)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = mod[obj.kind];
  assert.ok(Model, `kubernetes-models has no ${obj.apiVersion} ${obj.kind}`);
  try {
    new Model(obj).validate();
  } catch (err) {
    assert.fail(`${obj.kind}/${obj.metadata.name} does not match the Kubernetes schema: ${(err as Error).message}`);
  }
}

function daemonSet(objs: K8sObject[]): PodSpec {
  const ds = objs.find((o) => o.kind === 'DaemonSet') as (K8sObject & { spec: { template: { spec: PodSpec } } }) | undefined;
  assert.ok(ds, 'no DaemonSet rendered');
  return ds.spec.template.spec;
}

const container = (pod: PodSpec, name: string): Container => {
  const c = pod.containers.find((x) => x.name === name);
  assert.ok(c, `no container ${name}`);
  return c;
};
const envOf = (c: Container): Map<string, string | undefined> => new Map((c.env ?? []).map((e) => [e.name, e.value]));

describe('settings coverage', () => {
  test('values.yaml and values.schema.json list every agent setting except the token pair, which comes from a Secret', () => {
    const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as { config: Record<string, unknown> };
    const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as {
      properties: { config: { properties: Record<string, unknown>; additionalProperties: boolean } };
    };
    const expected = VARIABLES.map((v) => v.name).filter((n) => !TOKEN_SETTINGS.includes(n)).sort();
    assert.deepEqual(Object.keys(values.config).sort(), expected);
    assert.deepEqual(Object.keys(schema.properties.config.properties).sort(), expected);
    assert.equal(schema.properties.config.additionalProperties, false, 'a misspelt setting must be refused');
  });

  test('deploy/.env.example lists every agent setting', () => {
    const text = readFileSync(join(root, 'deploy', '.env.example'), 'utf8');
    const listed = new Set([...text.matchAll(/^#?\s*(ETPRO_[A-Z0-9_]+)=/gm)].map((m) => m[1]));
    const missing = VARIABLES.map((v) => v.name).filter((n) => !listed.has(n));
    assert.deepEqual(missing, []);
    const unknown = [...listed].filter((n) => !VARIABLES.some((v) => v.name === n));
    assert.deepEqual(unknown, [], 'the example names settings the agent does not know');
  });

  test("the chart's suricata.yaml differs from deploy/suricata.yaml only in HOME_NET and comments", () => {
    const strip = (s: string): string[] =>
      s
        .split('\n')
        .filter((l) => !/^\s*#/.test(l) && !/^\s+HOME_NET:/.test(l))
        .map((l) => l.trimEnd());
    const deployYaml = readFileSync(join(root, 'deploy', 'suricata.yaml'), 'utf8');
    const chartYaml = readFileSync(join(chart, 'files', 'suricata.yaml'), 'utf8');
    assert.deepEqual(strip(chartYaml), strip(deployYaml));
    assert.match(chartYaml, /HOME_NET: \{\{ \.Values\.suricata\.homeNet \| quote \}\}/);
  });
});

describe('helm chart', () => {
  test('passes helm lint with default values and with non-default values', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed (scripts/e2e-prereqs.sh installs it)')) return;
    const plain = await run('helm', ['lint', '--strict', chart]);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    const custom = await run('helm', [
      'lint', '--strict', chart,
      '--set', 'token.value=abc123', '--set', 'config.ETPRO_RELOAD=signal', '--set', 'suricata.interface=ens5',
      '--set', 'persistence.logs.type=emptyDir', '--set', 'persistence.state.hostPath=/srv/etpro',
      '--set', 'metrics.serviceMonitor.enabled=true', '--set', 'config.ETPRO_STATUS_ADDR=0.0.0.0',
      '--set', 'config.ETPRO_LOG_LEVEL=debug', '--set', 'tolerations[0].operator=Exists',
      '--set', 'nodeSelector.role=sensor',
    ]);
    assert.equal(custom.code, 0, custom.stdout + custom.stderr);
  });

  test('refuses a misspelt setting, a reload method that needs Docker, an -S argument and two token sources', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const bad: [string[], RegExp][] = [
      [['--set', 'config.ETPRO_RELAOD=socket'], /ETPRO_RELAOD/],
      [['--set', 'config.ETPRO_RELOAD=docker'], /ETPRO_RELOAD/],
      [['--set', 'suricata.extraArgs[0]=-S'], /extraArgs/],
      [['--set', 'token.value=a', '--set', 'token.existingSecret=b'], /token/],
      [['--set', 'metrics.serviceMonitor.enabled=true'], /ETPRO_STATUS_ADDR/],
    ];
    for (const [args, why] of bad) {
      const r = await run('helm', ['template', 'sensor', chart, ...args]);
      assert.notEqual(r.code, 0, `helm template ${args.join(' ')} should fail`);
      assert.match(r.stderr, why);
    }
  });

  for (const reload of ['socket', 'signal', 'none', 'auto']) {
    test(`renders objects that match the Kubernetes schema for reload method ${reload}`, async (t) => {
      if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
      const objs = await template(['--set', `config.ETPRO_RELOAD=${reload}`, '--set', 'token.value=s3cret']);
      assert.deepEqual(objs.map((o) => o.kind).sort(), ['ConfigMap', 'DaemonSet', 'Secret', 'ServiceAccount']);
      for (const o of objs) await validate(o);
      const pod = daemonSet(objs);
      assert.equal(pod.shareProcessNamespace === true, reload === 'signal', 'only the signal method shares the process namespace');
      const suricataArgs = container(pod, 'suricata').args ?? [];
      assert.equal(suricataArgs.includes('--pidfile'), reload === 'signal');
      assert.ok(!suricataArgs.includes('-S') && !suricataArgs.includes('-s'), 'Suricata must not be started with -S/-s');
      assert.equal(envOf(container(pod, 'agent')).get('ETPRO_RELOAD'), reload);
    });
  }

  test('runs the pod on the host network with the cluster DNS policy', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const pod = daemonSet(await template());
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
  });

  test('gives capabilities to Suricata only and runs the agent unprivileged as the socket owner', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const pod = daemonSet(await template(['--set', 'sidecarUser.uid=20002', '--set', 'sidecarUser.gid=20003']));
    const suricata = container(pod, 'suricata');
    assert.deepEqual([...(suricata.securityContext?.capabilities?.add ?? [])].sort(), ['NET_ADMIN', 'NET_RAW', 'SYS_NICE']);
    assert.equal(envOf(suricata).get('PUID'), '20002');
    assert.equal(envOf(suricata).get('PGID'), '20003');
    const agent = container(pod, 'agent');
    const sc = agent.securityContext ?? {};
    assert.equal(sc['runAsNonRoot'], true);
    assert.equal(sc['runAsUser'], 20002);
    assert.equal(sc['runAsGroup'], 20003);
    assert.equal(sc['readOnlyRootFilesystem'], true);
    assert.equal(sc['allowPrivilegeEscalation'], false);
    assert.deepEqual(sc.capabilities?.drop, ['ALL']);
    assert.equal(sc.capabilities?.add, undefined);
  });

  test('reads the token from a chart-made Secret through ETPRO_TOKEN_FILE, never from a plain variable', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const objs = await template(['--set', 'token.value=s3cret-token']);
    const secret = objs.find((o) => o.kind === 'Secret') as (K8sObject & { data: Record<string, string> }) | undefined;
    assert.ok(secret);
    assert.equal(Buffer.from(secret.data['token']!, 'base64').toString(), 's3cret-token');
    const pod = daemonSet(objs);
    const agent = container(pod, 'agent');
    const env = envOf(agent);
    assert.equal(env.has('ETPRO_TOKEN'), false);
    assert.equal(env.get('ETPRO_TOKEN_FILE'), '/var/run/secrets/etpro/token');
    const vol = pod.volumes.find((v) => v.name === 'token') as { secret?: { secretName: string } } | undefined;
    assert.equal(vol?.secret?.secretName, secret.metadata.name);
    assert.ok(agent.volumeMounts?.some((m) => m.name === 'token' && m.mountPath === '/var/run/secrets/etpro' && m.readOnly === true));
    assert.ok(!(container(pod, 'suricata').volumeMounts ?? []).some((m) => m.name === 'token'), 'Suricata does not see the token');
    assert.doesNotMatch(JSON.stringify(pod), /s3cret-token/, 'the token appears only in the Secret');
    // The kubelet makes Secret files root-owned unless the pod has an fsGroup: mode 0440 must be
    // readable through the agent's group, or the agent cannot read its token (EACCES, exit 78).
    const mode = (pod.volumes.find((v) => v.name === 'token') as { secret?: { defaultMode?: number } }).secret?.defaultMode;
    const podSc = (pod as unknown as { securityContext?: { fsGroup?: number } }).securityContext;
    assert.ok(mode === undefined || (mode & 0o004) !== 0 || podSc?.fsGroup === agent.securityContext?.['runAsGroup'], `token mode ${mode?.toString(8)} without a matching fsGroup (${podSc?.fsGroup})`);
  });

  test('uses an existing Secret by name without creating one, and runs without a token when none is given', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const objs = await template(['--set', 'token.existingSecret=et-token', '--set', 'token.key=apikey']);
    assert.equal(objs.some((o) => o.kind === 'Secret'), false);
    const pod = daemonSet(objs);
    assert.equal(envOf(container(pod, 'agent')).get('ETPRO_TOKEN_FILE'), '/var/run/secrets/etpro/apikey');
    const vol = pod.volumes.find((v) => v.name === 'token') as { secret?: { secretName: string } } | undefined;
    assert.equal(vol?.secret?.secretName, 'et-token');

    const none = daemonSet(await template());
    assert.equal(envOf(container(none, 'agent')).has('ETPRO_TOKEN_FILE'), false);
    assert.equal(none.volumes.some((v) => v.name === 'token'), false);
  });

  test("probes the agent's /healthz and /readyz on its status port over the node's loopback", async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const agent = container(daemonSet(await template(['--set', 'config.ETPRO_STATUS_PORT=9411'])), 'agent');
    assert.deepEqual(agent.ports?.map((p) => [p.name, p.containerPort]), [['status', 9411]]);
    assert.equal(envOf(agent).get('ETPRO_STATUS_PORT'), '9411');
    assert.deepEqual(agent.livenessProbe?.httpGet, { host: '127.0.0.1', path: '/healthz', port: 'status' });
    assert.deepEqual(agent.readinessProbe?.httpGet, { host: '127.0.0.1', path: '/readyz', port: 'status' });
  });

  test('shares the socket, logs and rules volumes between the containers, logs read-only for the agent', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const pod = daemonSet(await template());
    const mounts = (name: string): Map<string, { mountPath: string; readOnly?: boolean }> =>
      new Map((container(pod, name).volumeMounts ?? []).map((m) => [m.name, m]));
    const s = mounts('suricata');
    const a = mounts('agent');
    for (const [vol, path] of [['run', '/var/run/suricata'], ['logs', '/var/log/suricata'], ['rules', '/var/lib/suricata']] as const) {
      assert.equal(s.get(vol)?.mountPath, path, `suricata mounts ${vol}`);
      assert.equal(a.get(vol)?.mountPath, path, `agent mounts ${vol}`);
    }
    assert.equal(a.get('logs')?.readOnly, true);
    assert.notEqual(a.get('rules')?.readOnly, true, 'the agent writes the rules');
    assert.equal(a.get('state')?.mountPath, '/var/lib/etpro-sidecar');
    assert.equal(a.get('suricata-config')?.mountPath, '/etc/suricata', 'the agent reads the same suricata.yaml');
    assert.equal(s.get('suricata-config')?.mountPath, '/etc/suricata-sidecar');
    const byName = new Map(pod.volumes.map((v) => [v.name, v]));
    assert.deepEqual(byName.get('run')?.['emptyDir'], { medium: 'Memory', sizeLimit: '16Mi' });
    for (const [vol, path] of [['logs', '/var/lib/etpro-sidecar/suricata-log'], ['rules', '/var/lib/etpro-sidecar/suricata-lib'], ['state', '/var/lib/etpro-sidecar/state']] as const) {
      assert.deepEqual(byName.get(vol)?.['hostPath'], { path, type: 'DirectoryOrCreate' }, `${vol} is a hostPath by default`);
    }
    const env = envOf(container(pod, 'agent'));
    assert.equal(env.get('ETPRO_SURICATA_SOCKET'), '/var/run/suricata/suricata-command.socket');
    assert.equal(env.get('ETPRO_EVE_PATH'), '/var/log/suricata/eve.json');
    assert.equal(env.get('ETPRO_RULES_DIR'), '/var/lib/suricata/rules');
    assert.equal(env.get('ETPRO_STATE_DIR'), '/var/lib/etpro-sidecar');
  });

  test('prints whole-number settings without an exponent', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const env = envOf(container(daemonSet(await template()), 'agent'));
    assert.equal(env.get('ETPRO_MAX_LINE_BYTES'), '1048576');
    assert.equal(env.get('ETPRO_RELOAD_TIMEOUT_MS'), '180000');
  });

  test('puts HOME_NET from the values into the suricata.yaml both containers read', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const objs = await template(['--set', 'suricata.homeNet=[198.51.100.0/24]']);
    const cm = objs.find((o) => o.kind === 'ConfigMap') as (K8sObject & { data: Record<string, string> }) | undefined;
    const yaml = cm?.data['suricata.yaml'] ?? '';
    const doc = parse(yaml.replace(/^%YAML 1\.1\n---\n/, '')) as { vars: { 'address-groups': Record<string, string> }; 'unix-command': { filename: string } };
    assert.equal(doc.vars['address-groups']['HOME_NET'], '[198.51.100.0/24]');
    assert.equal(doc['unix-command'].filename, '/var/run/suricata/suricata-command.socket');
  });

  test('adds a headless Service and a ServiceMonitor for /metrics when asked', async (t) => {
    if (!requireOrSkip(t, hasHelm, 'helm is not installed')) return;
    const objs = await template(['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'config.ETPRO_STATUS_ADDR=0.0.0.0']);
    const svc = objs.find((o) => o.kind === 'Service');
    assert.ok(svc);
    await validate(svc);
    // ServiceMonitor is a Prometheus Operator CRD, outside kubernetes-models: check its shape here.
    const sm = objs.find((o) => o.kind === 'ServiceMonitor') as (K8sObject & { spec: { endpoints: { port: string; path: string }[] } }) | undefined;
    assert.equal(sm?.apiVersion, 'monitoring.coreos.com/v1');
    assert.deepEqual(sm?.spec.endpoints.map((e) => [e.port, e.path]), [['status', '/metrics']]);
  });
});
