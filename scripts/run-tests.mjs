// Runs the compiled tests of the named tiers (unit, integration, e2e) with node's test runner.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const tiers = process.argv.slice(2);
const files = [];
const walk = (dir) => {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
};
for (const tier of tiers) walk(join('dist', 'test', tier));
if (files.length === 0) {
  console.error(`no test files found for ${tiers.join(', ')}`);
  process.exit(1);
}
const concurrency = process.env.ETPRO_TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
