"""The terminal database's schema history (data/terminal.sqlite3: config database_path).

One SQLite file holds the journal and everything that commits with it (transactions, cash
events, vouchers, the float, business days, the board's events, ratings) and the telemetry
outbox and command nonces, so it has one history and one user_version. Every module that
keeps tables there calls TERMINAL.migrate(conn) from its constructor.

The text of a released migration never changes: a change is a new migration appended at
the end, expand-only (kiosk.schema, docs/updates.md "Schema versions").
"""

from kiosk.schema import Database, Migration, register

_V1 = """
-- kiosk.journal.store: the hash-chained journal, append-only.
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    record TEXT NOT NULL,
    hash TEXT NOT NULL,           -- not indexed: nothing looks a record up by hash
    tx_id TEXT,
    receipt_no TEXT,
    turnover_fen INTEGER NOT NULL,
    sig_failed INTEGER NOT NULL DEFAULT 0
);
-- Every index entry costs a page write on the commit of every record: of every note a
-- resident inserts and of every payment's close. So the only indexes are partial ones
-- that ordinary records never enter, for the outage span, which every append checks:
-- records marked sig_failed and signature_recovered records. Everything else is found
-- by seq: a receipt number is the seq of its record (receipt_no_of); the outbox and a
-- day's closing records are ranges of seqs after a known one, read in order (the
-- outbox's after the back office's ack, a day's after the previous day_close), so
-- scanning them reads only records that are due anyway. by_tx() scans, for audits.
CREATE INDEX IF NOT EXISTS journal_sig_failed ON journal (seq) WHERE sig_failed = 1;
CREATE INDEX IF NOT EXISTS journal_recovered ON journal (seq)
    WHERE type = 'signature_recovered';
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only: records cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only: records cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS journal_gapless BEFORE INSERT ON journal
    WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM journal)
    BEGIN SELECT RAISE(ABORT, 'journal records must be numbered without gaps'); END;

-- kiosk.transactions.store: current state and working data of every transaction.
CREATE TABLE IF NOT EXISTS tx (
    tx_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- bill | card_topup | phone_topup | cash_refund
    service TEXT NOT NULL,
    biller TEXT NOT NULL,
    account TEXT NOT NULL,
    bill_id TEXT,
    state TEXT NOT NULL,
    due_fen INTEGER NOT NULL,        -- what the biller is owed (bill due or chosen top-up)
    fee_fen INTEGER NOT NULL,
    allows_overpay INTEGER NOT NULL,
    hold_id TEXT,
    hold_fen INTEGER NOT NULL DEFAULT 0,
    cash_in_fen INTEGER NOT NULL DEFAULT 0,
    pay_fen INTEGER NOT NULL DEFAULT 0,       -- amount posted to the biller
    credited_fen INTEGER NOT NULL DEFAULT 0,  -- overpayment credited to the account
    voucher_fen INTEGER NOT NULL DEFAULT 0,
    post_key TEXT,
    platform_ref TEXT,
    card_no TEXT,
    card_counter INTEGER,
    outcome TEXT,
    receipt_no TEXT,
    business_day TEXT,               -- the business day of the closing record
    printed INTEGER NOT NULL DEFAULT 0,
    print_problem TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
-- The one index is partial so that closing a transaction, the commit path every payment
-- waits for, touches one index page: the row leaves tx_open. Receipt numbers are journal
-- seqs and a day's closed transactions are its tx_close records (kiosk.settlement): both
-- are found in the journal.
CREATE INDEX IF NOT EXISTS tx_open ON tx(created) WHERE state != 'closed';
CREATE TABLE IF NOT EXISTS cash_event (
    event_id TEXT PRIMARY KEY,       -- the acceptor's id: an event is counted once, ever
    tx_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value_fen INTEGER NOT NULL,
    journal_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS card_credit (
    tx_id TEXT PRIMARY KEY,
    card_no TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    new_counter INTEGER NOT NULL,
    mac BLOB NOT NULL,
    state TEXT NOT NULL              -- kiosk.transactions.kinds.CardCreditState
);
CREATE TABLE IF NOT EXISTS hold_release (
    hold_id TEXT PRIMARY KEY,        -- a float hold to release once its transaction closed
    tx_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Work the platform still owes an answer to: an in-doubt posting to resolve, a hold to
-- release, a voucher to register. Retried with backoff by housekeeping; a row goes only when
-- the platform's answer proved the work done.
CREATE TABLE IF NOT EXISTS platform_retry (
    kind TEXT NOT NULL,              -- posting | hold | voucher
    key TEXT NOT NULL,               -- the tx id, hold id or voucher id
    tx_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try TEXT NOT NULL,          -- ISO time; due when it is not after now
    problem TEXT NOT NULL DEFAULT '',
    alerted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, key)
);
-- The secret printed on the paper a resident takes away (receipt or interim slip): with it,
-- and only with it, a receipt is reprinted or a result settled in their absence is claimed.
CREATE TABLE IF NOT EXISTS tx_token (
    token TEXT PRIMARY KEY,
    tx_id TEXT NOT NULL UNIQUE
);
-- Vouchers: single-use money, registered with the platform, redeemed there once.
CREATE TABLE IF NOT EXISTS voucher (
    voucher_id TEXT PRIMARY KEY,
    tx_id TEXT NOT NULL UNIQUE,
    amount_fen INTEGER NOT NULL,
    expires TEXT NOT NULL,           -- ISO date: the last day it can be paid out
    state TEXT NOT NULL              -- issued | registered | redeemed
);

-- kiosk.transactions.vouchers
CREATE TABLE IF NOT EXISTS voucher_payout (
    key TEXT PRIMARY KEY,            -- the redemption's idempotency key
    voucher_id TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    operator TEXT NOT NULL,
    state TEXT NOT NULL              -- asked | paid | refused
);

-- kiosk.settlement.calendar
CREATE TABLE IF NOT EXISTS day_closed (
    business_day TEXT PRIMARY KEY,
    journal_seq INTEGER NOT NULL     -- the seq of the day's day_close record
);

-- kiosk.settlement.day_close: the platform statement each checked day was balanced against
-- (the next check's start).
CREATE TABLE IF NOT EXISTS float_reading (
    seq INTEGER PRIMARY KEY,         -- the day_close record it was used in
    business_day TEXT NOT NULL,
    reading TEXT NOT NULL
);

-- kiosk.board_supervisor
CREATE TABLE IF NOT EXISTS board_event_seen (
    event_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS terminal_mode (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- kiosk.ledger.cash_box
CREATE TABLE IF NOT EXISTS cash_box_mark (
    seq INTEGER PRIMARY KEY,         -- a day_close or cash_collection record
    expected_fen INTEGER NOT NULL    -- what should be in the box right after it
);

-- kiosk.ledger.deposits
CREATE TABLE IF NOT EXISTS float_deposit (
    key TEXT PRIMARY KEY,            -- the deposit's idempotency key at the platform
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    slip_no TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'refused')),
    announced INTEGER NOT NULL,      -- 1 once the platform has answered the announcement
    recorded_by TEXT NOT NULL,
    role TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    settled_at TEXT,                 -- when it was confirmed or refused
    refusal TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS float_deposit_slip
    ON float_deposit (slip_no) WHERE state != 'refused';

-- kiosk.ledger.float_account
CREATE TABLE IF NOT EXISTS float_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    balance_fen INTEGER NOT NULL,
    held_fen INTEGER NOT NULL,
    low INTEGER NOT NULL,
    checked TEXT NOT NULL
);

-- kiosk.clock_guard
CREATE TABLE IF NOT EXISTS clock_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    trusted_until TEXT NOT NULL      -- ISO time: the clock was trusted at least up to here
);

-- kiosk.ratings
CREATE TABLE IF NOT EXISTS rating (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    tx_id TEXT UNIQUE,
    service TEXT NOT NULL,
    satisfied INTEGER NOT NULL CHECK (satisfied IN (0, 1)),
    reason TEXT
);
CREATE TABLE IF NOT EXISTS complaint (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    tx_id TEXT,
    service TEXT NOT NULL,
    reasons TEXT NOT NULL,
    callback_phone TEXT,
    seq INTEGER NOT NULL
);

-- kiosk.telemetry.outbox: how far the back office acknowledged the journal.
CREATE TABLE IF NOT EXISTS telemetry_outbox (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    acked_seq INTEGER NOT NULL CHECK (acked_seq >= 0)
);

-- kiosk.telemetry.commands: nonces of admitted remote commands.
CREATE TABLE IF NOT EXISTS telemetry_nonces (
    nonce TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,     -- Unix time: comparable whatever offset the command used
    command_id TEXT NOT NULL
)
"""

