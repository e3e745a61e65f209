import winston from 'winston';

export type Logger = winston.Logger;
export type LogFormat = 'json' | 'text';

/**
 * The root logger: JSON lines to stdout by default (one object a line), text for people.
 * Components get a child: `log.child({ component: 'shipper' })`.
 */
export function createLogger(level: string, format: LogFormat, stream: NodeJS.WritableStream = process.stdout): Logger {
  const fmt =
    format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp(),
          winston.format.printf(({ timestamp, level: lvl, message, component, ...rest }) => {
            const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
            return `${String(timestamp)} ${lvl.padEnd(5)} ${component ? `[${String(component)}] ` : ''}${String(message)}${extra}`;
          }),
        );
  return winston.createLogger({
    level,
    format: fmt,
    transports: [new winston.transports.Stream({ stream })],
  });
}

/** A logger that drops everything: for tests and for CLI commands that print their own output. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

/**
 * Rate-limits one kind of repeating log line: the first occurrence is logged at once,
 * later ones at most once per `intervalMs`, carrying the count suppressed in between.
 */
export class RateLimitedLog {
  private lastAt = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly level: 'error' | 'warn' | 'info' | 'debug',
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  write(message: string, fields: Record<string, unknown> = {}): void {
    const t = this.now();
    if (t - this.lastAt < this.intervalMs) {
      this.suppressed++;
      return;
    }
    const extra = this.suppressed > 0 ? { suppressed: this.suppressed } : {};
    this.lastAt = t;
    this.suppressed = 0;
    this.log.log(this.level, message, { ...fields, ...extra });
  }
}
