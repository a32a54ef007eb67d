#!/usr/bin/env node
// The project runs on Node 20 on purpose (Lambda runs 22); the SDK's notice about Node 22 would
// open the log of the shim and of every fallback agent it starts.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// What the shim and its fallback agents create (the databases, their WAL, the disk reserve) holds
// messages and payments: readable by the shim's user alone, whatever umask it was started with.
process.umask(0o077);

import { backUp } from './backup.js';
import { ConfigError, USAGE, loadConfig, secretsOnCommandLine } from './config.js';
import { createLogger } from './logger.js';
import { startShim } from './shim.js';
import { DatabaseInUse } from './sqs/database-lock.js';
import { NewerDatabase } from './sqs/database.js';
import { CorruptDatabase } from './sqs/integrity.js';
import { VERSION } from './version.js';

/**
 * How the process ends, for a supervisor to tell apart what a restart can mend from what needs a
 * person: 0 stopped by SIGTERM or SIGINT (or --help); 1 could not start (the port in use, and
 * anything else); 2 the configuration is wrong; 3 another shim serves the database (restarting
 * mends it only once that one stops); 4 the database is corrupt (a restart never mends it); 5 a
 * database was written by a newer holdfast (only that version, or a backup, mends it).
 */
const EXIT = { cannotStart: 1, badConfiguration: 2, databaseInUse: 3, databaseCorrupt: 4, databaseNewer: 5 } as const;

function fail(message: string, exitCode: number): never {
  console.error(`holdfast edge shim: ${message}`);
  process.exit(exitCode);
}

function configuration(argv: string[]) {
  try {
    return loadConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) fail(`${error.message}\n\n${USAGE}`, EXIT.badConfiguration);
    throw error;
  }
}

/** `holdfast backup FILE [options]`: the options name the databases, as they do for the shim. */
async function backup(argv: string[]): Promise<void> {
  const [target, ...options] = argv;
  if (target === undefined || target.startsWith('-')) fail(`backup needs the FILE to write\n\n${USAGE}`, EXIT.badConfiguration);
  const config = configuration(options);
  if (typeof config === 'string') return serve(config);
  try {
    for (const copy of await backUp(config, target)) console.log(`backed up ${copy.from} to ${copy.to} (${copy.bytes} bytes)`);
  } catch (error) {
    fail(`backup failed: ${(error as Error).message}`, error instanceof ConfigError ? EXIT.badConfiguration : EXIT.cannotStart);
  }
}

/** The shim itself (or its help, or its version). */
async function serve(config: ReturnType<typeof configuration>): Promise<void> {
  if (config === 'help') return void console.log(USAGE);
  if (config === 'version') return void console.log(`holdfast ${VERSION} (Node ${process.versions.node})`);
  const logger = createLogger(config.logLevel);
  for (const flag of secretsOnCommandLine(process.argv.slice(2))) {
    logger.warn(`${flag} given on the command line: every user of this machine can read it (ps); use --credentials-file or the HOLDFAST_CREDENTIALS variable`);
  }
  const shim = await startShim({ ...config, logger }).catch((error: NodeJS.ErrnoException & { address?: string; port?: number }) => {
    // What the configuration names but cannot be used (a credentials file, a certificate, the stack's outputs).
    if (error instanceof ConfigError) fail(error.message, EXIT.badConfiguration);
    if (error instanceof DatabaseInUse) fail(`cannot start: ${error.message}`, EXIT.databaseInUse);
    if (error instanceof CorruptDatabase) fail(`cannot start: ${error.message}`, EXIT.databaseCorrupt);
    if (error instanceof NewerDatabase) fail(`cannot start: ${error.message}`, EXIT.databaseNewer);
    fail(`cannot start: ${error.code === 'EADDRINUSE' ? `port ${error.port} on ${error.address} is in use` : error.message}`, EXIT.cannotStart);
  });
  // SIGTERM / SIGINT: stop accepting, let requests in flight finish, close the database, exit 0.
  // A signal during the drain changes nothing: Ctrl-C under `npm start` reaches the shim twice (from
  // the terminal and relayed by npm), and the drain is bounded by the shutdown grace anyway.
  const stop = () => void shim.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // SIGHUP (systemctl reload): a renewed certificate, without dropping the listeners.
  process.on('SIGHUP', () => shim.reloadCertificates());
}

const argv = process.argv.slice(2);
await (argv[0] === 'backup' ? backup(argv.slice(1)) : serve(configuration(argv)));
