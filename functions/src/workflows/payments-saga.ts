import { ENV } from '../workflow-definition.js';
import { requireEnv } from '../runtime/env.js';
import { PermanentError, TransientError } from '../runtime/errors.js';
import { postJson } from '../runtime/http.js';
import { Ledger } from '../runtime/ledger.js';
import type { CallPolicy } from '../runtime/resilience.js';
import type { SagaDefinition, StepContext } from '../runtime/saga.js';
import { counterValue } from '../runtime/store/types.js';
import { type PaymentRequest, parsePaymentRequest } from './payment-request.js';
import { payments } from './payments.js';

type PaymentContext = StepContext<PaymentRequest, PaymentsSettings>;

/** Largest payment approved by stand-in processing while the gateway cannot be reached. */
export const STAND_IN_LIMIT_MINOR = 25_000;
/** Fraud score at or above which a payment is declined. */
const DECLINE_SCORE = 90;
/** Rules score below which a payment counts as low-risk (neither large nor from a busy account). */
const LOW_RISK_SCORE = 50;
/** Payments in a day that make an account busy. */
const BUSY_PAYMENTS_PER_DAY = 10;
const LARGE_PAYMENT_MINOR = 100_000;

/** The payments saga's own settings, read from the environment once, with the agent's other dependencies. */
export interface PaymentsSettings {
  readonly edgeLimits: EdgeLimits;
}

/** Degraded mode: what an edge site may authorize by itself (environment variables in ENV, defaults here). */
export interface EdgeLimits {
  /** Largest single payment. */
  readonly paymentMinor: number;
  /** Total per account and currency over an outage. */
  readonly accountExposureMinor: number;
  /** Total per edge site and currency over an outage. */
  readonly siteExposureMinor: number;
}

export const EDGE_LIMIT_DEFAULTS: EdgeLimits = { paymentMinor: 10_000, accountExposureMinor: 30_000, siteExposureMinor: 500_000 };

function limitFromEnvironment(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) throw new Error(`${name} must be a whole number of minor units, got ${JSON.stringify(text)}`);
  return value;
}

export function edgeLimitsFromEnvironment(env: NodeJS.ProcessEnv): EdgeLimits {
  return {
    paymentMinor: limitFromEnvironment(env, ENV.edgePaymentLimitMinor, EDGE_LIMIT_DEFAULTS.paymentMinor),
    accountExposureMinor: limitFromEnvironment(env, ENV.edgeAccountExposureMinor, EDGE_LIMIT_DEFAULTS.accountExposureMinor),
    siteExposureMinor: limitFromEnvironment(env, ENV.edgeSiteExposureMinor, EDGE_LIMIT_DEFAULTS.siteExposureMinor),
  };
}

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

/** The ledger, which only the region has: stages that use it never run at the edge. */
function ledgerOf({ stores }: PaymentContext): Ledger {
  if (!stores.ledger) throw new Error('the ledger is the region\'s book of record and is not available at the edge');
  return new Ledger(stores.ledger);
}

/** Counter of an account's payments on one UTC day, counted by every site that scores them (a G-counter). */
export const velocityKey = (account: string, day = new Date().toISOString().slice(0, 10)) => `velocity/${account}/${day}`;
/** What an edge site authorized for an account in one currency (a G-counter; limits apply per site since its last sync). */
export const accountExposureKey = (account: string, currency: string) => `exposure/account/${account}/${currency}`;
/** What an edge site authorized in one currency. */
export const siteExposureKey = (site: string, currency: string) => `exposure/site/${site}/${currency}`;

interface Velocity {
  readonly key: string;
  /** Payments of the account that day, as far as this site knows. */
  readonly payments: number;
}

/** Counts the payment in its account's velocity once (a repeat adds nothing); returns the count. */
async function trackVelocity({ input, site, stores, call }: PaymentContext): Promise<Velocity> {
  const key = velocityKey(input.account);
  await call('velocity counters', () => stores.counters.increment(`velocity:${input.paymentId}`, site.id, [{ key, delta: 1 }]));
  return { key, payments: counterValue(await call('velocity counters', () => stores.counters.read(key))) };
}

