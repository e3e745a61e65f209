/**
 * Errors with a stable `code`. Callers branch on the code, never on message text.
 */
export type ErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_EVE_LINE_NOT_JSON'
  | 'ERR_EVE_LINE_NO_TIMESTAMP'
  | 'ERR_EVE_LINE_TOO_LONG'
  | 'ERR_CHECKPOINT_INVALID'
  | 'ERR_HOME_NET_INVALID'
  | 'ERR_ADDRESS_INVALID'
  | 'ERR_HTTP'
  | 'ERR_SURICATA_TIMEOUT'
  | 'ERR_SURICATA_CLOSED'
  | 'ERR_SURICATA_NOK'
  | 'ERR_SURICATA_UNAVAILABLE'
  | 'ERR_RULES_DOWNLOAD'
  | 'ERR_RULES_CHECKSUM'
  | 'ERR_RULES_ARCHIVE'
  | 'ERR_RULES_LOCKED'
  | 'ERR_RELOAD_FAILED'
  | 'ERR_RELOAD_UNAVAILABLE'
  | 'ERR_DOCKER'
  | 'ERR_USAGE'
  | 'ERR_SHIPPER_FULL'
  | 'ERR_SHIPPER_STOPPED'
  | 'ERR_TOKENS_FILE'
  | 'ERR_SURICATA_YAML_MISSING'
  | 'ERR_SURICATA_YAML_INVALID'
  | 'ERR_STATE_INVALID'
  | 'ERR_STATE_DIR_UNUSABLE'
  | 'ERR_STATUS_UNAVAILABLE';

export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentError';
    this.code = code;
    this.details = details;
  }
}

export function isAgentError(err: unknown, code?: ErrorCode): err is AgentError {
  return err instanceof AgentError && (code === undefined || err.code === code);
}

/** The `code` of any error (AgentError, Node system error), or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
