import type { StageDefinition, WorkflowDefinition } from '../workflow-definition.js';

type StageSettings = Pick<StageDefinition, 'runsAtEdge' | 'timeoutSeconds'> & Required<Pick<StageDefinition, 'tables'>>;

const stage = (name: string, settings: StageSettings): StageDefinition => ({
  name,
  entry: `functions/src/agents/${name}.ts`,
  maxReceiveCount: 5,
  memoryMb: 256,
  batchSize: 10,
  maxConcurrency: 2,
  ...settings,
});

/** Every agent's runtime keeps its idempotency records and the saga's step log (runtime/agent.ts). */
const RUNTIME_TABLES = { idempotency: 'readwrite', workflow: 'readwrite' } as const;

/**
 * Payments as operators run them: authorize at the gateway, score for fraud, post to the ledger,
 * notify the customer. Each stage is an agent on its own FIFO queue, grouped by account so that one
 * account's payments stay in order. The agents themselves are in payments-saga.ts.
 */
export const payments: WorkflowDefinition = {
  name: 'payments',
  stages: [
    // Stand-in authorization keeps small payments flowing while the region is cut off.
    stage('authorize', { runsAtEdge: true, timeoutSeconds: 30, tables: RUNTIME_TABLES }),
    // Keeps each account's payment velocity as checkpointed state.
    stage('fraud-score', { runsAtEdge: true, timeoutSeconds: 15, tables: { ...RUNTIME_TABLES, state: 'readwrite' } }),
    // The ledger is the region's book of record: never posted to from the edge.
    stage('ledger', { runsAtEdge: false, timeoutSeconds: 15, tables: { ...RUNTIME_TABLES, ledger: 'readwrite' } }),
    // A notification refused for good compensates the saga from here: the ledger posting is reversed.
    stage('notify', { runsAtEdge: true, timeoutSeconds: 15, tables: { ...RUNTIME_TABLES, ledger: 'readwrite' } }),
  ],
};
