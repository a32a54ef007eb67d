import { PermanentError } from '../errors.js';
import { type PostgresDatabase, transaction } from './postgres-database.js';
import type { LedgerEntry, LedgerStore, Posting, Side } from './types.js';

interface EntryRow {
  posting_id: string;
  leg: number;
  account: string;
  side: string;
  amount_minor: number;
  currency: string;
}

const toEntry = (row: EntryRow): LedgerEntry => ({
  postingId: row.posting_id,
  leg: row.leg,
  account: row.account,
  side: row.side as Side,
  amountMinor: row.amount_minor,
  currency: row.currency,
});

/**
 * First key of the advisory locks on ledger accounts (the second is the account's hash): a posting
 * holds its accounts' locks shared, closing an account takes its lock alone, so that no posting
 * commits on an account after it was closed (the DynamoDB ledger's condition check).
 */
const ACCOUNT_LOCK = 0x4c656467; // "Ledg"

/** Entries read per page by entries(). */
const PAGE = 1_000;

/**
 * Ledger in PostgreSQL: a posting (table `ledger_posting`) and its entries (`ledger_entry`) written
 * in one transaction, where a repeated posting is a no-op and a closed account (`ledger_closed_account`)
 * refuses it.
 */
export class PostgresLedger implements LedgerStore {
  constructor(private readonly db: PostgresDatabase) {}

  async writePosting(posting: Posting): Promise<'written' | 'already-posted'> {
    const accounts = [...new Set(posting.entries.map((entry) => entry.account))];
    return transaction(this.db, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock_shared($1, hashtext(account)) FROM unnest($2::text[]) AS account', [ACCOUNT_LOCK, accounts]);
      const { rowCount } = await client.query('INSERT INTO ledger_posting (id, memo) VALUES ($1, $2) ON CONFLICT DO NOTHING', [posting.id, posting.memo]);
      if (rowCount === 0) return 'already-posted';
      const { rows: closed } = await client.query<{ account: string }>(
        'SELECT account FROM ledger_closed_account WHERE account = ANY($1::text[]) ORDER BY account',
        [accounts],
      );
      if (closed.length > 0) throw new PermanentError(`ledger account closed: ${closed.map((row) => row.account).join(', ')}`);
      await client.query(
        `INSERT INTO ledger_entry (posting_id, leg, account, side, amount_minor, currency)
         SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::bigint[], $6::text[])`,
        [
          posting.entries.map((entry) => entry.postingId),
          posting.entries.map((entry) => entry.leg),
          posting.entries.map((entry) => entry.account),
          posting.entries.map((entry) => entry.side),
          posting.entries.map((entry) => entry.amountMinor),
          posting.entries.map((entry) => entry.currency),
        ],
      );
      return 'written';
    });
  }

  async getPosting(id: string): Promise<Posting | undefined> {
    const { rows } = await this.db.query<{ memo: string; entries: EntryRow[] }>(
      `SELECT memo, coalesce((SELECT json_agg(e ORDER BY e.leg) FROM ledger_entry e WHERE e.posting_id = p.id), '[]') AS entries
       FROM ledger_posting p WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    return row && { id, memo: row.memo, entries: row.entries.map(toEntry) };
  }

  async closeAccount(account: string): Promise<void> {
    await transaction(this.db, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ACCOUNT_LOCK, account]);
      await client.query('INSERT INTO ledger_closed_account (account) VALUES ($1) ON CONFLICT DO NOTHING', [account]);
    });
  }

  async *entries(): AsyncIterable<LedgerEntry> {
    // Pages by key, as DynamoDB's scan does: no connection is held while the caller works on a page.
    let after = { postingId: '', leg: -1 };
    for (;;) {
      const { rows } = await this.db.query<EntryRow>(
        `SELECT posting_id, leg, account, side, amount_minor, currency FROM ledger_entry
         WHERE (posting_id, leg) > ($1, $2) ORDER BY posting_id, leg LIMIT ${PAGE}`,
        [after.postingId, after.leg],
      );
      for (const row of rows) yield toEntry(row);
      if (rows.length < PAGE) return;
      const last = rows.at(-1)!;
      after = { postingId: last.posting_id, leg: last.leg };
    }
  }
}
