"""kiosk-tool journal: export a terminal's journal as JSON Lines and verify an export.

export reads the database read-only (no token needed), so a technician can take it while
the terminal runs. verify checks an export against the station certificate (and the
operator CA, and the head the back office acknowledged) exactly as docs/journal-format.md
describes; it never needs the terminal or its database.
"""

import argparse
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from firmware_tools.tool_language import say, say_text, tool_translator
from kiosk.command_line import CommandError, emit
from kiosk.config import load_config
from kiosk.journal import JournalError, export_jsonl, verify_jsonl
from kiosk.journal.verify import parse_head


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise CommandError(
            "terminal database {path} does not exist: check data_dir in the configuration",
            path=path,
        )
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("SELECT 1 FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise CommandError(
            "cannot read terminal database {path}: {problem}", path=path, problem=str(exc)
        ) from None
    return conn


def _export(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    conn = _open_read_only(config.database_path)
    try:
        if args.out == "-":
            export_jsonl(conn, sys.stdout, upto=args.upto)
            return 0
        out = Path(args.out)
        partial = out.with_name(out.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="\n") as handle:
                count = export_jsonl(conn, handle, upto=args.upto)
            # Renamed only when complete: a half-written export never looks like a journal.
            os.replace(partial, out)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(
                "cannot write {path}: {problem}", path=out, problem=exc.strerror
            ) from None
        except JournalError:
            partial.unlink(missing_ok=True)
            raise
    finally:
        conn.close()
    t = tool_translator()
    text = say(t, "exported {count} records to {path}", count=count, path=out)
    emit(args, {"records": count, "out": str(out)}, text)
    return 0


def _lines(handle: BinaryIO) -> Iterator[str]:
    for line_no, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(
                "journal unsound at line {line}: it is not UTF-8 text (the export is damaged)",
                line=line_no,
            ) from None


def _read_cert(path: Path, what: str = "certificate") -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(
            "cannot read {what} {path}: {problem}", what=what, path=path, problem=exc.strerror
        ) from None


def _verify(args: argparse.Namespace) -> int:
    cert_pem = _read_cert(args.cert)
    ca_pem = None if args.ca is None else _read_cert(args.ca, "CA certificate")
    head = None if args.expect_head is None else parse_head(args.expect_head)
    try:
        with args.file.open("rb") as handle:
            report = verify_jsonl(_lines(handle), cert_pem, ca_pem=ca_pem, expect_head=head)
    except OSError as exc:
        raise CommandError(
            "cannot read journal export {path}: {problem}", path=args.file, problem=exc.strerror
        ) from None
    data = {
        "ok": report.ok,
        "records": report.records,
        "first_bad_seq": report.first_bad_seq,
        "problem": report.problem,
        "warnings": list(report.warnings),
        "head": report.head,
    }
    if args.json:
        emit(args, data, "")
        return 0 if report.ok else 1
    if not report.ok:
        if report.first_bad_seq is None:
            raise CommandError(
                "journal unsound: {problem}; keep the export and the terminal as they are "
                "and report it",
                problem=report.problem,
            )
        raise CommandError(
            "journal unsound at record {seq}: {problem}; keep the export and the terminal as "
            "they are and report it",
            seq=report.first_bad_seq,
            problem=report.problem,
        )
    t = tool_translator()
    print(
        say(
            t, "journal sound: {count} records, head {head}", count=report.records, head=report.head
        )
    )
    for warning in report.warnings:
        print(say(t, "warning: {warning}", warning=say_text(t, warning)))
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("journal", help="export the signed journal and verify an export")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    export = sub.add_parser(
        "export", help="write the journal as JSON Lines (reads the database read-only)"
    )
    export.add_argument("--config", type=Path, required=True, help="terminal configuration file")
    export.add_argument("--out", required=True, metavar="FILE", help="output file, - for stdout")
    export.add_argument(
        "--upto",
        type=_record_number,
        metavar="SEQ",
        help="stop at record SEQ (the head the back office acknowledged, for --expect-head)",
    )
    export.add_argument("--json", action="store_true", help="print the result as JSON")
    export.set_defaults(handler=_export)

    verify = sub.add_parser("verify", help="check an export's numbering, hash chain and signatures")
    verify.add_argument("file", type=Path, metavar="FILE", help="journal export (JSON Lines)")
    verify.add_argument(
        "--cert",
        type=Path,
        required=True,
        help="station certificate (PEM; may hold several, e.g. before and after a renewal)",
    )
    verify.add_argument(
        "--ca",
        type=Path,
        metavar="CA_PEM",
        help="operator CA certificate(s): each station certificate must chain to it",
    )
    verify.add_argument(
        "--expect-head",
        metavar="SEQ:HASH",
        help="the last record the export must end with (the back office's last acknowledged)",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=_verify)


def _record_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            say(tool_translator(), "{value!r} is not a record number (1, 2, 3 ...)", value=text)
        )
    return int(text)
