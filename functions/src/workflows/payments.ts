import type { StageDefinition, WorkflowDefinition } from '../workflow-definition.js';

const stage = (name: string, settings: Pick<StageDefinition, 'runsAtEdge' | 'timeoutSeconds'>): StageDefinition => ({
  name,
  entry: `functions/src/agents/${name}.ts`,
  maxReceiveCount: 5,
  memoryMb: 256,
  batchSize: 10,
  maxConcurrency: 2,
  ...settings,
});

/**
 * Payments as operators run them: authorize at the gateway, score for fraud, post to the ledger,
 * notify the customer. Each stage is an agent on its own FIFO queue, grouped by account so that one
 * account's payments stay in order. The agents themselves are in payments-saga.ts.
 */
export const payments: WorkflowDefinition = {
  name: 'payments',
  stages: [
    // Stand-in authorization keeps small payments flowing while the region is cut off.
    stage('authorize', { runsAtEdge: true, timeoutSeconds: 30 }),
    stage('fraud-score', { runsAtEdge: true, timeoutSeconds: 15 }),
    // The ledger is the region's book of record: never posted to from the edge.
    stage('ledger', { runsAtEdge: false, timeoutSeconds: 15 }),
    stage('notify', { runsAtEdge: true, timeoutSeconds: 15 }),
  ],
};
