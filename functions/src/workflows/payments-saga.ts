import { handleType, retry } from 'cockatiel';
import { Checkpoints, VersionConflictError } from '../runtime/checkpoint.js';
import { requireEnv } from '../runtime/env.js';
import { PermanentError, TransientError } from '../runtime/errors.js';
import { postJson } from '../runtime/http.js';
import { Ledger } from '../runtime/ledger.js';
import type { CallPolicy } from '../runtime/resilience.js';
import type { SagaDefinition, StepContext } from '../runtime/saga.js';
import { DynamoDbCheckpoints } from '../runtime/store/dynamodb-checkpoints.js';
import { documentClient } from '../runtime/store/dynamodb-client.js';
import { DynamoDbLedger } from '../runtime/store/dynamodb-ledger.js';
import { ENV } from '../workflow-definition.js';
import { type PaymentRequest, parsePaymentRequest } from './payment-request.js';
import { payments } from './payments.js';

type PaymentContext = StepContext<PaymentRequest>;

/** Largest payment approved by stand-in processing while the gateway cannot be reached. */
export const STAND_IN_LIMIT_MINOR = 25_000;
/** Fraud score at or above which a payment is declined. */
const DECLINE_SCORE = 90;
const VELOCITY_WINDOW = 20;

const httpPolicy: CallPolicy = {
  timeoutMs: 2_000,
  retry: { attempts: 4, initialDelayMs: 50, maxDelayMs: 1_000 },
  breaker: { consecutiveFailures: 5, halfOpenAfterMs: 30_000 },
};

const ledgerPolicy: CallPolicy = {
  timeoutMs: 5_000,
  retry: { attempts: 3, initialDelayMs: 50, maxDelayMs: 500 },
  breaker: { consecutiveFailures: 5, halfOpenAfterMs: 10_000 },
};

let ledgerInstance: Ledger | undefined;
/** The ledger in LEDGER_TABLE. */
function paymentsLedger(): Ledger {
  ledgerInstance ??= new Ledger(new DynamoDbLedger(documentClient(), requireEnv(ENV.ledgerTable)));
  return ledgerInstance;
}

interface Velocity {
  readonly recentPaymentIds: string[];
  readonly recentTotalMinor: number;
}

let velocityInstance: Checkpoints<Velocity> | undefined;
/** Per-account payment velocity the fraud agent keeps as checkpointed state in STATE_TABLE. */
function velocityCheckpoints(): Checkpoints<Velocity> {
  velocityInstance ??= new Checkpoints<Velocity>(new DynamoDbCheckpoints(documentClient(), requireEnv(ENV.stateTable)));
  return velocityInstance;
}

export const velocityKey = (account: string) => `fraud-score/${account}`;

/** Adds the payment to the account's velocity once, retrying when another writer saved first. */
function trackVelocity(payment: PaymentRequest): Promise<Velocity> {
  return retry(handleType(VersionConflictError), { maxAttempts: 5 }).execute(async () => {
    const checkpoints = velocityCheckpoints();
    const restored = await checkpoints.restoreLatest(velocityKey(payment.account));
    const current = restored.intact?.state ?? { recentPaymentIds: [], recentTotalMinor: 0 };
    if (current.recentPaymentIds.includes(payment.paymentId)) return current;
    const next: Velocity = {
      recentPaymentIds: [...current.recentPaymentIds, payment.paymentId].slice(-VELOCITY_WINDOW),
      recentTotalMinor: current.recentTotalMinor + payment.money.amountMinor,
    };
    await checkpoints.save(velocityKey(payment.account), next, restored.latestVersion);
    return next;
  });
}

function decide(score: number): { score: number } {
  if (score >= DECLINE_SCORE) throw new PermanentError(`payment declined: fraud score ${score}`);
  return { score };
}

const gatewayUrl = () => requireEnv(ENV.gatewayUrl);

interface AuthorizationResult {
  readonly authorizationId: string;
}

