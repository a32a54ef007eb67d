import { Sha256 } from '@aws-crypto/sha256-js';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { XMLValidator } from 'fast-xml-parser';
import { Pool } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OPERATIONS, type Shape, type StructureShape } from '../../edge-shim/src/protocol/operations.js';
import { sqsError } from '../helpers/raw-http.js';
import { TEST_CREDENTIALS, type TestShim, startTestShim } from '../helpers/shim.js';

// A seeded generator throws a few thousand malformed requests at a running shim, in both wire
// protocols, all properly signed (so they reach the decoders and the actions) but for a few that
// break the authentication itself. No answer may be a 5xx or a dropped connection; every error must
// be a parseable SQS error in the protocol of the request; requests that can only be wrong (marked
// `invalid`) must get a 4xx. A failure names the seed and the request number to replay it
// (FUZZ_SEED and FUZZ_REQUESTS choose another run).

const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 2500);
const CONCURRENCY = 8;
const JSON_TYPE = 'application/x-amz-json-1.0';
const FORM_TYPE = 'application/x-www-form-urlencoded; charset=utf-8';

/** mulberry32: small, fast and good enough to make varied inputs reproducible from a seed. */
class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(length: number): Buffer {
    return Buffer.from(Array.from({ length }, () => this.int(256)));
  }
}

interface Fuzz {
  readonly description: string;
  readonly protocol: 'json' | 'query';
  /** Wrong by construction: anything but a 4xx is a failure. */
  readonly invalid: boolean;
  readonly method: string;
  readonly path: string;
  /** Sent as is after the `?`; signed as the shim will decode it. */
  readonly rawQuery: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  /** Undefined: signed with the test credentials; otherwise this Authorization header, or none. */
  readonly authorization?: string | null;
}

const UNICODE_JUNK = ['\u0000', '\uffff', '\ud800', '\u202e', '😀', '\u0301', 'ｑ', '\r\n', '<!--', ']]>', '&amp;', '"\'\\'];
const unicodeJunk = (r: Random) => Array.from({ length: 1 + r.int(8) }, () => r.pick(UNICODE_JUNK)).join('');
const HUGE_NUMBERS = [1e308, -1e308, 2 ** 63, -(2 ** 63), 9007199254740993, 1e21];
const INTEGER_TEXT_JUNK = ['abc', '1e999', '99999999999999999999', '-99999999999999999999', 'NaN', 'Infinity', '0x1F', '١٢', '--1'];

let t: TestShim;
let queues: { standard: string; fifo: string };
const signer = new SignatureV4({ credentials: TEST_CREDENTIALS, region: 'us-east-1', service: 'sqs', sha256: Sha256 });

beforeAll(async () => {
  t = await startTestShim();
  const standard = await t.sqs.send(new CreateQueueCommand({ QueueName: 'fuzz-standard' }));
  const fifo = await t.sqs.send(new CreateQueueCommand({ QueueName: 'fuzz.fifo', Attributes: { FifoQueue: 'true' } }));
  queues = { standard: standard.QueueUrl!, fifo: fifo.QueueUrl! };
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queues.standard, MessageBody: 'keep me' }));
});
afterAll(() => t.close());

/** A plausible value for a member, so that mutating one member leaves the rest of an input sensible. */
function plausible(shape: Shape, name: string, r: Random): unknown {
  switch (shape.kind) {
    case 'string':
      if (name === 'QueueUrl') return r.chance(0.8) ? queues.standard : queues.fifo;
      if (name === 'QueueName') return `fuzz-${r.int(1000)}`;
      if (name.endsWith('Arn')) return 'arn:aws:sqs:us-east-1:000000000000:fuzz-standard';
      if (name === 'DataType') return 'String';
      return r.pick(['x', 'hello', 'e1', '30']);
    case 'blob':
      return r.pick(['', 'AQID', 'aGVsbG8=']);
    case 'integer':
      // Never a real wait: a long poll would only slow the run down.
      return name === 'WaitTimeSeconds' ? 0 : r.int(10);
    case 'boolean':
      return r.chance(0.5);
    case 'list':
      return [plausible(shape.member, name, r)];
    case 'map':
      if (shape.value.kind === 'structure') return { attr: { DataType: 'String', StringValue: 'v' } };
      return { [name === 'Attributes' ? 'VisibilityTimeout' : 'k']: plausible(shape.value, name, r) };
    case 'structure':
      return Object.fromEntries(shape.members.filter(() => r.chance(0.7)).map((member) => [member.name, plausible(member.shape, member.name, r)]));
  }
}

