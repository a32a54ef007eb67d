/**
 * HTTP/1.1 request framing for the fault proxy's request-level modes (slow, errors): splits what a
 * client sends into its requests (the request line and headers, then a body by Content-Length or
 * chunked), so that the proxy can delay or answer a request as a whole. A stream that does not
 * start as HTTP/1.1 requests is one opaque "request" from there on.
 */

/** What the proxy reads of a request: enough to frame it and to answer it in its protocol. */
export interface RequestHead {
  readonly method: string;
  readonly target: string;
  /** Values by lower-case name; a repeated header's values joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
}

/** A request on a connection: an HTTP/1.1 request, or (no head) the rest of a stream that is not HTTP. */
export interface FramedRequest {
  /** When its first byte arrived. */
  readonly startedAt: number;
  readonly head: RequestHead | undefined;
}

/** Bytes of one request, in the order they came. */
export interface RequestPiece {
  readonly data: Buffer;
  readonly request: FramedRequest;
  /** The request's first bytes: its whole head, when it is HTTP. */
  readonly starts: boolean;
  /** The request's last bytes. */
  readonly ends: boolean;
}

// A head longer than this is not taken for HTTP (servers refuse far less).
const MAX_HEAD_BYTES = 64 * 1024;
// A chunk-size or trailer line longer than this: the body cannot be followed.
const MAX_LINE_BYTES = 4096;
const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/;
// What a request line can be before its end has arrived: a method, then a target, then a version.
const REQUEST_LINE_START = /^[A-Z]{1,20}(?: \S*(?: \S*)?)?\r?$/;
const CRLF_CRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

function parseHead(text: string): RequestHead | undefined {
  const [requestLine, ...lines] = text.split('\r\n');
  const start = REQUEST_LINE.exec(requestLine ?? '');
  if (!start) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  return { method: start[1]!, target: start[2]!, headers };
}

/** Reads a request's body: consume() takes what belongs to it from the front of a buffer. */
interface BodyReader {
  consume(data: Buffer): { readonly used: number; readonly done: boolean };
}

class LengthBody implements BodyReader {
  constructor(private remaining: number) {}

  consume(data: Buffer) {
    const used = Math.min(this.remaining, data.length);
    this.remaining -= used;
    return { used, done: this.remaining === 0 };
  }
}

/** A body whose end cannot be found (a malformed length or chunk): it takes the rest of the stream. */
const ENDLESS_BODY: BodyReader = { consume: (data) => ({ used: data.length, done: false }) };

class ChunkedBody implements BodyReader {
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'endless' = 'size';
  private line = '';
  private remaining = 0;

  consume(data: Buffer) {
    let used = 0;
    while (used < data.length) {
      if (this.state === 'endless') return { used: data.length, done: false };
      if (this.state === 'data' || this.state === 'data-end') {
        const take = Math.min(this.remaining, data.length - used);
        used += take;
        this.remaining -= take;
        if (this.remaining === 0) {
          if (this.state === 'data') {
            this.state = 'data-end';
            this.remaining = 2;
          } else {
            this.state = 'size';
          }
        }
        continue;
      }
      // A chunk-size line, or a trailer line: read up to its LF.
      const lf = data.indexOf(10, used);
      const end = lf < 0 ? data.length : lf + 1;
      this.line += data.toString('latin1', used, end);
      used = end;
      if (this.line.length > MAX_LINE_BYTES) this.state = 'endless';
      if (lf < 0) continue;
      const line = this.line.replace(/\r?\n$/, '');
      this.line = '';
      if (this.state === 'trailer') {
        if (line === '') return { used, done: true };
        continue;
      }
      const size = /^([0-9A-Fa-f]{1,8})(?:[ \t]*;.*)?$/.exec(line);
      if (!size) {
        this.state = 'endless';
        continue;
      }
      this.remaining = parseInt(size[1]!, 16);
      this.state = this.remaining === 0 ? 'trailer' : 'data';
    }
    return { used, done: false };
  }
}

function bodyOf(head: RequestHead): BodyReader | undefined {
  const encoding = head.headers.get('transfer-encoding');
  if (encoding !== undefined) return /(?:^|,)\s*chunked\s*$/i.test(encoding) ? new ChunkedBody() : ENDLESS_BODY;
  const length = head.headers.get('content-length');
  if (length === undefined) return undefined;
  if (!/^\d{1,15}$/.test(length)) return ENDLESS_BODY;
  return Number(length) > 0 ? new LengthBody(Number(length)) : undefined;
}

/**
 * Splits one connection's client-to-server stream into requests. A request's head is held until it
 * is whole (it is given out in one piece); its body is given out as it comes.
 */
export class RequestFramer {
  private held: Buffer = EMPTY;
  private heldSince = 0;
  private current: { readonly request: FramedRequest; readonly body: BodyReader } | undefined;
  /** Set once the stream turned out not to be HTTP/1.1: everything after belongs to it. */
  private opaque: FramedRequest | undefined;

  feed(data: Buffer, now: number): RequestPiece[] {
    const pieces: RequestPiece[] = [];
    let rest = data;
    while (rest.length > 0) {
      if (this.opaque) {
        pieces.push({ data: rest, request: this.opaque, starts: false, ends: false });
        break;
      }
      if (this.current) {
        const { used, done } = this.current.body.consume(rest);
        pieces.push({ data: rest.subarray(0, used), request: this.current.request, starts: false, ends: done });
        if (done) this.current = undefined;
        rest = rest.subarray(used);
        continue;
      }
      if (this.held.length === 0) this.heldSince = now;
      const searchFrom = Math.max(0, this.held.length - 3);
      this.held = this.held.length === 0 ? rest : Buffer.concat([this.held, rest]);
      rest = EMPTY;
      const end = this.held.indexOf(CRLF_CRLF, searchFrom);
      if (end < 0) {
        if (!this.couldBeHead()) pieces.push(this.notHttp());
        break;
      }
      const head = parseHead(this.held.toString('latin1', 0, end));
      if (!head) {
        pieces.push(this.notHttp());
        break;
      }
      const request: FramedRequest = { startedAt: this.heldSince, head };
      const body = bodyOf(head);
      pieces.push({ data: this.held.subarray(0, end + 4), request, starts: true, ends: body === undefined });
      if (body) this.current = { request, body };
      rest = this.held.subarray(end + 4);
      this.held = EMPTY;
    }
    return pieces;
  }

  /** The client ended its stream: an unfinished head goes as it is. */
  end(): RequestPiece[] {
    return this.held.length > 0 ? [this.notHttp()] : [];
  }

  private couldBeHead(): boolean {
    if (this.held.length > MAX_HEAD_BYTES) return false;
    const text = this.held.toString('latin1', 0, Math.min(this.held.length, MAX_LINE_BYTES + 2));
    const lineEnd = text.indexOf('\r\n');
    return lineEnd < 0 ? text.length <= MAX_LINE_BYTES && REQUEST_LINE_START.test(text) : REQUEST_LINE.test(text.slice(0, lineEnd));
  }

  private notHttp(): RequestPiece {
    this.opaque = { startedAt: this.heldSince, head: undefined };
    const piece = { data: this.held, request: this.opaque, starts: true, ends: false };
    this.held = EMPTY;
    return piece;
  }
}
