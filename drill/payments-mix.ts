import { seededRandom } from '../testkit/fault-modes.js';

/**
 * The payments a drill's producers send, drawn from a seed: a share of low-risk ones (a small
 * amount on an account that pays rarely), the others large (above what an edge site may authorize
 * by itself) or on one of a few busy accounts, which the edge's degraded mode escalates once the
 * account's exposure or velocity limit is reached.
 */
export type PaymentKind = 'low-risk' | 'large' | 'busy';

export interface PlannedPayment {
  readonly paymentId: string;
  readonly account: string;
  readonly merchant: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly kind: PaymentKind;
}

/** Low-risk amounts: 1.00 to 40.00, well under the edge's per-payment limit (100.00 by default). */
const LOW_RISK_MINOR: readonly [number, number] = [100, 4_000];
/** Small payments of busy accounts: 20.00 to 90.00, each within the per-payment limit. */
const BUSY_MINOR: readonly [number, number] = [2_000, 9_000];
/** Large payments: 150.00 to 900.00, above the per-payment limit and under the stand-in limit (250.00 only matters when the gateway is down). */
const LARGE_MINOR: readonly [number, number] = [15_000, 90_000];
const BUSY_ACCOUNTS = 8;
const MERCHANTS = ['shop-books', 'shop-coffee', 'shop-hardware', 'shop-travel'];

export class PaymentMix {
  private readonly random: () => number;
  private sequence = 0;

  /**
   * @param runId keeps this run's payment ids and accounts apart from any other run's in the same region
   * @param lowRiskShare the share (0 to 1) of low-risk payments
   */
  constructor(
    private readonly runId: string,
    private readonly lowRiskShare: number,
    seed: number,
  ) {
    if (!(lowRiskShare >= 0 && lowRiskShare <= 1)) throw new Error(`the low-risk share must be between 0 and 1, not ${lowRiskShare}`);
    this.random = seededRandom(seed);
  }

  next(): PlannedPayment {
    const number = ++this.sequence;
    const between = ([low, high]: readonly [number, number]) => low + Math.floor(this.random() * (high - low + 1));
    const merchant = MERCHANTS[Math.floor(this.random() * MERCHANTS.length)]!;
    const busyAccount = () => `busy-${this.runId}-${1 + Math.floor(this.random() * BUSY_ACCOUNTS)}`;
    const base = { paymentId: `pay-${this.runId}-${number}`, merchant, currency: 'EUR' };
    if (this.random() < this.lowRiskShare) {
      // A quiet account: each low-risk payment comes from an account of its own.
      return { ...base, account: `quiet-${this.runId}-${number}`, amountMinor: between(LOW_RISK_MINOR), kind: 'low-risk' };
    }
    if (this.random() < 0.5) return { ...base, account: busyAccount(), amountMinor: between(LARGE_MINOR), kind: 'large' };
    return { ...base, account: busyAccount(), amountMinor: between(BUSY_MINOR), kind: 'busy' };
  }
}
