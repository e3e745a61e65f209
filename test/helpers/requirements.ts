import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/**
 * A test that needs something from the machine (Suricata, Docker, helm) skips with the reason
 * when it is missing, unless ETPRO_TEST_REQUIRE_ALL=1 (CI), where the missing thing is a failure.
 * Returns true when the test may go on.
 */
export function requireOrSkip(t: TestContext, available: boolean, reason: string): boolean {
  if (available) return true;
  const requireAll = process.env['ETPRO_TEST_REQUIRE_ALL'] === '1';
  if (requireAll) throw new Error(`required for this test, but missing: ${reason} (ETPRO_TEST_REQUIRE_ALL=1)`);
  t.skip(reason); // only outside CI: under ETPRO_TEST_REQUIRE_ALL=1 the line above fails instead
  return false;
}

/** True when `cmd args` runs and exits 0. */
export function commandWorks(cmd: string, args: string[] = ['--version']): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

export const hasSuricata = (): boolean => commandWorks('suricata', ['-V']);