/** Rules of thumb on amount and the account's velocity; they need nothing from the region. */
function ruleScore(payment: PaymentRequest, velocity: Velocity): number {
  const large = payment.money.amountMinor > LARGE_PAYMENT_MINOR ? 50 : 0;
  const busy = velocity.payments >= BUSY_PAYMENTS_PER_DAY ? 45 : 0;
  return 10 + large + busy;
}

function decide(score: number, velocity: Velocity): { score: number; velocity: Velocity } {
  if (score >= DECLINE_SCORE) throw new PermanentError(`payment declined: fraud score ${score}`);
  return { score, velocity };
}

/**
 * Degraded mode: whether an edge site may authorize the payment by itself. Only a low-risk payment
 * (by the rules, on what this site counted) up to the per-payment limit, and only while the
 * site's total and the account's total authorized here since the last sync stay within their
 * limits; the totals are reserved here, durably, once per payment. Anything else goes to human
 * review, which reaches the region with the replay. In the region every payment is admitted.
 */
async function admitAtEdge(context: PaymentContext): Promise<string | undefined> {
  const { input, site, stores, settings, call } = context;
  if (!site.atEdge) return undefined;
  const limits = settings.edgeLimits;
  const { amountMinor, currency } = input.money;
  if (amountMinor > limits.paymentMinor) return `amount ${amountMinor} ${currency} is above the edge limit of ${limits.paymentMinor} per payment`;
  const key = velocityKey(input.account);
  const velocity = { key, payments: counterValue(await call('velocity counters', () => stores.counters.read(key))) };
  const score = ruleScore(input, velocity);
  if (score >= LOW_RISK_SCORE) return `not low-risk enough to authorize at the edge: rules score ${score}`;
  const reserved = await call('exposure counters', () =>
    stores.counters.increment(`exposure:${input.paymentId}`, site.id, [
      { key: accountExposureKey(input.account, currency), delta: amountMinor, limit: limits.accountExposureMinor },
      { key: siteExposureKey(site.id, currency), delta: amountMinor, limit: limits.siteExposureMinor },
    ]),
  );
  if (reserved === 'over-limit') {
    return `offline exposure limit reached at edge site ${site.id}: ${limits.accountExposureMinor} per account or ${limits.siteExposureMinor} per site (${currency})`;
  }
  return undefined;
}

const gatewayUrl = () => requireEnv(ENV.gatewayUrl);

interface AuthorizationResult {
  readonly authorizationId: string;
}

export const paymentsSaga: SagaDefinition<PaymentRequest, PaymentsSettings> = {
  workflow: payments,
  parseInput: parsePaymentRequest,
  settingsFromEnvironment: (env) => ({ edgeLimits: edgeLimitsFromEnvironment(env) }),
  agents: {
    authorize: {
      policy: httpPolicy,
      escalateToHumanReview: true,
      admit: admitAtEdge,
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
          // Scores on the region's data: at the edge the rules answer instead.
          regionOnly: true,
          run: async (context: PaymentContext) => {
            const { workflowId, input, call } = context;
            const velocity = await trackVelocity(context);
            const { score } = await call(`fraud-service ${gatewayUrl()}`, (signal) =>
              postJson<{ score: number }>(
                'fraud service',
                `${gatewayUrl()}/fraud-scores`,
                { account: input.account, amountMinor: input.money.amountMinor },
                { signal, idempotencyKey: `${workflowId}:fraud-score` },
              ),
            );
            return decide(score, velocity);
          },
        },
        {
          name: 'rules',
          run: async (context: PaymentContext) => {
            const velocity = await trackVelocity(context);
            return decide(ruleScore(context.input, velocity), velocity);
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
          run: (context: PaymentContext) =>
            context
              .call('ledger', () =>
                ledgerOf(context).post(context.workflowId, {
                  from: `customer:${context.input.account}`,
                  to: `merchant:${context.input.merchant}`,
                  money: context.input.money,
                  memo: `payment ${context.input.paymentId}`,
                }),
              )
              .then((written) => ({ postingId: context.workflowId, written })),
        },
      ],
      // Runs in the stage that fails (notify) and only in the region: at the edge such a saga is escalated instead (saga.ts).
      compensate: async (context) => {
        await context.call('ledger', () => ledgerOf(context).reverse(context.workflowId, `reversal of payment ${context.workflowId}`));
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
