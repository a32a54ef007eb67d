/**
 * `npm run fault-proxy -- --target HOST:PORT [--listen HOST:PORT] [--control HOST:PORT] [--mode MODE]`:
 * the fault proxy as a process of its own, switched at run time through its control endpoint.
 * Logs JSON lines on stdout: where it listens, then every change of the mode in force.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { FaultModeError, MODE_NAMES } from './fault-modes.js';
import { startControlServer } from './fault-proxy-control.js';
import { FaultProxy, parseHostPort } from './fault-proxy.js';

const USAGE = `Usage: npm run fault-proxy -- --target HOST:PORT [options]

  --target HOST:PORT   where to forward connections (required)
  --listen HOST:PORT   where to accept them (default 127.0.0.1:0, a free port)
  --control HOST:PORT  the control endpoint, loopback only (default 127.0.0.1:0):
                       GET /mode, PUT /mode with a mode as JSON, GET /stats
  --mode MODE          the mode to start in: a name (${MODE_NAMES.join(', ')})
                       or a mode as JSON, e.g. '{"kind":"latency","downstreamMs":200}' (default pass)
  --help               print this text`;

function fail(message: string): never {
  console.error(`fault proxy: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function options() {
  try {
    return parseArgs({
      options: {
        target: { type: 'string' },
        listen: { type: 'string', default: '127.0.0.1:0' },
        control: { type: 'string', default: '127.0.0.1:0' },
        mode: { type: 'string', default: 'pass' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (error) {
    return fail((error as Error).message);
  }
}

const values = options();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!values.target) fail('--target is required');
function modeOption(text: string): unknown {
  if (!text.trimStart().startsWith('{')) return text;
  try {
    return JSON.parse(text);
  } catch {
    return fail(`--mode is neither a mode name nor valid JSON: ${text}`);
  }
}

const mode = modeOption(values.mode);
const logger = pino({ name: 'fault-proxy' });
let proxy: FaultProxy;
let control: Awaited<ReturnType<typeof startControlServer>>;
try {
  proxy = await FaultProxy.start({ target: values.target, listen: values.listen, mode: mode as string });
  control = await startControlServer(proxy, parseHostPort(values.control));
} catch (error) {
  if (error instanceof FaultModeError) fail(error.message);
  console.error(`fault proxy: cannot start: ${(error as Error).message}`);
  process.exit(1);
}
proxy.on('mode', (change) => logger.info(change, `mode ${change.mode.kind}`));
logger.info({ listen: proxy.address, target: `${proxy.target.host}:${proxy.target.port}`, control: control.url, mode: proxy.mode }, `fault proxy listening on ${proxy.address}`);

const stop = () => {
  void Promise.all([proxy.close(), control.close()]).then(() => {
    logger.info('fault proxy stopped');
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
