import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isLoopback } from '../config.js';

/** Host header as a client may give it: a name or an address, and a port. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

interface HostAndPort {
  /** Lower case, an IPv6 address without its brackets. */
  readonly name: string;
  readonly port: number;
}

function parseHost(text: string, defaultPort: number): HostAndPort | undefined {
  if (!HOST.test(text)) return undefined;
  const match = /^(\[.*\]|[^:]*)(?::(\d+))?$/.exec(text)!;
  return { name: match[1]!.replace(/^\[(.*)\]$/, '$1').toLowerCase(), port: match[2] === undefined ? defaultPort : Number(match[2]) };
}

/** The scheme a connection was made with. */
export const schemeOf = (socket: Socket): 'http' | 'https' => ((socket as TLSSocket).encrypted ? 'https' : 'http');

const defaultPortOf = (socket: Socket) => (schemeOf(socket) === 'https' ? 443 : 80);

/**
 * Whether a Host header names this listener the way only its own clients can: a loopback name or
 * address, or the address the connection came in on, with the listener's port; or the host of the
 * public URL. A web page whose name was rebound to this machine's address (DNS rebinding) sends its
 * own name, which is none of these.
 */
export function isOwnHost(host: string, socket: Socket, publicUrl?: URL): boolean {
  if (publicUrl) {
    const given = parseHost(host, publicUrl.protocol === 'https:' ? 443 : 80);
    const own = parseHost(publicUrl.host, publicUrl.protocol === 'https:' ? 443 : 80);
    if (given && own && given.name === own.name && given.port === own.port) return true;
  }
  const given = parseHost(host, defaultPortOf(socket));
  return given !== undefined && given.port === socket.localPort && (isLoopback(given.name) || given.name === socket.localAddress?.toLowerCase());
}

/**
 * Whether a browser says a web page made this request. Browsers send `Origin` with every POST and
 * every cross-origin request, and `Sec-Fetch-Site` with every request (but `none` for one the user
 * typed): a cross-site GET, an image's say, carries no Origin but says `cross-site` there.
 */
export function madeByWebPage(headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site'];
  return headers.origin !== undefined || (site !== undefined && site !== 'none');
}

/** The base URL of a connection's own address, e.g. http://127.0.0.1:9324: what it reached, whatever its Host says. */
export function addressUrl(socket: Socket): string {
  const host = socket.localFamily === 'IPv6' ? `[${socket.localAddress}]` : socket.localAddress;
  return `${schemeOf(socket)}://${host}:${socket.localPort}`;
}