export const paymentsSaga: SagaDefinition<PaymentRequest> = {
  workflow: payments,
  parseInput: parsePaymentRequest,
  agents: {
    authorize: {
      policy: httpPolicy,
      escalateToHumanReview: true,
      alternatives: [
        {
          name: 'gateway',
          run: ({ workflowId, input, call }: PaymentContext) =>
            call(`gateway ${gatewayUrl()}`, (signal) =>
              postJson<AuthorizationResult>(
                'payment gateway',
                `${gatewayUrl()}/authorizations`,
                { paymentId: input.paymentId, account: input.account, amountMinor: input.money.amountMinor, currency: input.money.currency },
                { signal, idempotencyKey: `${workflowId}:authorize` },
              ),
            ),
        },
        {
          // Stand-in processing: approve small payments on the gateway's behalf while it is unreachable.
          name: 'stand-in',
          run: async ({ input }: PaymentContext) => {
            if (input.money.amountMinor > STAND_IN_LIMIT_MINOR) throw new TransientError('amount above the stand-in limit');
            return { authorizationId: `stand-in-${input.paymentId}` };
          },
        },
      ],
      compensate: async ({ workflowId, call }, outcome) => {
        // A stand-in approval never reached the gateway: there is nothing there to void.
        if (outcome.answeredBy !== 'gateway') return;
        const { authorizationId } = outcome.value as AuthorizationResult;
        await call(`gateway ${gatewayUrl()}`, (signal) =>
          postJson('payment gateway', `${gatewayUrl()}/authorizations/${encodeURIComponent(authorizationId)}/void`, {}, { signal, idempotencyKey: `${workflowId}:void` }),
        );
      },
    },
    'fraud-score': {
      policy: httpPolicy,
      escalateToHumanReview: false,
      alternatives: [
        {
          name: 'fraud-service',
          run: async ({ workflowId, input, call }: PaymentContext) => {
            await call('velocity checkpoints', () => trackVelocity(input));
            const { score } = await call(`fraud-service ${gatewayUrl()}`, (signal) =>
              postJson<{ score: number }>(
                'fraud service',
                `${gatewayUrl()}/fraud-scores`,
                { account: input.account, amountMinor: input.money.amountMinor },
                { signal, idempotencyKey: `${workflowId}:fraud-score` },
              ),
            );
            return decide(score);
          },
        },
        {
          // Rules of thumb on amount and the account's recent velocity.
          name: 'rules',
          run: async ({ input, call }: PaymentContext) => {
            const velocity = await call('velocity checkpoints', () => trackVelocity(input));
            const large = input.money.amountMinor > 100_000 ? 50 : 0;
            const busy = velocity.recentPaymentIds.length >= 10 ? 45 : 0;
            return decide(10 + large + busy);
          },
        },
      ],
    },
    ledger: {
      policy: ledgerPolicy,
      escalateToHumanReview: false,
      alternatives: [
        {
          name: 'ledger',
          run: ({ workflowId, input, call }: PaymentContext) =>
            call('ledger', () =>
              paymentsLedger().post(workflowId, {
                from: `customer:${input.account}`,
                to: `merchant:${input.merchant}`,
                money: input.money,
                memo: `payment ${input.paymentId}`,
              }),
            ).then((written) => ({ postingId: workflowId, written })),
        },
      ],
      compensate: async ({ workflowId, call }) => {
        await call('ledger', () => paymentsLedger().reverse(workflowId, `reversal of payment ${workflowId}`));
      },
    },
    notify: {
      policy: httpPolicy,
      escalateToHumanReview: true,
      alternatives: [
        {
          name: 'notifier',
          run: ({ workflowId, input, call }: PaymentContext) =>
            call(`notifier ${requireEnv(ENV.notifierUrl)}`, (signal) =>
              postJson<{ notificationId: string }>(
                'notifier',
                `${requireEnv(ENV.notifierUrl)}/notifications`,
                { paymentId: input.paymentId, account: input.account },
                { signal, idempotencyKey: `${workflowId}:notify` },
              ),
            ),
        },
      ],
    },
  },
};