/** A JSON value of another type than the shape wants (null aside: it may read as absent). */
function wrongType(shape: Shape, r: Random): unknown {
  switch (shape.kind) {
    case 'string':
      return r.pick([12345, true, [], {}, ['x'], { a: 'x' }, r.pick(HUGE_NUMBERS)]);
    case 'blob':
      return r.pick([12345, true, [], {}, 'not base64!', 'AQI', '====']);
    case 'integer':
      return r.pick(['1', 'abc', true, [], {}, [1], { n: 1 }, r.pick(HUGE_NUMBERS)]);
    case 'boolean':
      return r.pick(['true', 1, [], {}]);
    case 'list':
      return r.pick(['x', 1, { a: 1 }, true]);
    case 'map':
    case 'structure':
      return r.pick(['x', 1, [1, 2], true]);
  }
}

/** Paths to every member of an input, with their shapes. */
function paths(shape: Shape, value: unknown, at: Array<string | number> = []): Array<{ at: Array<string | number>; shape: Shape }> {
  const here = at.length > 0 ? [{ at, shape }] : [];
  if (shape.kind === 'structure' && value && typeof value === 'object') {
    return [...here, ...shape.members.flatMap((member) => (member.name in value ? paths(member.shape, (value as Record<string, unknown>)[member.name], [...at, member.name]) : []))];
  }
  if (shape.kind === 'list' && Array.isArray(value)) return [...here, ...value.flatMap((item, i) => paths(shape.member, item, [...at, i]))];
  if (shape.kind === 'map' && value && typeof value === 'object') {
    return [...here, ...Object.entries(value).flatMap(([key, item]) => paths(shape.value, item, [...at, key]))];
  }
  return here;
}

function setAt(target: Record<string, unknown>, at: Array<string | number>, value: unknown): void {
  let node = target as Record<string | number, unknown>;
  for (const step of at.slice(0, -1)) node = node[step] as Record<string | number, unknown>;
  node[at[at.length - 1]!] = value;
}

/** Query-protocol parameters for a JSON-shaped input, lists and maps flattened as SQS does. */
function flatten(shape: StructureShape, input: Record<string, unknown>, prefix = ''): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const add = (member: Shape, value: unknown, name: string) => {
    if (member.kind === 'structure') out.push(...flatten(member, value as Record<string, unknown>, `${name}.`));
    else if (member.kind === 'list') (value as unknown[]).forEach((item, i) => add(member.member, item, `${name}.${i + 1}`));
    else if (member.kind === 'map') {
      Object.entries(value as Record<string, unknown>).forEach(([key, item], i) => {
        out.push([`${name}.${i + 1}.${member.keyName}`, key]);
        add(member.value, item, `${name}.${i + 1}.${member.valueName}`);
      });
    } else out.push([name, String(value)]);
  };
  for (const member of shape.members) if (member.name in input) add(member.shape, input[member.name], `${prefix}${member.xmlName}`);
  return out;
}

// URLSearchParams, unlike encodeURIComponent, takes lone surrogates (as U+FFFD).
const form = (pairs: Array<[string, string]>) => new URLSearchParams(pairs).toString();

function jsonRequest(description: string, invalid: boolean, target: string, body: Buffer | string, extra: Partial<Fuzz> = {}): Fuzz {
  return {
    description,
    protocol: 'json',
    invalid,
    method: 'POST',
    path: '/',
    rawQuery: '',
    headers: { 'content-type': JSON_TYPE, 'x-amz-target': target },
    body: Buffer.from(body),
    ...extra,
  };
}

