"""kiosk-tool catalog: sign, verify, show and install the catalog of services and fees.

Signing is done by the operator (here with the development key in deploy/dev for tests
and the demo); a terminal only verifies. `show` prints services, amount bounds, the fees
in force on a day and the fee changes announced after it.
"""

import argparse
from datetime import date
from pathlib import Path
from typing import Any

from firmware_tools.tool_language import say, tool_translator
from kiosk.catalog import (
    Catalog,
    CatalogStore,
    FeeRule,
    describe_fee_rule,
    load_signed_catalog,
    parse_catalog,
    public_key_fingerprint,
    shipped_catalog_files,
    shipped_operator_public_pem,
    sign_catalog,
)
from kiosk.catalog.commission import CommissionBasis, CommissionRule
from kiosk.clock import SystemClock
from kiosk.command_line import CommandError, emit
from kiosk.money import format_fen


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(
            "{what} {path} does not exist: check the path", what=what, path=path
        ) from None
    except OSError as exc:
        raise CommandError(
            "cannot read {what} {path}: {problem}", what=what, path=path, problem=exc.strerror
        ) from None


def _day(text: str | None) -> date:
    if text is None:
        return SystemClock().now().date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError("{value!r} is not a date: write it as YYYY-MM-DD", value=text) from None


def _operator_key(args: argparse.Namespace) -> bytes:
    if args.key is None:
        return shipped_operator_public_pem()
    return _read(args.key, "operator public key")


