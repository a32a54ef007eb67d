import { createAgent } from '../runtime/agent.js';
import { paymentsSaga } from '../workflows/payments-saga.js';

export const handler = createAgent(paymentsSaga, 'fraud-score');
