import { hostname } from 'node:os';
import { LogFormatter, LogItem } from '@aws-lambda-powertools/logger';
import type { LogAttributes, UnformattedAttributes } from '@aws-lambda-powertools/logger/types';

/**
 * The Powertools Logger's lines in Holdfast's log schema (see ./log.ts), so that a handler's lines
 * and the edge shim's read alike on one stdout: the same base fields under pino's names, the
 * workflow's name as `name`, and Powertools' own Lambda context fields (cold_start,
 * function_request_id, ...) after them once the handler has added its context.
 */
export class HoldfastLogFormatter extends LogFormatter {
  private readonly host = hostname();

  override formatAttributes(attributes: UnformattedAttributes, additionalLogAttributes: LogAttributes): LogItem {
    const context = attributes.lambdaContext;
    return new LogItem({
      attributes: {
        level: attributes.logLevel.toLowerCase(),
        time: attributes.timestamp.toISOString(),
        pid: process.pid,
        hostname: this.host,
        name: attributes.serviceName,
        msg: attributes.message,
        cold_start: context?.coldStart,
        function_name: context?.functionName,
        function_request_id: context?.awsRequestId,
        xray_trace_id: attributes.xRayTraceId,
      },
    }).addAttributes(additionalLogAttributes);
  }
}
