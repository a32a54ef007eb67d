import { PermanentError } from './errors.js';

/** An amount of money in integer minor units (cents for USD) of an ISO 4217 currency. */
export interface Money {
  readonly amountMinor: number;
  readonly currency: string;
}

const CURRENCY = /^[A-Z]{3}$/;

/** Validates untrusted money: a positive safe integer of minor units and a three-letter currency. */
export function parseMoney(amountMinor: unknown, currency: unknown): Money {
  if (typeof amountMinor !== 'number' || !Number.isSafeInteger(amountMinor) || amountMinor <= 0) {
    throw new PermanentError(`amount must be a positive integer of minor units, got ${JSON.stringify(amountMinor)}`);
  }
  if (typeof currency !== 'string' || !CURRENCY.test(currency)) {
    throw new PermanentError(`currency must be a three-letter ISO 4217 code, got ${JSON.stringify(currency)}`);
  }
  return { amountMinor, currency };
}
