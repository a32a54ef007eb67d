import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

/** A request as the stand-in sees it: the operation (from `x-amz-target`) and its JSON input. */
export interface StandInRequest {
  readonly operation: string;
  readonly input: Record<string, unknown>;
}

export interface CannedAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Answers a request itself, or leaves it to the real region (undefined); a promise holds the request until it settles. */
export type StandInRule = (request: StandInRequest) => CannedAnswer | undefined | Promise<CannedAnswer | undefined>;

/** An error as an AWS JSON 1.0 service answers it, in the shape the SDKs read. */
export function awsJsonError(status: number, type: string, message: string, queryCode = type): CannedAnswer {
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': `${queryCode};${status >= 500 ? 'Receiver' : 'Sender'}` },
    body: JSON.stringify({ __type: `com.amazonaws.sqs#${type}`, message }),
  };
}

/**
 * A stand-in for a region's SQS on loopback: it forwards every request to the real one (the
 * emulator) unless its rule answers it, so that a test can make the region answer what an
 * emulator never does (credentials refused, server errors for some queues, pages that are not
 * SQS) while everything else behaves as the region. AWS JSON protocol only.
 */
export class RegionStandIn {
  rule: StandInRule | undefined;
  /** Requests answered by the rule, and forwarded. */
  readonly counts = { answered: 0, forwarded: 0 };

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<RegionStandIn> {
    const base = target.replace(/\/+$/, '');
    let standIn!: RegionStandIn;
    const server = createServer((incoming, response) => {
      void answer(incoming).then(
        ({ status, headers, body }) => {
          response.writeHead(status, headers);
          response.end(body);
        },
        () => response.destroy(),
      );
    });
    const answer = async (incoming: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; body: Buffer | string }> => {
      const chunks: Buffer[] = [];
      for await (const chunk of incoming) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const operation = String(incoming.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      let input: Record<string, unknown> = {};
      try {
        input = JSON.parse(body.toString() || '{}') as Record<string, unknown>;
      } catch {
        // Not JSON: forwarded as it is.
      }
      const canned = await standIn.rule?.({ operation, input });
      if (canned) {
        standIn.counts.answered += 1;
        return canned;
      }
      standIn.counts.forwarded += 1;
      const headers = Object.fromEntries(Object.entries(incoming.headers).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[0] !== 'host' && entry[0] !== 'connection'));
      const forwarded = await request(`${base}${incoming.url ?? '/'}`, { method: incoming.method as 'POST', headers, body });
      const answered = Buffer.from(await forwarded.body.arrayBuffer());
      const back = Object.fromEntries(Object.entries(forwarded.headers).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && !['connection', 'transfer-encoding', 'keep-alive'].includes(entry[0])));
      return { status: forwarded.statusCode, headers: back, body: answered };
    };
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    standIn = new RegionStandIn(server, `http://127.0.0.1:${port}`);
    return standIn;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
