#!/usr/bin/env node
// The project runs on Node 20 on purpose (Lambda runs 22); the SDK's notice about Node 22 would
// open the log of the shim and of every fallback agent it starts.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// What the shim and its fallback agents create (the databases, their WAL, the disk reserve) holds
// messages and payments: readable by the shim's user alone, whatever umask it was started with.
process.umask(0o077);

import { ConfigError, USAGE, loadConfig, secretsOnCommandLine } from './config.js';
import { createLogger } from './logger.js';
import { startShim } from './shim.js';

function fail(message: string, exitCode: number): never {
  console.error(`holdfast edge shim: ${message}`);
  process.exit(exitCode);
}

function configuration() {
  try {
    return loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) fail(`${error.message}\n\n${USAGE}`, 2);
    throw error;
  }
}

const config = configuration();
if (config === 'help') {
  console.log(USAGE);
} else {
  const logger = createLogger(config.logLevel);
  for (const flag of secretsOnCommandLine(process.argv.slice(2))) {
    logger.warn(`${flag} given on the command line: every user of this machine can read it (ps); use --credentials-file or the HOLDFAST_CREDENTIALS variable`);
  }
  const shim = await startShim({ ...config, logger }).catch((error: NodeJS.ErrnoException & { address?: string; port?: number }) =>
    fail(`cannot start: ${error.code === 'EADDRINUSE' ? `port ${error.port} on ${error.address} is in use` : error.message}`, 1),
  );
  // SIGTERM / SIGINT: stop accepting, let requests in flight finish, close the database, exit 0.
  // A signal during the drain changes nothing: Ctrl-C under `npm start` reaches the shim twice (from
  // the terminal and relayed by npm), and the drain is bounded by the shutdown grace anyway.
  const stop = () => void shim.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // SIGHUP (systemctl reload): a renewed certificate, without dropping the listeners.
  process.on('SIGHUP', () => shim.reloadCertificates());
}