def _sign(args: argparse.Namespace) -> int:
    data = _read(args.input, "catalog")
    # Refuse to sign what no terminal would accept: the operator learns it here, not later.
    catalog = parse_catalog(data)
    sig = sign_catalog(data, _read(args.key, "operator private key"))
    out: Path = args.out or args.input.with_name(args.input.name + ".sig")
    try:
        out.write_bytes(sig)
    except OSError as exc:
        raise CommandError(
            "cannot write signature {path}: {problem}", path=out, problem=exc.strerror
        ) from None
    text = say(
        tool_translator(),
        "signed catalog {version} ({path}) into {out}",
        version=catalog.version,
        path=args.input,
        out=out,
    )
    emit(
        args,
        {"catalog": str(args.input), "signature": str(out), "version": catalog.version},
        text,
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    key = _operator_key(args)
    catalog = load_signed_catalog(_read(args.input, "catalog"), _read(args.sig, "signature"), key)
    fingerprint = public_key_fingerprint(key)
    text = say(
        tool_translator(),
        "{path}: signature good, catalog {version} published {published} with {count} "
        "services (operator key sha256 {fingerprint}...)",
        path=args.input,
        version=catalog.version,
        published=catalog.published.isoformat(),
        count=len(catalog.services),
        fingerprint=fingerprint[:16],
    )
    emit(
        args,
        {
            "valid": True,
            "version": catalog.version,
            "published": catalog.published.isoformat(),
            "services": len(catalog.services),
            "operator_key_sha256": fingerprint,
        },
        text,
    )
    return 0


def _fee_json(rule: FeeRule) -> dict[str, Any]:
    return {
        "effective_from": rule.effective_from.isoformat(),
        "flat_fen": rule.flat_fen,
        "rate_bp": rule.rate_bp,
        "min_fen": rule.min_fen,
        "max_fen": rule.max_fen,
        "description": describe_fee_rule(rule),
    }


def _commission_json(rule: CommissionRule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {
        "effective_from": rule.effective_from.isoformat(),
        "basis": str(rule.basis),
        "fen": rule.fen if rule.basis is CommissionBasis.PER_TRANSACTION else None,
        "per_mille": rule.per_mille_text if rule.basis is CommissionBasis.PER_MILLE else None,
        "description": rule.describe(),
    }


def _show_json(catalog: Catalog, day: date) -> dict[str, Any]:
    services = []
    for service in catalog.services.values():
        in_force = service.fee_rule_on(day)
        upcoming = service.upcoming_fee_change(day)
        services.append(
            {
                "code": service.code,
                "kind": service.kind,
                "name": service.name,
                "biller": service.biller,
                "utility": service.utility,
                "account": {
                    "length": service.account_rule.length,
                    "prefixes": list(service.account_rule.prefixes),
                    "check": service.account_rule.check,
                },
                "min_fen": service.min_fen,
                "max_fen": service.max_fen,
                "allows_overpay": service.allows_overpay,
                "presets_fen": list(service.presets_fen),
                "fee_in_force": _fee_json(in_force) if in_force else None,
                "upcoming_fee_change": _fee_json(upcoming) if upcoming else None,
                "commission_in_force": _commission_json(service.commission_rule_on(day)),
            }
        )
    return {
        "version": catalog.version,
        "published": catalog.published.isoformat(),
        "on": day.isoformat(),
        "services": services,
    }


def _show_text(catalog: Catalog, day: date) -> str:
    t = tool_translator()
    lines = [
        say(
            t,
            "catalog {version} published {published}; fees in force on {day}",
            version=catalog.version,
            published=catalog.published.isoformat(),
            day=day.isoformat(),
        )
    ]
    for service in catalog.services.values():
        rule = service.account_rule
        prefixes = say(t, " or ").join(rule.prefixes) if rule.prefixes else say(t, "any digit")
        check = say(t, ", Luhn check digit") if rule.check == "luhn" else ""
        lines.append(
            say(
                t,
                "{code}  {name}  ({kind}, biller {biller})",
                code=service.code,
                name=service.name,
                kind=t(str(service.kind)),
                biller=service.biller,
            )
        )
        lines.append(
            say(
                t,
                "  number: {length} digits starting with {prefixes}",
                length=rule.length,
                prefixes=prefixes,
            )
            + check
        )
        amounts = say(
            t,
            "{low} to {high}",
            low=format_fen(service.min_fen),
            high=format_fen(service.max_fen),
        )
        if service.allows_overpay:
            amounts += say(t, ", more than the bill allowed")
        if service.presets_fen:
            presets = " ".join(format_fen(p) for p in service.presets_fen)
            amounts += say(t, "; presets {presets}", presets=presets)
        lines.append(say(t, "  amount: {amounts}", amounts=amounts))
        in_force = service.fee_rule_on(day)
        fee = describe_fee_rule(in_force) if in_force else say(t, "not on sale yet")
        lines.append(say(t, "  fee: {fee}", fee=fee))
        upcoming = service.upcoming_fee_change(day)
        if upcoming is not None:
            lines.append(
                say(
                    t,
                    "  announced: from {day} {fee}",
                    day=upcoming.effective_from.isoformat(),
                    fee=describe_fee_rule(upcoming),
                )
            )
        commission = service.commission_rule_on(day)
        if commission is not None:
            lines.append(
                say(
                    t,
                    "  commission: {rule}, split post 3 : station 7",
                    rule=commission.describe(),
                )
            )
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    if args.input is None:
        data, _ = shipped_catalog_files()
    else:
        data = _read(args.input, "catalog")
    catalog = parse_catalog(data)
    day = _day(args.on)
    emit(args, _show_json(catalog, day), _show_text(catalog, day))
    return 0


def _install(args: argparse.Namespace) -> int:
    store = CatalogStore(args.dir, _operator_key(args))
    catalog = store.install(
        _read(args.input, "catalog"), _read(args.sig, "signature"), _day(args.today)
    )
    text = say(
        tool_translator(),
        "catalog {version} installed in {path} and in force",
        version=catalog.version,
        path=args.dir,
    )
    emit(
        args,
        {"installed": True, "version": catalog.version, "directory": str(args.dir)},
        text,
    )
    return 0


def register(groups: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = groups.add_parser("catalog", help="sign, verify, show and install service catalogs")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    sign = sub.add_parser("sign", help="sign a catalog with the operator's private key")
    sign.add_argument("--key", type=Path, required=True, help="operator private key (PEM)")
    sign.add_argument("--in", dest="input", type=Path, required=True, metavar="CATALOG")
    sign.add_argument("--out", type=Path, help="signature file (default: CATALOG.sig)")
    sign.add_argument("--json", action="store_true")
    sign.set_defaults(handler=_sign)

    verify = sub.add_parser("verify", help="check a catalog's signature and contents")
    verify.add_argument("--in", dest="input", type=Path, required=True, metavar="CATALOG")
    verify.add_argument("--sig", type=Path, required=True, help="its signature file")
    verify.add_argument("--key", type=Path, help="operator public key (default: shipped one)")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_verify)

    show = sub.add_parser("show", help="services, bounds, fees in force and announced changes")
    show.add_argument("--in", dest="input", type=Path, metavar="CATALOG", help="default: shipped")
    show.add_argument("--on", metavar="YYYY-MM-DD", help="the day whose fees to show (today)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    install = sub.add_parser("install", help="install a signed catalog into a terminal's store")
    install.add_argument("--dir", type=Path, required=True, help="store: <data_dir>/catalog")
    install.add_argument("--in", dest="input", type=Path, required=True, metavar="CATALOG")
    install.add_argument("--sig", type=Path, required=True, help="its signature file")
    install.add_argument("--key", type=Path, help="operator public key (default: shipped one)")
    install.add_argument("--today", metavar="YYYY-MM-DD", help="the terminal's date (today)")
    install.add_argument("--json", action="store_true")
    install.set_defaults(handler=_install)
