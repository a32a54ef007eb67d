import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { request } from 'undici';
import { TEST_CREDENTIALS } from './shim.js';

export interface RawRequest {
  readonly method?: string;
  readonly path?: string;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  /** Bytes as given, or text sent as UTF-8. */
  readonly body?: string | Buffer;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const signer = new SignatureV4({ credentials: TEST_CREDENTIALS, region: 'us-east-1', service: 'sqs', sha256: Sha256 });

/** RFC 3986 encoding, as SigV4 canonicalizes query strings. */
const encode = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Sends a hand-built HTTP request to the shim, signed with SigV4 and the test credentials, so that
 * it is accepted whether or not the shim checks signatures.
 */
export async function sendRaw(endpoint: string, raw: RawRequest): Promise<RawResponse> {
  const url = new URL(endpoint);
  const path = raw.path ?? '/';
  const unsigned = new HttpRequest({
    method: raw.method ?? 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path,
    query: raw.query ?? {},
    headers: { host: url.host, ...raw.headers },
    body: raw.body,
  });
  const signed = await signer.sign(unsigned);
  const queryString = Object.entries(raw.query ?? {})
    .map(([name, value]) => `${encode(name)}=${encode(value)}`)
    .join('&');
  const response = await request(`${url.origin}${path}${queryString ? `?${queryString}` : ''}`, {
    method: signed.method as 'GET' | 'POST',
    headers: signed.headers,
    body: raw.body,
  });
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) headers[name] = String(value);
  return { status: response.statusCode, headers, body: await response.body.text() };
}

/** A Query-protocol POST: parameters form-encoded in the body. */
export function sendQuery(endpoint: string, parameters: Record<string, string>, path = '/'): Promise<RawResponse> {
  return sendRaw(endpoint, {
    path,
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: new URLSearchParams({ Version: '2012-11-05', ...parameters }).toString(),
  });
}
