import { type KeyObject, createHmac, createSecretKey, hash, timingSafeEqual } from 'node:crypto';
import type { HttpRequest } from '@smithy/protocol-http';
import { getCanonicalQuery } from '@smithy/signature-v4';
import type { WireRequest } from '../protocol/wire.js';
import { SqsError } from '../sqs/errors.js';

export interface Credential {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface VerifyOptions {
  readonly credentials: readonly Credential[];
  readonly region: string;
  /** Wall-clock milliseconds since the epoch, to judge whether the signature is fresh. */
  readonly now: number;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const SERVICE = 'sqs';
const TERMINATOR = 'aws4_request';
const ALLOWED_SKEW_MS = 15 * 60 * 1000;
const DEFAULT_PRESIGNED_EXPIRES_S = 900;
const MAX_PRESIGNED_EXPIRES_S = 7 * 24 * 60 * 60;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const SIGNATURE = /^[0-9a-f]{64}$/;
const PRESIGN_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Signature'];

/** Who signed, for which day, region and service, and which headers the signature covers. */
interface Scope {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  /** The same names as the request lists them, `;`-separated. */
  readonly signedHeaderList: string;
}

/** What a request claims about its signature, from the Authorization header or the query string. */
interface Claim {
  readonly presigned: boolean;
  readonly scope: Scope;
  readonly amzDate: string;
  readonly signature: string;
  readonly expiresSeconds: number;
}

const incomplete = (message: string) => new SqsError('IncompleteSignature', message);
const mismatch = (message: string) => new SqsError('SignatureDoesNotMatch', message);

function header(request: WireRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function parseScope(credential: string, signedHeaders: string): Scope {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts.some((part) => part === '') || parts[4] !== TERMINATOR) {
    throw incomplete(`Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/${TERMINATOR}, got '${credential}'.`);
  }
  const [accessKeyId, date, region, service] = parts as [string, string, string, string];
  return { accessKeyId, date, region, service, signedHeaders: parseSignedHeaders(signedHeaders), signedHeaderList: signedHeaders };
}

function parseSignedHeaders(list: string): string[] {
  const names = list.split(';');
  if (names.some((name) => !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name))) {
    throw incomplete(`SignedHeaders must be a semicolon-separated list of lower-case header names, got '${list}'.`);
  }
  return names;
}

// Clients sign request after request with the same credential scope and header list: only the
// signature at the end changes. The text before it, once parsed, is kept for the next request
// that starts with it, as the last X-Amz-Date is.
let lastAuthorization: { prefix: string; scope: Scope } | undefined;

function parseAuthorizationHeader(authorization: string, request: WireRequest): Claim {
  let scope: Scope;
  let signature: string;
  const last = lastAuthorization;
  // Compared as a slice: String.prototype.startsWith costs ten times more on text this long.
  if (last !== undefined && authorization.slice(0, last.prefix.length) === last.prefix && SIGNATURE.test(authorization.slice(last.prefix.length))) {
    scope = last.scope;
    signature = authorization.slice(last.prefix.length);
  } else {
    ({ scope, signature } = parseAuthorization(authorization));
    const prefix = authorization.slice(0, authorization.length - signature.length);
    if (authorization.endsWith(signature) && prefix.endsWith('Signature=')) lastAuthorization = { prefix, scope };
  }
  const amzDate = header(request, 'x-amz-date');
  if (amzDate === undefined) throw incomplete("Authorization header requires existence of a 'X-Amz-Date' header.");
  return { presigned: false, scope, amzDate, signature, expiresSeconds: 0 };
}

function parseAuthorization(authorization: string): { scope: Scope; signature: string } {
  const space = authorization.indexOf(' ');
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm !== ALGORITHM) throw incomplete(`Unsupported AWS 'algorithm': '${algorithm}'; only ${ALGORITHM} is accepted.`);
  const fields = new Map<string, string>();
  for (const field of authorization.slice(space + 1).split(',')) {
    const equals = field.indexOf('=');
    if (equals > 0) fields.set(field.slice(0, equals).trim(), field.slice(equals + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((name) => !fields.get(name));
  if (missing.length > 0) throw incomplete(missing.map((name) => `Authorization header requires '${name}' parameter.`).join(' '));
  return {
    scope: parseScope(fields.get('Credential')!, fields.get('SignedHeaders')!),
    signature: fields.get('Signature')!,
  };
}

function parseQueryAuthorization(query: URLSearchParams): Claim {
  const missing = PRESIGN_PARAMS.filter((name) => !query.get(name));
  if (missing.length > 0) throw incomplete(`AWS query-string authentication requires the parameters ${missing.join(', ')}.`);
  const algorithm = query.get('X-Amz-Algorithm')!;
  if (algorithm !== ALGORITHM) throw incomplete(`Unsupported AWS 'algorithm': '${algorithm}'; only ${ALGORITHM} is accepted.`);
  const expires = query.get('X-Amz-Expires');
  const expiresSeconds = expires === null ? DEFAULT_PRESIGNED_EXPIRES_S : /^\d{1,6}$/.test(expires) ? Number(expires) : NaN;
  if (!(expiresSeconds <= MAX_PRESIGNED_EXPIRES_S)) {
    throw incomplete(`X-Amz-Expires must be a whole number of seconds from 0 to ${MAX_PRESIGNED_EXPIRES_S}.`);
  }
  return {
    presigned: true,
    scope: parseScope(query.get('X-Amz-Credential')!, query.get('X-Amz-SignedHeaders')!),
    amzDate: query.get('X-Amz-Date')!,
    signature: query.get('X-Amz-Signature')!,
    expiresSeconds,
  };
}

const basicFormat = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');

// Clients sign many requests within the same second: parse each X-Amz-Date text once.
let lastAmzDate: { text: string; date: Date } | undefined;

function parseAmzDate(amzDate: string): Date {
  if (lastAmzDate?.text === amzDate) return lastAmzDate.date;
  const match = AMZ_DATE.exec(amzDate);
  const date = match ? new Date(Date.UTC(+match[1]!, +match[2]! - 1, +match[3]!, +match[4]!, +match[5]!, +match[6]!)) : undefined;
  // Date.UTC rolls over out-of-range fields; a date that does not print back as given is invalid.
  if (!date || basicFormat(date.getTime()) !== amzDate) {
    throw incomplete(`Date must be in ISO-8601 'basic format' (YYYYMMDD'T'HHMMSS'Z'), got '${amzDate}'.`);
  }
  lastAmzDate = { text: amzDate, date };
  return date;
}

function checkFreshness(claim: Claim, signedAt: Date, now: number): void {
  const at = signedAt.getTime();
  if (at > now + ALLOWED_SKEW_MS) {
    throw mismatch(`Signature not yet current: ${claim.amzDate} is still later than ${basicFormat(now + ALLOWED_SKEW_MS)} (${basicFormat(now)} + 15 min.)`);
  }
  if (claim.presigned) {
    if (now > at + claim.expiresSeconds * 1000) throw new SqsError('RequestExpired', `Request has expired: it was valid until ${basicFormat(at + claim.expiresSeconds * 1000)}.`);
  } else if (at < now - ALLOWED_SKEW_MS) {
    throw mismatch(`Signature expired: ${claim.amzDate} is now earlier than ${basicFormat(now - ALLOWED_SKEW_MS)} (${basicFormat(now)} - 15 min.)`);
  }
}

/** SigV4 requires host, and every x-amz-* header sent, to be signed; so is the content type, which picks the wire format. */
function checkSignedHeaderSet(claim: Claim, request: WireRequest): void {
  const unsigned: string[] = [];
  if (!claim.scope.signedHeaders.includes('host')) unsigned.push('host');
  for (const name in request.headers) {
    if ((name === 'content-type' || name.startsWith('x-amz-')) && !claim.scope.signedHeaders.includes(name)) unsigned.push(name);
  }
  if (unsigned.length > 0) throw incomplete(`The headers ${unsigned.join(', ')} must be signed (listed in SignedHeaders).`);
}

function queryBag(query: URLSearchParams): Record<string, string | string[]> {
  const bag: Record<string, string | string[]> = {};
  for (const key of new Set(query.keys())) {
    const values = query.getAll(key);
    bag[key] = values.length === 1 ? values[0]! : values;
  }
  return bag;
}

const escapeUri = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The path as SigV4 canonicalizes it for services other than S3: dot segments resolved, then URI-encoded once more. */
function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(escapeUri(segment));
  }
  return `/${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
}

// Signing keys change only with the date; a few per credential at most, since the date must be fresh.
const signingKeys = new Map<string, KeyObject>();
const MAX_SIGNING_KEYS = 256;

function signingKey(secret: string, date: string, region: string): KeyObject {
  const cacheKey = `${date}/${region}/${secret}`;
  let key = signingKeys.get(cacheKey);
  if (!key) {
    const bytes = [date, region, SERVICE, TERMINATOR].reduce<Buffer>((k, part) => createHmac('sha256', k).update(part).digest(), Buffer.from(`AWS4${secret}`));
    key = createSecretKey(bytes);
    if (signingKeys.size >= MAX_SIGNING_KEYS) signingKeys.clear();
    signingKeys.set(cacheKey, key);
  }
  return key;
}

// A header value as SigV4 canonicalizes it: line breaks become spaces, runs of spaces and tabs one
// space, none at either end. Most values are canonical already, and are taken as they are.
const NOT_CANONICAL = /[\t\r\n]| {2}|^ | $/;
const canonicalValue = (value: string) =>
  NOT_CANONICAL.test(value) ? value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '') : value;

/**
 * The signature the holder of `credential` would have computed for this request, as bytes. Canonical
 * query strings come from @smithy/signature-v4; the rest is node:crypto with cached signing keys,
 * because SignatureV4.sign() itself costs several times more, for work done once per request here.
 */
function expectedSignature(request: WireRequest, query: URLSearchParams | undefined, claim: Claim, credential: Credential, region: string): Buffer {
  let canonicalHeaders = '';
  for (const name of claim.scope.signedHeaders) {
    const value = header(request, name);
    if (value === undefined) throw mismatch(`The signed header ${name} is missing from the request.`);
    canonicalHeaders += `${name}:${canonicalValue(value)}\n`;
  }
  const bodyHash = hash('sha256', request.body, 'hex');
  const declaredHash = header(request, 'x-amz-content-sha256');
  if (declaredHash !== undefined && declaredHash !== bodyHash) {
    throw mismatch("The provided 'x-amz-content-sha256' header does not match the body of the request.");
  }
  const canonicalQuery = query ? getCanonicalQuery({ query: queryBag(query) } as HttpRequest) : '';
  const canonicalRequest = `${request.method}\n${canonicalPath(request.path)}\n${canonicalQuery}\n${canonicalHeaders}\n${claim.scope.signedHeaderList}\n${bodyHash}`;
  const scope = `${claim.scope.date}/${region}/${SERVICE}/${TERMINATOR}`;
  const stringToSign = `${ALGORITHM}\n${claim.amzDate}\n${scope}\n${hash('sha256', canonicalRequest, 'hex')}`;
  return createHmac('sha256', signingKey(credential.secretAccessKey, claim.scope.date, region)).update(stringToSign).digest();
}

/**
 * Verifies a request's SigV4 signature, in an Authorization header or in the query string
 * (presigned URL); throws the SQS error for a bad, missing or stale one.
 */
export function verifySignature(request: WireRequest, options: VerifyOptions): string {
  const authorization = header(request, 'authorization');
  // Requests in the AWS JSON protocol have no query string, and need no parsing of one.
  const query = request.queryString === '' ? undefined : new URLSearchParams(request.queryString);
  const presigned = authorization === undefined && query !== undefined && PRESIGN_PARAMS.some((name) => query.has(name));
  if (authorization === undefined && !presigned) {
    throw new SqsError('MissingAuthenticationToken', 'The request must contain either a valid (registered) AWS access key ID or X.509 certificate.');
  }
  const claim = presigned ? parseQueryAuthorization(query!) : parseAuthorizationHeader(authorization!, request);
  const credential = options.credentials.find((candidate) => candidate.accessKeyId === claim.scope.accessKeyId);
  if (!credential) throw new SqsError('InvalidClientTokenId', 'The security token included in the request is invalid.');
  if (claim.scope.service !== SERVICE) throw mismatch(`Credential should be scoped to correct service: '${SERVICE}'.`);
  if (claim.scope.region !== options.region) throw mismatch(`Credential should be scoped to a valid region, not '${claim.scope.region}'.`);
  const signedAt = parseAmzDate(claim.amzDate);
  if (claim.scope.date !== claim.amzDate.slice(0, 8)) {
    throw mismatch(`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${claim.scope.date}' != '${claim.amzDate.slice(0, 8)}'.`);
  }
  checkSignedHeaderSet(claim, request);
  checkFreshness(claim, signedAt, options.now);
  if (!SIGNATURE.test(claim.signature)) throw mismatch('The request signature we calculated does not match the signature you provided.');
  const expected = expectedSignature(request, query, claim, credential, options.region);
  if (!timingSafeEqual(expected, Buffer.from(claim.signature, 'hex'))) {
    throw mismatch('The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  }
  return credential.accessKeyId;
}
