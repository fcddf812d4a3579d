"""Versioned, expand-only SQLite schemas of the terminal's databases, and their runner.

Owns the rule every terminal database follows: its schema is an ordered history of
migrations (Database), `PRAGMA user_version` records how far it went, and opening it runs
the missing migrations in one transaction each. A migration only expands: it creates a table
or an index, or adds a column that is nullable or has a default. So the software of the
previous A/B slot, after a rollback, still runs against a database the newer slot moved:
a database newer than the code is opened as it is (logged) and its user_version is never
lowered. `expand_only_problems` enforces the rule on a registered history with SQLite itself
as the parser (tests/test_schema_expand_only.py runs it over every registered database).

Not shared with backoffice/migrations.py on purpose: the back office records its history
in a table and runs on PostgreSQL too; here each database is one SQLite file whose header
already has the slot for the version (user_version), and an unversioned database of an
earlier release is adopted. Written by hand rather than with a migration tool (alembic,
yoyo): these need SQLAlchemy or a table of their own and know nothing of SQLite's
user_version, adoption or an expand-only check; the whole rule is this module.
"""

import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from kiosk.storage import write_transaction

log = logging.getLogger(__name__)


class SchemaError(Exception):
    """A history that breaks the rules (a bug in this software, never input)."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str  # SQLite statements separated by ";" (a trigger's body may hold more)


@dataclass(frozen=True)
class Database:
    """One SQLite file's schema history, named for the technician (diagnose shows it)."""

    name: str
    migrations: tuple[Migration, ...]
    # Objects of releases before versioning that no query uses any more, dropped once when
    # an unversioned database is adopted: each a "DROP INDEX IF EXISTS" or "DROP TABLE IF
    # EXISTS" of something no versioned release reads or writes.
    retired: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        numbers = [m.version for m in self.migrations]
        if numbers != list(range(1, len(numbers) + 1)):
            raise SchemaError(f"{self.name}: migrations must be numbered 1, 2, 3...: {numbers}")
        for statement in self.retired:
            if not _RETIRED.fullmatch(statement):
                raise SchemaError(f"{self.name}: a retired object is dropped IF EXISTS only")

    @property
    def version(self) -> int:
        """The version this software brings the database to."""
        return len(self.migrations)

    def extended(self, migration: Migration) -> "Database":
        """This history with one more migration, under the same name (a later release)."""
        return Database(self.name, (*self.migrations, migration), self.retired)

    def migrate(self, conn: sqlite3.Connection) -> int:
        """Bring the database on conn up to this history; return its version now.

        Cheap when nothing is missing (one PRAGMA): every module of a database calls it
        from its constructor, so any one of them opens a usable database.
        """
        return migrate(conn, self)


_REGISTERED: dict[str, Database] = {}
_RETIRED = re.compile(r"DROP (INDEX|TABLE) IF EXISTS \w+")
_ADD_COLUMN = re.compile(r"^ALTER\s+TABLE\s+(\w+)\s+ADD\s+(?:COLUMN\s+)?(\w+)\b(.*)$", re.I | re.S)
_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*\(", re.I)
_CREATE_INDEX = re.compile(
    r"^CREATE\s+(UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+ON\s+(\w+)\s*\(", re.I
)
_CREATE_TRIGGER = re.compile(
    r"^CREATE\s+TRIGGER\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+(?:BEFORE|AFTER)\s+"
    r"(?:INSERT|UPDATE|DELETE)\s+ON\s+(\w+)\b",
    re.I,
)
# Constraints an added column may not carry: each can refuse a row the previous release
# writes, or SQLite refuses it on ADD COLUMN anyway.
_NARROWING = re.compile(r"\b(PRIMARY|UNIQUE|CHECK|REFERENCES|GENERATED|AS)\b", re.I)
_newer_logged: set[tuple[str, int]] = set()
_newer_lock = threading.Lock()


def register(database: Database) -> Database:
    """Name database as one the terminal ships (the expand-only test checks each)."""
    known = _REGISTERED.setdefault(database.name, database)
    if known is not database:
        raise SchemaError(f"two databases are named {database.name!r}")
    return database


def registered() -> dict[str, Database]:
    """Every Database registered so far, by name (those of the modules imported)."""
    return dict(_REGISTERED)


def statements(sql: str) -> list[str]:
    """The statements of sql without comments, split where SQLite says one is complete
    (sqlite3.complete_statement: a trigger's body keeps its own semicolons)."""
    found: list[str] = []
    pending = ""
    for piece in _strip_comments(sql).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            text = pending.strip().rstrip(";").strip()
            if text:
                found.append(text)
            pending = ""
    if pending.strip(" \n\t;"):
        raise SchemaError(f"an incomplete statement: {pending.strip()[:60]!r}")
    return found


def _strip_comments(sql: str) -> str:
    # Our migrations hold no string literal with "--" in it; the checker runs every
    # statement through SQLite, which would refuse what this cut wrongly.
    return re.sub(r"--[^\n]*", "", sql)


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _has_tables(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchone()
    return found is not None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_xinfo({table})")}


def _file_of(conn: sqlite3.Connection) -> str:
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2]) or ":memory:"
    return "?"


