import { readFileSync } from 'node:fs';
import { AgentError } from '../errors.js';

export type SensorStatus = 'ACTIVE' | 'DORMANT' | 'DISABLED';
export const SENSOR_STATUSES: readonly SensorStatus[] = ['ACTIVE', 'DORMANT', 'DISABLED'];

/**
 * Parses the reference collector's tokens file: one token a line, optionally followed by white
 * space and a status (ACTIVE, DORMANT, DISABLED; default ACTIVE); `#` starts a comment; blank lines
 * are ignored. Errors name the line, never the token.
 */
export function parseTokens(text: string, source = 'tokens file'): Map<string, SensorStatus> {
  const tokens = new Map<string, SensorStatus>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const fields = line.split(/\s+/);
    if (fields.length > 2) throw new AgentError('ERR_TOKENS_FILE', `${source} line ${i + 1}: expected "<token> [status]", found ${fields.length} fields`, { line: i + 1 });
    const status = (fields[1] ?? 'ACTIVE').toUpperCase() as SensorStatus;
    if (!SENSOR_STATUSES.includes(status)) {
      throw new AgentError('ERR_TOKENS_FILE', `${source} line ${i + 1}: status ${JSON.stringify(fields[1])} must be one of ${SENSOR_STATUSES.join(', ')}`, { line: i + 1 });
    }
    tokens.set(fields[0]!, status);
  }
  return tokens;
}

/** Reads and parses a tokens file (see {@link parseTokens}). */
export function readTokensFile(path: string): Map<string, SensorStatus> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AgentError('ERR_TOKENS_FILE', `Tokens file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { path }, { cause: err });
  }
  return parseTokens(text, `Tokens file ${path}`);
}
