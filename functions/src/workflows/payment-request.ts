import { PermanentError } from '../runtime/errors.js';
import { type Money, parseMoney } from '../runtime/money.js';

/** What a client submits to the payments workflow. */
export interface PaymentRequest {
  readonly paymentId: string;
  /** The paying customer's account; also the FIFO message group. */
  readonly account: string;
  readonly merchant: string;
  readonly money: Money;
}

function requireText(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (typeof value !== 'string' || value.length === 0 || value.length > 80) throw new PermanentError(`payment.${name} must be a string of 1 to 80 characters`);
  return value;
}

export function parsePaymentRequest(input: unknown): PaymentRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new PermanentError('payment request must be a JSON object');
  const fields = input as Record<string, unknown>;
  return {
    paymentId: requireText(fields, 'paymentId'),
    account: requireText(fields, 'account'),
    merchant: requireText(fields, 'merchant'),
    money: parseMoney(fields.amountMinor, fields.currency),
  };
}