function queryRequest(description: string, invalid: boolean, pairsOrRaw: Array<[string, string]> | string, r: Random, extra: Partial<Fuzz> = {}): Fuzz {
  const encoded = typeof pairsOrRaw === 'string' ? pairsOrRaw : form([['Version', '2012-11-05'], ...pairsOrRaw]);
  const get = r.chance(0.3);
  // In a URL, bytes outside printable ASCII (and '#') can only travel percent-encoded.
  const inUrl = encoded.replace(/[^\x21-\x7e]|#/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
  return {
    description,
    protocol: 'query',
    invalid,
    method: get ? 'GET' : 'POST',
    path: '/',
    rawQuery: get ? inUrl : '',
    headers: get ? {} : { 'content-type': FORM_TYPE },
    body: Buffer.from(get ? '' : encoded),
    ...extra,
  };
}

const ACTIONS = Object.keys(OPERATIONS);

/** One malformed (or merely odd) request. */
function generate(r: Random): Fuzz {
  const action = r.pick(ACTIONS);
  const shape = OPERATIONS[action]!.input;
  const input = plausible(shape, action, r) as Record<string, unknown>;
  const members = paths(shape, input);
  const kind = r.int(100);

  // The AWS JSON protocol.
  if (kind < 5) return jsonRequest(`json random bytes for ${action}`, true, `AmazonSQS.${action}`, r.bytes(r.int(300)));
  if (kind < 12) {
    const text = JSON.stringify(input);
    return jsonRequest(`json ${action} truncated`, true, `AmazonSQS.${action}`, text.slice(0, 1 + r.int(text.length - 1)));
  }
  if (kind < 15) return jsonRequest(`json ${action} body not an object`, true, `AmazonSQS.${action}`, r.pick(['[]', '1', '"x"', 'null', 'true', '[{}]']));
  if (kind < 19) {
    const target = r.pick(['AmazonSQS.Nope', 'AmazonSQS.', 'Other.SendMessage', 'AmazonSQS.__proto__', 'AmazonSQS.constructor', 'AmazonSQS.toString', `amazonsqs.${action}`, `AmazonSQS.${action}x`, unicodeJunk(r).replace(/[\r\n\u0000-\u001f\u007f-\uffff]/g, '?')]);
    return jsonRequest(`json wrong target ${JSON.stringify(target)}`, true, target, '{}');
  }
  if (kind < 42 && members.length > 0) {
    const { at, shape: member } = r.pick(members);
    const value = wrongType(member, r);
    setAt(input, at, value);
    // The whole request is refused (SerializationException), a batch entry's member included.
    return jsonRequest(`json ${action} ${at.join('.')} = ${JSON.stringify(value)}`, true, `AmazonSQS.${action}`, JSON.stringify(input));
  }
  if (kind < 50 && members.length > 0) {
    // Values of the right type but out of any range: huge numbers, unicode junk, overlong text.
    const { at, shape: member } = r.pick(members);
    const value = member.kind === 'integer' ? r.pick([...HUGE_NUMBERS, -1, 1.5]) : r.chance(0.2) ? 'x'.repeat(300_000) : unicodeJunk(r);
    setAt(input, at, value);
    return jsonRequest(`json ${action} ${at.join('.')} = ${String(value).slice(0, 40)}`, false, `AmazonSQS.${action}`, JSON.stringify(input));
  }
  if (kind < 52) {
    const depth = 2000 + r.int(3000);
    const member = shape.members[0]!.name;
    return jsonRequest(`json ${action} ${member} nested ${depth} deep`, true, `AmazonSQS.${action}`, `{"${member}":${'['.repeat(depth)}${']'.repeat(depth)}}`);
  }
  if (kind < 54) {
    const type = r.pick(['text/plain', 'application/json', 'application/x-amz-json-1.1', '']);
    return jsonRequest(`json ${action} with content type ${type}`, true, `AmazonSQS.${action}`, JSON.stringify(input), {
      headers: { 'content-type': type, 'x-amz-target': `AmazonSQS.${action}` },
    });
  }

  // The Query protocol.
  const pairs = flatten(shape, input);
  if (kind < 59) return queryRequest(`query random bytes`, true, r.bytes(r.int(300)).toString('latin1'), r);
  if (kind < 63) return queryRequest(`query unknown action`, true, [['Action', r.pick(['Nope', '', '__proto__', 'constructor', unicodeJunk(r)])]], r);
  if (kind < 65) return queryRequest(`query no action`, true, pairs, r);
  if (kind < 78 && pairs.some(([name]) => OPERATIONS[action]!.input.members.some((m) => m.xmlName === name && m.shape.kind === 'integer'))) {
    const integers = pairs.filter(([name]) => OPERATIONS[action]!.input.members.some((m) => m.xmlName === name && m.shape.kind === 'integer'));
    const [name] = r.pick(integers);
    const value = r.pick(INTEGER_TEXT_JUNK);
    return queryRequest(`query ${action} ${name}=${value}`, true, [['Action', action], ...pairs.map(([k, v]): [string, string] => [k, k === name ? value : v])], r);
  }
  if (kind < 88) {
    // Broken flattening: zero, negative, huge and non-numeric list indexes; junk values; odd encodings.
    const broken = pairs.map(([k, v]): [string, string] => [
      r.chance(0.4) ? k.replace(/\.\d+/, `.${r.pick(['0', '-1', '99999999999999999999', 'x', '', '1.5'])}`) : k,
      r.chance(0.4) ? unicodeJunk(r) : v,
    ]);
    return queryRequest(`query ${action} broken flattening`, false, [['Action', action], ...broken], r);
  }
  if (kind < 96) {
    const junk = r.pick(['%', '%zz', '%E2%82', '%C0%AF', '%00', '&&&', '==', 'a=b=c', '+%2B+', `%${r.int(256).toString(16)}`]);
    return queryRequest(`query invalid form encoding ${junk}`, false, `Action=${action}&Version=2012-11-05&QueueUrl=${encodeURIComponent(queues.standard)}&Junk${junk}=${junk}`, r);
  }
  if (kind < 98) {
    const authorization = r.pick([null, 'AWS4-HMAC-SHA256', 'Bearer x', 'AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=zz', unicodeJunk(r).replace(/[^\x20-\x7e]/g, '?')]);
    return queryRequest(`query broken authorization ${JSON.stringify(authorization)}`, true, [['Action', 'ListQueues']], r, { authorization });
  }
  const method = r.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS']);
  return queryRequest(`query method ${method}`, true, [['Action', action], ...pairs], r, { method });
}

function decodedQuery(rawQuery: string): Record<string, string | string[]> {
  const bag: Record<string, string | string[]> = {};
  const params = new URLSearchParams(rawQuery);
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    bag[key] = values.length === 1 ? values[0]! : values;
  }
  return bag;
}

