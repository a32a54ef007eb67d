/**
 * A fallback agent: one stage of a workflow run by the local runner (Lambda's SQS event-source
 * semantics) against the shim's local queues, in a process of its own so that its crash cannot take
 * the shim down. Started by the supervisor (supervisor/agent-handle.ts) with an IPC channel: it
 * waits for its configuration, heartbeats from then on, and reports what its runner does.
 */
import type { LocalRunner } from '../../../functions/src/edge/index.js';
import type { AgentConfig, FromAgent, ToAgent } from './protocol.js';

if (!process.send) {
  console.error('a fallback agent is started by the edge shim supervisor, with an IPC channel');
  process.exit(2);
}

/** `then` runs once the message (and so everything sent before it) has left: exit there, not before. */
const send = (message: FromAgent, then?: () => void) => {
  if (process.connected) process.send!(message, undefined, {}, then);
  else then?.();
};

let runner: LocalRunner | undefined;
/** A standby polls only once the supervisor promotes it, which may happen while it still loads. */
let standby = true;

async function start(config: AgentConfig): Promise<void> {
  standby = config.standby;
  setInterval(() => send({ type: 'heartbeat' }), config.heartbeatIntervalMs);
  send({ type: 'heartbeat' });
  // Loaded after the first heartbeat: the supervisor sees the process alive while it loads.
  const { startLocalRunner, holdfastLogger } = await import('../../../functions/src/edge/runner.js');
  runner = await startLocalRunner({
    workflow: { name: config.workflowName, stages: [config.stage] },
    aws: config.aws,
    queues: { [config.stage.name]: config.queues },
    environment: config.environment,
    root: config.entryRoot,
    waitTimeSeconds: config.waitTimeSeconds,
    logger: holdfastLogger('fallback-agent', config.logLevel).child({ stage: config.stage.name }),
    initialize: true,
    paused: true,
    onEvent: (event) => send({ type: 'runner', event }),
  });
  send({ type: 'ready' });
  if (!standby) runner.resume();
}

/** The supervisor stops only agents that poll (it kills the others: they hold nothing). */
async function stop(): Promise<void> {
  const stopped = runner!.stop({ invocationDeadline: Date.now() });
  send({ type: 'stopping' });
  await stopped;
  send({ type: 'stopped' }, () => process.exit(0));
}

process.on('message', (message: ToAgent) => {
  if (message.type === 'configure') {
    start(message.config).catch((error: unknown) => {
      send({ type: 'failed', error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }, () => process.exit(1));
    });
  } else if (message.type === 'resume') {
    standby = false;
    runner?.resume();
  } else {
    void stop();
  }
});

// The supervisor is gone (the shim stopped or died): no agent outlives it.
process.on('disconnect', () => {
  if (!runner) process.exit(0);
  void runner.stop({ invocationDeadline: Date.now() }).then(() => process.exit(0));
});
