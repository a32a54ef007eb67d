import pino, { type Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** JSON logs on stdout. Credentials and signatures are redacted wherever they might appear. */
export function createLogger(level: LogLevel): Logger {
  return pino({
    name: 'holdfast-edge-shim',
    level,
    redact: { paths: ['*.authorization', '*.headers.authorization', '*.secretAccessKey', 'credentials'], censor: '[redacted]' },
  });
}
