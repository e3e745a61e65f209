import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'etpro-telemetry-sidecar';
let cached: string | null = null;

/**
 * This agent's version from its package.json, read once. Looked up from this module's directory
 * upwards, so it works from the sources and from the built `dist/`. "NOTFOUND" if absent.
 */
export function agentVersion(): string {
  if (cached !== null) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') {
        cached = pkg.version;
        return cached;
      }
    } catch {
      // not here: look one level up
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  cached = 'NOTFOUND';
  return cached;
}
