/**
 * A separate process running the payments agents through the local runner, so that a test can kill
 * it (SIGKILL) in the middle of a workflow. Its options arrive as JSON in HOLDFAST_WORKER_OPTIONS.
 */
import { pino } from 'pino';
import { type LocalRunnerOptions, startLocalRunner } from '../../../functions/src/event-source/runner.js';

const options = JSON.parse(process.env.HOLDFAST_WORKER_OPTIONS ?? '{}') as Omit<LocalRunnerOptions, 'logger'>;
await startLocalRunner({ ...options, logger: pino({ level: 'silent' }) });
process.stdout.write('ready\n');