def migrate(conn: sqlite3.Connection, database: Database) -> int:
    """Run the migrations the database on conn lacks, one write transaction each.

    A database at user_version 0 that already has tables was made before versioning: it is
    adopted, i.e. the history runs over it with "add column" skipped where the column is
    there (those releases added columns when missing) and the retired objects dropped. A
    database newer than this history (the previous slot after a rollback) is left as it is.
    """
    found = user_version(conn)
    if found >= database.version:
        if found > database.version:
            _log_newer(conn, database, found)
        return found
    adopting = found == 0 and _has_tables(conn)
    for migration in database.migrations[found:]:
        with write_transaction(conn):
            # Another connection (the telemetry client's) may have moved it meanwhile.
            now = user_version(conn)
            if now >= migration.version:
                continue
            if adopting and now == 0:
                for statement in database.retired:
                    conn.execute(statement)
            for statement in statements(migration.sql):
                added = _ADD_COLUMN.match(statement)
                if adopting and added and added[2] in _columns(conn, added[1]):
                    continue
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        log.info(
            "%s database (%s): schema %d (%s)%s",
            database.name,
            _file_of(conn),
            migration.version,
            migration.description,
            ", adopted from before versioning" if adopting else "",
        )
    return user_version(conn)


def _log_newer(conn: sqlite3.Connection, database: Database, found: int) -> None:
    key = (f"{database.name}:{_file_of(conn)}", found)
    with _newer_lock:
        if key in _newer_logged:
            return
        _newer_logged.add(key)
    log.warning(
        "%s database (%s) is at schema %d, newer than this software's %d (a rollback to the "
        "previous slot): opened as it is, migrations are expand-only",
        database.name,
        _file_of(conn),
        found,
        database.version,
    )


# ---------------------------------------------------------------- the expand-only rule


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int


def shape_of(conn: sqlite3.Connection) -> dict[str, object]:
    """Every table's columns and every index's and trigger's SQL, as SQLite holds them."""
    shape: dict[str, object] = {}
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    for kind, name, sql in rows:
        if kind == "table":
            shape[f"table {name}"] = tuple(
                _Column(str(r[1]), str(r[2]), bool(r[3]), r[4], int(r[5]))
                for r in conn.execute(f"PRAGMA table_xinfo({name})")
            )
        else:
            shape[f"{kind} {name}"] = sql
    return shape


def _statement_problems(migration: Migration, statement: str, new_tables: set[str]) -> list[str]:
    """What is wrong with one statement of migration, by its form."""
    where = f"migration {migration.version}: {statement[:70]!r}"
    if created := _CREATE_TABLE.match(statement):
        new_tables.add(created[1].lower())
        return []
    if index := _CREATE_INDEX.match(statement):
        if index[1] and index[3].lower() not in new_tables and migration.version > 1:
            return [f"{where}: a unique index on an existing table can refuse old rows"]
        return []
    if trigger := _CREATE_TRIGGER.match(statement):
        if trigger[2].lower() not in new_tables and migration.version > 1:
            return [f"{where}: a trigger on an existing table changes what old code may do"]
        return []
    if added := _ADD_COLUMN.match(statement):
        rest = added[3]
        problems = []
        if re.search(r"\bNOT\s+NULL\b", rest, re.I) and not re.search(r"\bDEFAULT\b", rest, re.I):
            problems.append(f"{where}: NOT NULL without DEFAULT refuses the old code's inserts")
        if narrowing := _NARROWING.search(rest):
            problems.append(f"{where}: an added column may not be {narrowing[1].upper()}")
        return problems
    return [
        f"{where}: not expand-only; a migration may only CREATE TABLE/INDEX IF NOT EXISTS "
        "or ALTER TABLE ... ADD COLUMN (nullable or with a DEFAULT)"
    ]


def _shape_problems(
    migration: Migration, before: dict[str, object], after: dict[str, object]
) -> Iterator[str]:
    """What the migration did, seen in SQLite's own schema, that an older release cannot bear."""
    where = f"migration {migration.version}"
    for name, old in before.items():
        new = after.get(name)
        if new is None:
            yield f"{where}: {name} is gone"
        elif name.startswith("table "):
            assert isinstance(old, tuple) and isinstance(new, tuple)
            if new[: len(old)] != old:
                yield f"{where}: {name} changed its existing columns"
            for column in new[len(old) :]:
                if column.notnull and column.default is None:
                    yield f"{where}: {name} got {column.name} NOT NULL without a default"
                if column.pk:
                    yield f"{where}: {name} got {column.name} in its primary key"
        elif new != old:
            yield f"{where}: {name} was changed"
    if before == after and migration.version > 1:
        yield f"{where}: changes nothing (already done by an earlier migration?)"


def expand_only_problems(database: Database) -> list[str]:
    """Every way the history breaks the expand-only rule; [] when it keeps it.

    Each migration is checked by its statements' form, then applied with the real SQLite
    to the schema of the migrations before it and compared: everything that existed must
    be there unchanged, with only new tables, indexes, triggers of new tables, and trailing
    columns that are nullable or have a default. Version 1 is the adopted baseline: its
    triggers and unique indexes are on the tables it creates itself.
    """
    problems: list[str] = []
    scratch = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for migration in database.migrations:
            new_tables: set[str] = set()
            try:
                parts = statements(migration.sql)
            except SchemaError as exc:
                problems.append(f"migration {migration.version}: {exc}")
                continue
            if not parts:
                problems.append(f"migration {migration.version}: has no statement")
            for statement in parts:
                problems.extend(_statement_problems(migration, statement, new_tables))
            before = shape_of(scratch)
            try:
                scratch.execute("BEGIN")
                for statement in parts:
                    scratch.execute(statement)
                scratch.execute("COMMIT")
            except sqlite3.Error as exc:
                scratch.execute("ROLLBACK")
                problems.append(f"migration {migration.version}: SQLite refused it: {exc}")
                continue
            problems.extend(_shape_problems(migration, before, shape_of(scratch)))
    finally:
        scratch.close()
    return problems
