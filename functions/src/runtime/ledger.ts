import { PermanentError } from './errors.js';
import { type Money, parseMoney } from './money.js';
import type { LedgerEntry, LedgerStore, Posting } from './store/types.js';

export interface Transfer {
  /** Account debited. */
  readonly from: string;
  /** Account credited. */
  readonly to: string;
  readonly money: Money;
  readonly memo: string;
}

/** Builds the balanced entries of a transfer: one debit and one credit of the same integer amount. */
function transferPosting(id: string, transfer: Transfer): Posting {
  const { amountMinor, currency } = parseMoney(transfer.money.amountMinor, transfer.money.currency);
  if (transfer.from === transfer.to) throw new PermanentError('a transfer needs two different accounts');
  return {
    id,
    memo: transfer.memo,
    entries: [
      { postingId: id, leg: 0, account: transfer.from, side: 'debit', amountMinor, currency },
      { postingId: id, leg: 1, account: transfer.to, side: 'credit', amountMinor, currency },
    ],
  };
}

/** Debit and credit totals of one currency; balanced when they are equal. */
export interface CurrencyBalance {
  readonly debitsMinor: number;
  readonly creditsMinor: number;
}

export interface TrialBalance {
  readonly balanced: boolean;
  readonly byCurrency: Record<string, CurrencyBalance>;
  readonly entries: number;
}

/** Double-entry ledger: every posting's debits equal its credits, so the whole ledger always balances. */
export class Ledger {
  constructor(private readonly store: LedgerStore) {}

  /** Posts a transfer once: a repeat with the same id changes nothing. */
  async post(id: string, transfer: Transfer): Promise<'written' | 'already-posted'> {
    return this.store.writePosting(transferPosting(id, transfer));
  }

  /** Posts the mirror image of a posting (same amounts, sides swapped), once. */
  async reverse(id: string, memo: string): Promise<'written' | 'already-posted' | 'nothing-to-reverse'> {
    const original = await this.store.getPosting(id);
    if (!original) return 'nothing-to-reverse';
    const reversalId = `${id}:reversal`;
    const entries: LedgerEntry[] = original.entries.map((entry) => ({
      ...entry,
      postingId: reversalId,
      side: entry.side === 'debit' ? 'credit' : 'debit',
    }));
    return this.store.writePosting({ id: reversalId, memo, entries });
  }

  getPosting(id: string): Promise<Posting | undefined> {
    return this.store.getPosting(id);
  }

  /** Sums every entry in the ledger per currency and checks that debits equal credits. */
  async trialBalance(): Promise<TrialBalance> {
    const byCurrency: Record<string, { debitsMinor: number; creditsMinor: number }> = {};
    let entries = 0;
    for await (const entry of this.store.entries()) {
      const totals = (byCurrency[entry.currency] ??= { debitsMinor: 0, creditsMinor: 0 });
      if (entry.side === 'debit') totals.debitsMinor += entry.amountMinor;
      else totals.creditsMinor += entry.amountMinor;
      entries++;
    }
    const balanced = Object.values(byCurrency).every((totals) => totals.debitsMinor === totals.creditsMinor);
    return { balanced, byCurrency, entries };
  }
}
