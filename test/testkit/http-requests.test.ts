import { describe, expect, it } from 'vitest';
import { type RequestPiece, RequestFramer } from '../../testkit/http-requests.js';

// The fault proxy's HTTP/1.1 request framing, fed the way TCP may deliver a stream: whole, or a
// byte at a time. What it gives out must be the same bytes, cut at the requests' boundaries.

const SEND = 'POST / HTTP/1.1\r\nHost: sqs\r\nX-Amz-Target: AmazonSQS.SendMessage\r\nContent-Length: 11\r\n\r\n{"a":"bcd"}';
const GET = 'GET /?Action=ListQueues HTTP/1.1\r\nHost: sqs\r\n\r\n';
const CHUNKED = 'POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nTrailer: t\r\n\r\n';

/** Feeds `stream` in pieces of `step` bytes; returns each request's bytes and head, in order. */
function frame(stream: string, step: number) {
  const framer = new RequestFramer();
  const pieces: RequestPiece[] = [];
  for (let offset = 0; offset < stream.length; offset += step) pieces.push(...framer.feed(Buffer.from(stream.slice(offset, offset + step), 'latin1'), offset));
  pieces.push(...framer.end());
  const requests: Array<{ text: string; head: RequestPiece['request']['head']; startedAt: number; ended: boolean }> = [];
  for (const piece of pieces) {
    if (piece.starts) requests.push({ text: '', head: piece.request.head, startedAt: piece.request.startedAt, ended: false });
    const request = requests.at(-1)!;
    expect(request.ended).toBe(false);
    request.text += piece.data.toString('latin1');
    request.ended = piece.ends;
  }
  return requests;
}

describe('HTTP/1.1 request framing', () => {
  it.each([1, 3, 1000])('cuts keep-alive requests at their boundaries, fed %i bytes at a time', (step) => {
    const requests = frame(SEND + GET + CHUNKED + SEND, step);
    expect(requests.map((request) => request.text)).toEqual([SEND, GET, CHUNKED, SEND]);
    expect(requests.every((request) => request.ended)).toBe(true);
    expect(requests.map((request) => request.head?.method)).toEqual(['POST', 'GET', 'POST', 'POST']);
    expect(requests[0]!.head?.headers.get('x-amz-target')).toBe('AmazonSQS.SendMessage');
    expect(requests[1]!.head?.target).toBe('/?Action=ListQueues');
    // A request starts when its first byte arrives (offsets stand for times here).
    expect(requests[1]!.startedAt).toBe(step === 1000 ? 0 : Math.floor(SEND.length / step) * step);
  });

  it('holds a head until it is whole, and gives the body out as it comes', () => {
    const framer = new RequestFramer();
    expect(framer.feed(Buffer.from('POST / HTTP/1.1\r\nContent-Length: 4\r\n'), 0)).toEqual([]);
    const head = framer.feed(Buffer.from('\r\nab'), 1);
    expect(head.map((piece) => [piece.data.toString(), piece.starts, piece.ends])).toEqual([
      ['POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n', true, false],
      ['ab', false, false],
    ]);
    expect(framer.feed(Buffer.from('cd'), 2).map((piece) => [piece.data.toString(), piece.ends])).toEqual([['cd', true]]);
  });

  it('takes a stream that does not start as HTTP/1.1 for one opaque request, at once', () => {
    const framer = new RequestFramer();
    const [piece, ...others] = framer.feed(Buffer.from('hello'), 0);
    expect(others).toEqual([]);
    expect(piece).toMatchObject({ starts: true, ends: false, request: { head: undefined } });
    const [next] = framer.feed(Buffer.from(SEND), 1);
    expect(next).toMatchObject({ starts: false, request: piece!.request });
    expect(frame('HELLO WORLD\r\nthis is not HTTP\r\n\r\n', 4)).toEqual([{ text: 'HELLO WORLD\r\nthis is not HTTP\r\n\r\n', head: undefined, startedAt: 0, ended: false }]);
  });

  it('gives a head cut short by the end of the stream out as it is', () => {
    expect(frame('POST / HTTP/1.1\r\nHost: sq', 5)).toEqual([{ text: 'POST / HTTP/1.1\r\nHost: sq', head: undefined, startedAt: 0, ended: false }]);
  });
});
