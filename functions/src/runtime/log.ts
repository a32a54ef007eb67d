import { type Logger, type LoggerOptions, pino, stdTimeFunctions } from 'pino';

/**
 * Holdfast's one log schema, on every stdout it writes to (the edge shim, its fallback agents, the
 * Lambda handlers): a JSON object a line with `level` as its label (`"info"`, not pino's 30),
 * `time` in ISO-8601, `pid`, `hostname`, `name` (who logs: the shim, the agents' runner, a
 * workflow's handlers) and `msg`, then the line's own fields. The handlers' Powertools Logger
 * writes it through HoldfastLogFormatter (./log-formatter.ts).
 */
export function holdfastLogger(name: string, level: string, options: Pick<LoggerOptions, 'redact'> = {}): Logger {
  return pino({ name, level, formatters: { level: (label) => ({ level: label }) }, timestamp: stdTimeFunctions.isoTime, ...options });
}