async function send(pool: Pool, origin: URL, fuzz: Fuzz): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  let headers: Record<string, string> = { host: origin.host, ...fuzz.headers };
  if (fuzz.authorization === undefined) {
    const request = new HttpRequest({ method: fuzz.method, hostname: origin.hostname, port: Number(origin.port), path: fuzz.path, query: decodedQuery(fuzz.rawQuery), headers, body: fuzz.body });
    headers = (await signer.sign(request)).headers;
  } else if (fuzz.authorization !== null) {
    headers.authorization = fuzz.authorization;
  }
  const { host: _host, ...sent } = headers;
  const response = await pool.request({
    method: fuzz.method as 'GET',
    path: `${fuzz.path}${fuzz.rawQuery ? `?${fuzz.rawQuery}` : ''}`,
    headers: sent,
    body: fuzz.method === 'GET' || fuzz.method === 'HEAD' ? undefined : fuzz.body,
  });
  const body = await response.body.text();
  return { status: response.statusCode, headers: Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k, String(v)])), body };
}

/** What is wrong with an answer, if anything. */
function problem(fuzz: Fuzz, answer: { status: number; headers: Record<string, string>; body: string }): string | undefined {
  if (answer.status >= 500) return `status ${answer.status}: ${answer.body.slice(0, 200)}`;
  if (answer.status >= 400) {
    try {
      const error = sqsError(answer);
      if (error.protocol !== fuzz.protocol) return `error in the ${error.protocol} protocol: ${answer.body.slice(0, 200)}`;
      if (!error.code || !error.message) return `error without code or message: ${answer.body.slice(0, 200)}`;
    } catch (caught) {
      return (caught as Error).message.slice(0, 300);
    }
    return undefined;
  }
  if (fuzz.invalid) return `accepted (${answer.status}): ${answer.body.slice(0, 200)}`;
  if (answer.status !== 200) return `status ${answer.status}`;
  if (fuzz.protocol === 'json' && typeof JSON.parse(answer.body) !== 'object') return 'a 200 without a JSON object';
  if (fuzz.protocol === 'query' && XMLValidator.validate(answer.body) !== true) return 'a 200 without valid XML';
  return undefined;
}

it(`answers ${REQUESTS} malformed requests with SQS errors and stays up (seed ${SEED})`, async () => {
  const r = new Random(SEED);
  const requests = Array.from({ length: REQUESTS }, () => generate(r));
  const origin = new URL(t.shim.url);
  // A hang is a failure like any other, reported with its request.
  const pool = new Pool(origin.origin, { connections: CONCURRENCY, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length) {
          const index = next++;
          const fuzz = requests[index]!;
          try {
            const answer = await send(pool, origin, fuzz);
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
            const found = problem(fuzz, answer);
            if (found) failures.push(`#${index} ${fuzz.description}: ${found}`);
          } catch (caught) {
            failures.push(`#${index} ${fuzz.description}: ${(caught as Error).message}`);
          }
        }
      }),
    );
  } finally {
    await pool.close();
  }
  expect(failures.slice(0, 20), `${failures.length} failures (seed ${SEED})`).toEqual([]);
  // The run reached past the decoders: most requests were refused, some went through.
  expect([...statuses.keys()].filter((status) => status >= 400 && status < 500).length).toBeGreaterThan(2);
  expect(statuses.get(200) ?? 0).toBeGreaterThan(0);

  // Still serving (the fuzz may well have deleted or purged its own queues with valid requests).
  const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: 'after-fuzz' }));
  await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'still here' }));
  const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl }));
  expect(Messages?.map((message) => message.Body)).toEqual(['still here']);
  const health = await fetch(`${t.shim.url}/health`);
  expect(health.status).toBe(200);
}, 60_000);
