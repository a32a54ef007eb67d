import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { join } from 'node:path';

/** A certificate and its key, as PEM files. */
export interface CertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * A self-signed certificate made by openssl: its own CA (a client trusts it by its PEM), for the
 * names given as subjectAltName entries (`IP:127.0.0.1`, `DNS:localhost`), under `name` in `dir`.
 */
export function makeCertificate(dir: string, name: string, altNames: readonly string[]): CertificateFiles {
  const files = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-addext', `subjectAltName=${altNames.join(',')}`,
    '-keyout', files.keyFile, '-out', files.certFile,
  ], { stdio: 'pipe' });
  return files;
}

/** A GET over TLS trusting `caFile`: what was answered, and the certificate the server showed. */
export function getOverTls(url: string, caFile: string): Promise<{ status: number; body: string; certificate: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    // A connection of its own (no pool): the certificate is the one the server has now.
    get(url, { ca: readFileSync(caFile), agent: false }, (response) => {
      const certificate = (response.socket as TLSSocket).getPeerCertificate();
      let body = '';
      response
        .setEncoding('utf8')
        .on('data', (chunk: string) => (body += chunk))
        .on('end', () => resolve({ status: response.statusCode!, body, certificate }));
    }).on('error', reject);
  });
}

/**
 * A network namespace of the test's own, joined to this one by a veth pair: `address` is this side's
 * (an address the shim's rules count as beyond loopback, reachable from the namespace only over
 * the pair, as from another machine on the site's network), and `run` runs a command in it.
 */
export interface NetworkNamespace {
  readonly address: string;
  /** Runs a command there (without blocking: the server it talks to may be in this process). */
  run(command: string, args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }>;
  remove(): void;
}

/** Makes one, or says why it cannot (not root, no `ip`, no namespaces in this container). */
export function makeNetworkNamespace(): NetworkNamespace | string {
  const tag = String(process.pid % 100_000);
  const name = `holdfast-${tag}`;
  // Interface names are at most 15 characters; the /30 is unlikely to be in use on the machine.
  const [outside, inside] = [`hfo${tag}`, `hfi${tag}`];
  const subnet = `10.${200 + (process.pid % 50)}.${Math.floor(process.pid / 50) % 250}`;
  const address = `${subnet}.1`;
  const ip = (...args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });
  const steps = [
    ['netns', 'add', name],
    ['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside],
    ['link', 'set', inside, 'netns', name],
    ['addr', 'add', `${address}/30`, 'dev', outside],
    ['link', 'set', outside, 'up'],
    ['-n', name, 'addr', 'add', `${subnet}.2/30`, 'dev', inside],
    ['-n', name, 'link', 'set', inside, 'up'],
    ['-n', name, 'link', 'set', 'lo', 'up'],
  ];
  const remove = () => {
    ip('link', 'del', outside);
    ip('netns', 'del', name);
  };
  for (const step of steps) {
    const result = ip(...step);
    if (result.status !== 0) {
      remove();
      return `cannot make a network namespace (ip ${step.join(' ')}): ${result.error?.message ?? result.stderr.trim()}`;
    }
  }
  return {
    address,
    run(command, args) {
      return new Promise((resolve) => {
        execFile('ip', ['netns', 'exec', name, command, ...args], { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
          resolve({ status: error ? ((error as { code?: unknown }).code as number | null) : 0, stdout, stderr });
        });
      });
    },
    remove,
  };
}
