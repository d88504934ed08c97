import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import { redactId } from '../../errors.ts';

export type { Logger };

/** The levels `--log-level` accepts, most severe first; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Where session ids go in a log record: log one as `{ sid }` (or the others here) and it comes
 * out shortened by {@link redactId}, at any depth listed.
 */
export const SESSION_ID_KEYS: readonly string[] = [
  'sid',
  'oldSid',
  'newSid',
  'sids[*]',
  '*.sid',
  '*.oldSid',
  '*.newSid',
];

/** The level and destination of {@link createLogger}. */
export interface LoggerOptions {
  /** Default `info`. */
  level?: LogLevel;
  /** Where JSON lines go; default standard output. Tests pass a stream of their own. */
  destination?: DestinationStream;
}

/**
 * A structured JSON logger (pino): one JSON object per line with `level` (as a word), `time`
 * (ISO 8601), `msg` and the fields given.
 *
 * @throws Error for a level that is not one of {@link LOG_LEVELS}
 * @example
 * const logger = createLogger({ level: 'debug' });
 * logger.debug({ sid }, 'session destroyed'); // {"level":"debug",...,"sid":"k3Fq…",...}
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`log level: expected one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  }
  return pino(
    {
      level,
      name: 'sessiond',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label as Level }) },
      redact: {
        paths: [...SESSION_ID_KEYS],
        // Session ids never reach a log whole: defends against session theft by whoever reads
        // the logs (a log shipper, a support ticket, a backup).
        censor: (value) => (typeof value === 'string' ? redactId(value) : '[Redacted]'),
      },
    },
    options.destination,
  );
}