TERMINAL = register(
    Database(
        "terminal",
        (
            Migration(
                1, "journal, transactions, vouchers, float, days, board, ratings, telemetry", _V1
            ),
            # Added by releases before versioning with ALTER when missing (kiosk.schema
            # adopts such a database: a column already there is not added again).
            Migration(
                2,
                "tx: why a transaction was voided and the platform's refusal code",
                """
ALTER TABLE tx ADD COLUMN close_reason TEXT;  -- kiosk.transactions.outcomes.CloseReason
ALTER TABLE tx ADD COLUMN refusal TEXT        -- the platform's refusal code that led to voiding
""",
            ),
            # Paying by phone (kiosk.transactions.orders, docs/transactions.md "Payments by
            # phone"); cash transactions keep the defaults.
            Migration(
                3,
                "tx: payment method, payment order and refund to the wallet",
                """
ALTER TABLE tx ADD COLUMN pay_method TEXT NOT NULL DEFAULT 'cash';  -- kinds.PayMethod
ALTER TABLE tx ADD COLUMN order_key TEXT;      -- the order's key, committed before its request
ALTER TABLE tx ADD COLUMN code_url TEXT;       -- the order's dynamic code, to show again
ALTER TABLE tx ADD COLUMN order_expires TEXT;  -- the order's expiry (the platform's clock), ISO
ALTER TABLE tx ADD COLUMN order_stage TEXT;    -- kinds.QrStage while awaiting payment
ALTER TABLE tx ADD COLUMN paid_with TEXT;      -- the wallet that paid (wechat, alipay, unionpay)
ALTER TABLE tx ADD COLUMN provider_ref TEXT;   -- the provider's transaction id
ALTER TABLE tx ADD COLUMN paid_in_fen INTEGER NOT NULL DEFAULT 0;  -- what the order took
ALTER TABLE tx ADD COLUMN refund_key TEXT;     -- the refund in progress, committed before it
ALTER TABLE tx ADD COLUMN refunds_tried INTEGER NOT NULL DEFAULT 0;  -- refund keys used
ALTER TABLE tx ADD COLUMN refunded_fen INTEGER NOT NULL DEFAULT 0;   -- back to the wallet
ALTER TABLE tx ADD COLUMN resident_left INTEGER NOT NULL DEFAULT 0   -- 1: paid is refunded
""",
            ),
        ),
        retired=(
            # Indexes of earlier versions, used by no query now (each cost a page per commit).
            "DROP INDEX IF EXISTS journal_by_tx",
            "DROP INDEX IF EXISTS journal_by_receipt",
            "DROP INDEX IF EXISTS journal_by_type",
            "DROP INDEX IF EXISTS tx_state",
            "DROP INDEX IF EXISTS tx_day",
            "DROP INDEX IF EXISTS tx_closed_day",
            "DROP TABLE IF EXISTS upload_queue",
        ),
    )
)
