import { readFileSync } from 'node:fs';
import { type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse, createServer as createHttpServer } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../config.js';

/** Where a listener's certificate and private key are: PEM files, read at start and again on reload. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A listener of the shim: plain HTTP, or HTTPS when given certificate files. */
export interface Listener {
  readonly server: Server;
  readonly scheme: 'http' | 'https';
  /** Listens; the base URL it can be reached at, e.g. https://127.0.0.1:9324. */
  listen(port: number, host: string): Promise<{ address: AddressInfo; url: string }>;
  /** Reads the certificate files again; new connections get them, connections already open keep theirs. Throws (and keeps the old ones) when they are not usable. */
  reloadCertificate(): void;
}

function readCertificate(tls: TlsFiles): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
}

/** Throws a ConfigError saying why, when the files cannot be read or are not a certificate and its key. */
export function checkCertificate(tls: TlsFiles): void {
  try {
    createSecureContext(readCertificate(tls));
  } catch (error) {
    throw new ConfigError(`cannot use the TLS certificate ${tls.certFile} with the key ${tls.keyFile}: ${(error as Error).message}`);
  }
}

/** A server for `handler`, over TLS when `tls` is given (its files must be readable now). */
export function createListener(options: ServerOptions, handler: RequestListener<typeof IncomingMessage, typeof ServerResponse>, tls?: TlsFiles): Listener {
  const server = tls ? createHttpsServer({ ...options, ...readCertificate(tls) }, handler) : createHttpServer(options, handler);
  const scheme = tls ? 'https' : 'http';
  return {
    server,
    scheme,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          resolve({ address, url: `${scheme}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` });
        });
      });
    },
    reloadCertificate() {
      if (tls) (server as HttpsServer).setSecureContext(readCertificate(tls));
    },
  };
}
