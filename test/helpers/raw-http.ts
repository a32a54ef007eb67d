import { connect } from 'node:net';
import { XMLParser } from 'fast-xml-parser';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface SqsErrorAnswer {
  readonly status: number;
  readonly protocol: 'json' | 'query';
  /** The Query code: <Code> in XML, the x-amzn-query-error header (else __type) in JSON. */
  readonly code: string;
  readonly message: string;
}

/**
 * Writes bytes to the shim over a fresh TCP connection and reads until the server closes it.
 * `write` may send in steps and end or destroy the socket, to play a misbehaving client.
 */
export function exchange(url: string, write: string | Buffer | ((socket: import('node:net').Socket) => void)): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => {
      if (typeof write === 'function') write(socket);
      else socket.write(write);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** The first HTTP/1.1 response in `text` (bodies are sent with content-length). */
export function parseAnswer(text: string): HttpAnswer {
  const split = text.indexOf('\r\n\r\n');
  if (split < 0) throw new Error(`no HTTP response in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  return { status, headers, body: Buffer.from(text.slice(split + 4)).subarray(0, length).toString('utf8') };
}

const xml = new XMLParser({ parseTagValue: false });

/** Reads an SQS error in either protocol; throws when the answer is not one. */
export function sqsError(answer: HttpAnswer): SqsErrorAnswer {
  if (answer.headers['content-type'] === 'application/x-amz-json-1.0') {
    const body = JSON.parse(answer.body) as { __type?: unknown; message?: unknown };
    if (typeof body.__type !== 'string' || typeof body.message !== 'string') throw new Error(`not an SQS JSON error: ${answer.body}`);
    const code = answer.headers['x-amzn-query-error']?.split(';')[0] ?? body.__type.split('#')[1]!;
    return { status: answer.status, protocol: 'json', code, message: body.message };
  }
  const parsed = xml.parse(answer.body) as { ErrorResponse?: { Error?: { Code?: unknown; Message?: unknown } } };
  const error = parsed.ErrorResponse?.Error;
  if (typeof error?.Code !== 'string' || typeof error.Message !== 'string') throw new Error(`not an SQS XML error: ${answer.body}`);
  return { status: answer.status, protocol: 'query', code: error.Code, message: error.Message };
}
