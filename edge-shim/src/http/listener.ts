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

/** A certificate and its private key, read and checked together: what every listener of the shim is given. */
export interface Certificate {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** A listener of the shim: plain HTTP, or HTTPS when given a certificate. */
export interface Listener {
  readonly server: Server;
  /** Listens; the base URL it can be reached at, e.g. https://127.0.0.1:9324. */
  listen(port: number, host: string): Promise<{ address: AddressInfo; url: string }>;
  /** New connections get this certificate; connections already open keep theirs. */
  useCertificate(certificate: Certificate): void;
}

/**
 * Reads the files and checks that they are a certificate and its key; throws a ConfigError saying
 * why otherwise. Read once for all listeners, at start and on reload, so that a reload is all or nothing.
 */
export function loadCertificate(tls: TlsFiles): Certificate {
  try {
    const certificate = { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
    createSecureContext(certificate);
    return certificate;
  } catch (error) {
    throw new ConfigError(`cannot use the TLS certificate ${tls.certFile} with the key ${tls.keyFile}: ${(error as Error).message}`);
  }
}

/** A server for `handler`, over TLS when given a certificate. */
export function createListener(options: ServerOptions, handler: RequestListener<typeof IncomingMessage, typeof ServerResponse>, certificate?: Certificate): Listener {
  const server = certificate ? createHttpsServer({ ...options, ...certificate }, handler) : createHttpServer(options, handler);
  const scheme = certificate ? 'https' : 'http';
  return {
    server,
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
    useCertificate(next) {
      if (certificate) (server as HttpsServer).setSecureContext(next);
    },
  };
}
