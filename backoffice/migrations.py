"""The back-office database schema as numbered, expand-only migrations, for both engines.

Owns the schema's history: each Migration adds tables, columns or indexes and never drops,
renames or narrows anything, so a worker of the previous release keeps working against a
database a newer worker has moved (rolling upgrades of several ingest workers). The table
schema_version records what was applied. Written here rather than with a migration tool
(alembic, yoyo): the whole history is a list of SQL strings in one transaction per start,
with the engines' two differences (identity columns, floating-point type) as placeholders.
tests/test_backoffice_migrations.py holds the list to expand-only.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # backoffice.store runs the migrations
    from backoffice.store import Cursor

Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str  # statements separated by ";", with {ID} and {REAL} for the engine's types


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "terminals, boots, health, events, records, alerts, commands, rejected messages",
        """
CREATE TABLE IF NOT EXISTS terminals (
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',
    state_reason TEXT,
    state_at {REAL},
    last_seen {REAL},
    boot_id TEXT,
    software TEXT,
    firmware TEXT,
    paper TEXT,
    float_balance_fen BIGINT,
    cert_days_left INTEGER,
    outbox_backlog INTEGER,
    health_at {REAL},
    chain_seq BIGINT,
    chain_hash TEXT,
    max_chain_seq BIGINT NOT NULL DEFAULT 0,
    turnover_fen BIGINT,
    acked_seq BIGINT NOT NULL DEFAULT 0,
    last_outbox_at {REAL},
    PRIMARY KEY (station, terminal)
);
CREATE TABLE IF NOT EXISTS boots (
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    first_seen {REAL} NOT NULL,
    last_seen {REAL} NOT NULL,
    PRIMARY KEY (station, terminal, boot_id)
);
CREATE TABLE IF NOT EXISTS health_history (
    id {ID},
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    received {REAL} NOT NULL,
    time TEXT NOT NULL,
    paper TEXT,
    float_balance_fen BIGINT,
    cert_days_left INTEGER,
    outbox_backlog INTEGER,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS health_by_terminal ON health_history (station, terminal, received);
CREATE TABLE IF NOT EXISTS events (
    id {ID},
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    received {REAL} NOT NULL,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_terminal ON events (station, terminal, received);
CREATE TABLE IF NOT EXISTS records (
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    business_day TEXT NOT NULL,
    outcome TEXT,
    service TEXT,
    amount_fen BIGINT NOT NULL DEFAULT 0,
    fee_fen BIGINT NOT NULL DEFAULT 0,
    receipt_no TEXT,
    record TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    received {REAL} NOT NULL,
    prev_seq BIGINT NOT NULL,
    PRIMARY KEY (station, terminal, seq)
);
CREATE INDEX IF NOT EXISTS records_by_day ON records (station, business_day, type);
CREATE TABLE IF NOT EXISTS alerts (
    id {ID},
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    raised {REAL} NOT NULL,
    cleared {REAL},
    acked {REAL},
    acked_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_uncleared ON alerts (station, terminal, kind)
    WHERE cleared IS NULL;
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    sent {REAL} NOT NULL,
    sent_by TEXT NOT NULL,
    expires TEXT NOT NULL,
    payload TEXT NOT NULL,
    result_ok INTEGER,
    result TEXT,
    error TEXT,
    result_at {REAL}
);
CREATE TABLE IF NOT EXISTS rejected (
    id {ID},
    received {REAL} NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL
)
""",
    ),
    Migration(
        2,
        "signatures verified at ingest: station certificates, quarantine, flagged records, "
        "the acknowledged chain head; the terminal's security records",
        """
CREATE TABLE IF NOT EXISTS station_certificates (
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    cert_sha256 TEXT NOT NULL,
    pem TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_after TEXT NOT NULL,
    registered {REAL} NOT NULL,
    registered_by TEXT NOT NULL,
    PRIMARY KEY (station, terminal, cert_sha256)
);
CREATE TABLE IF NOT EXISTS quarantine (
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    record TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    prev_seq BIGINT NOT NULL,
    reason TEXT NOT NULL,
    received {REAL} NOT NULL,
    PRIMARY KEY (station, terminal, seq)
);
ALTER TABLE records ADD COLUMN signature TEXT NOT NULL DEFAULT 'unchecked';
ALTER TABLE records ADD COLUMN tx_id TEXT;
ALTER TABLE records ADD COLUMN awaiting_claim INTEGER NOT NULL DEFAULT 0;
ALTER TABLE terminals ADD COLUMN acked_hash TEXT;
CREATE INDEX IF NOT EXISTS records_by_type ON records (type, station, terminal, tx_id)
""",
    ),
    Migration(
        3,
        "the dashboard's: staff actions, fleet samples, alert notices, revocations",
        """
CREATE TABLE IF NOT EXISTS staff_actions (
    id {ID},
    at {REAL} NOT NULL,
    staff TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    station TEXT,
    terminal TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS staff_actions_by_terminal ON staff_actions (station, terminal, at);
CREATE TABLE IF NOT EXISTS fleet_samples (
    at {REAL} PRIMARY KEY,
    online INTEGER NOT NULL,
    offline INTEGER NOT NULL,
    unknown INTEGER NOT NULL,
    open_alerts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_notices (
    alert_id BIGINT PRIMARY KEY,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due {REAL} NOT NULL,
    sent_at {REAL},
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS alert_notices_due ON alert_notices (state, due);
CREATE TABLE IF NOT EXISTS revocations (
    serial TEXT PRIMARY KEY,
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    revoked {REAL} NOT NULL,
    revoked_by TEXT NOT NULL
)
""",
    ),
    # ---- issue #20 items 4 and 9: rollouts and maintenance visits.
    Migration(
        4,
        "staged rollouts (stages sent, each terminal's fate) and technicians' maintenance visits",
        """
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    target TEXT NOT NULL,
    stages TEXT NOT NULL,
    stages_sent INTEGER NOT NULL DEFAULT 0,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    threshold_percent {REAL} NOT NULL,
    min_sample INTEGER NOT NULL,
    max_starts INTEGER,
    state TEXT NOT NULL,
    state_reason TEXT,
    created {REAL} NOT NULL,
    created_by TEXT NOT NULL,
    halted_at {REAL}
);
CREATE TABLE IF NOT EXISTS rollout_stages (
    rollout TEXT NOT NULL,
    stage INTEGER NOT NULL,
    percent INTEGER NOT NULL,
    sent {REAL} NOT NULL,
    sent_by TEXT NOT NULL,
    terminals INTEGER NOT NULL,
    PRIMARY KEY (rollout, stage)
);
CREATE TABLE IF NOT EXISTS rollout_terminals (
    rollout TEXT NOT NULL,
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    progress TEXT,
    installed {REAL},
    confirmed {REAL},
    rolled_back {REAL},
    rollback_reason TEXT,
    updated {REAL} NOT NULL,
    PRIMARY KEY (rollout, station, terminal)
);
CREATE TABLE IF NOT EXISTS maintenance_visits (
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    seq BIGINT NOT NULL,
    visited TEXT NOT NULL,
    technician TEXT NOT NULL,
    fault TEXT NOT NULL,
    repair TEXT NOT NULL,
    spare_unit TEXT,
    cost_bearer TEXT NOT NULL,
    next_inspection TEXT NOT NULL,
    received {REAL} NOT NULL,
    PRIMARY KEY (station, terminal, seq)
);
CREATE INDEX IF NOT EXISTS maintenance_visits_by_station ON maintenance_visits (station, visited)
""",
    ),
    # ---- issue #18, the station operator's day.
    Migration(
        5,
        "the station registry with its agreement and payee; the follow-up of bad ratings and "
        "complaints",
        """
CREATE TABLE IF NOT EXISTS stations (
    station TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    contact_name TEXT NOT NULL DEFAULT '',
    contact_phone TEXT NOT NULL DEFAULT '',
    joined TEXT NOT NULL,
    agreement_months INTEGER NOT NULL,
    agreement_expires TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    status_reason TEXT NOT NULL DEFAULT '',
    status_at {REAL},
    status_by TEXT,
    post_share INTEGER,
    station_share INTEGER,
    payee_name TEXT NOT NULL DEFAULT '',
    payee_account TEXT NOT NULL DEFAULT '',
    updated {REAL} NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS follow_ups (
    station TEXT NOT NULL,
    terminal TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    time TEXT NOT NULL,
    opened {REAL} NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    handler TEXT,
    handled_at {REAL},
    closed_by TEXT,
    closed_at {REAL},
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (station, terminal, seq)
);
CREATE INDEX IF NOT EXISTS follow_ups_by_state ON follow_ups (state, opened);
CREATE INDEX IF NOT EXISTS records_by_receipt ON records (receipt_no);
CREATE INDEX IF NOT EXISTS records_by_time ON records (type, time)
""",
    ),
)

_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"ID": "INTEGER PRIMARY KEY", "REAL": "REAL"},
    "postgresql": {
        "ID": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "REAL": "DOUBLE PRECISION",
    },
}


def statements(migration: Migration, dialect: Dialect) -> list[str]:
    sql = migration.sql.format(**_TYPES[dialect])
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


def migrate(cursor: "Cursor", dialect: Dialect, now: float) -> list[int]:
    """Apply the migrations this database lacks, in order, in the caller's transaction;
    return the versions applied. On PostgreSQL an advisory lock makes workers starting
    together take turns (SQLite's write transaction already does)."""
    if dialect == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(7301190001)")
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        f"description TEXT NOT NULL, applied {_TYPES[dialect]['REAL']} NOT NULL)"
    )
    done = {row["version"] for row in cursor.execute("SELECT version FROM schema_version")}
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in statements(migration, dialect):
            cursor.execute(statement)
        cursor.execute(
            "INSERT INTO schema_version (version, description, applied) VALUES (?, ?, ?)",
            (migration.version, migration.description, now),
        )
        applied.append(migration.version)
    return applied


def schema_version(cursor: "Cursor") -> int:
    rows = cursor.execute("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
    return int(rows[0]["version"])
