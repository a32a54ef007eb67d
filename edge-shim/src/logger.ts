import type { Logger } from 'pino';
import { holdfastLogger } from '../../functions/src/edge/index.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** JSON logs on stdout, in the schema the fallback agents write too. Credentials and signatures are redacted wherever they might appear. */
export function createLogger(level: LogLevel): Logger {
  return holdfastLogger('holdfast-edge-shim', level, {
    redact: { paths: ['*.authorization', '*.headers.authorization', '*.secretAccessKey', 'credentials'], censor: '[redacted]' },
  });
}
