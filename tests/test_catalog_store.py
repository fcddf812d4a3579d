"""Installing catalogs on a terminal: only signed, newer, fairly announced ones; atomically."""

import copy
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.catalog import (
    CatalogError,
    CatalogStore,
    shipped_catalog_files,
    shipped_operator_public_pem,
    sign_catalog,
)

REPO = Path(__file__).resolve().parents[1]
DEV_KEY = (REPO / "tests" / "keys" / "operator-dev-key.pem").read_bytes()
TODAY = date(2026, 11, 23)  # a Monday; the shipped catalog 2026.11 was published 2026-11-16
NOTICE_ENDS = "2026-11-30"  # published 2026-11-23 + 5 working days


def catalog_bytes(
    version: str = "2026.12",
    published: str = "2026-11-23",
    change: Callable[[dict[str, Any]], None] | None = None,
) -> bytes:
    document: dict[str, Any] = copy.deepcopy(json.loads(shipped_catalog_files()[0]))
    document.update(version=version, published=published)
    if change is not None:
        change(document)
    return json.dumps(document, indent=2).encode()


def signed(data: bytes, key: bytes = DEV_KEY) -> tuple[bytes, bytes]:
    return data, sign_catalog(data, key)


def service(document: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in document["services"] if s["code"] == code)
    return found


def fee(day: str, flat_fen: int) -> dict[str, Any]:
    return {
        "effective_from": day,
        "flat_fen": flat_fen,
        "rate_bp": 0,
        "min_fen": 0,
        "max_fen": flat_fen,
    }


@pytest.fixture
def store(tmp_path: Path) -> CatalogStore:
    return CatalogStore(tmp_path / "catalog", shipped_operator_public_pem())


def test_a_new_terminal_uses_the_shipped_catalog(store: CatalogStore) -> None:
    assert store.current().version == "2026.11.1"
    assert store.installed() is None


def test_a_signed_newer_catalog_is_installed_and_in_force(store: CatalogStore) -> None:
    installed = store.install(*signed(catalog_bytes()), today=TODAY)
    assert installed.version == "2026.12"
    assert store.current().version == "2026.12"
    assert (store.directory / "current").read_text() == "2026.12\n"
    assert (store.directory / "catalog-2026.12.json").read_bytes() == catalog_bytes()


def test_the_installed_catalog_is_in_force_after_a_restart(store: CatalogStore) -> None:
    store.install(*signed(catalog_bytes()), today=TODAY)
    restarted = CatalogStore(store.directory, shipped_operator_public_pem())
    assert restarted.current().version == "2026.12"


def _refused_and_unchanged(store: CatalogStore, data: bytes, sig: bytes, message: str) -> None:
    before = store.current().version
    with pytest.raises(CatalogError, match=message) as caught:
        store.install(data, sig, today=TODAY)
    assert "\n" not in str(caught.value)
    assert store.current().version == before
    assert CatalogStore(store.directory, shipped_operator_public_pem()).current().version == before


def test_an_unsigned_catalog_is_refused_and_the_last_good_stays(store: CatalogStore) -> None:
    store.install(*signed(catalog_bytes()), today=TODAY)
    _refused_and_unchanged(store, catalog_bytes("2027.1"), b"", "has no signature")


def test_a_tampered_catalog_is_refused_and_the_last_good_stays(store: CatalogStore) -> None:
    store.install(*signed(catalog_bytes()), today=TODAY)
    data, sig = signed(catalog_bytes("2027.1"))
    tampered = data.replace(b'"flat_fen": 100', b'"flat_fen": 900')
    assert tampered != data
    _refused_and_unchanged(store, tampered, sig, "signature does not match")


def test_a_catalog_signed_by_another_key_is_refused(store: CatalogStore) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _refused_and_unchanged(store, *signed(catalog_bytes(), stranger), "signature does not match")


def test_a_signed_but_malformed_catalog_is_refused(store: CatalogStore) -> None:
    data = catalog_bytes(change=lambda d: service(d, "gas-bill").update(min_fen=-5))
    _refused_and_unchanged(store, *signed(data), r"services\[2\] \(gas-bill\).min_fen is -5")


@pytest.mark.parametrize("version", ["2026.11", "2026.11.0", "2026.10", "2025.12.9"])
def test_a_version_not_newer_than_the_one_in_force_is_refused(
    store: CatalogStore, version: str
) -> None:
    _refused_and_unchanged(
        store,
        *signed(catalog_bytes(version)),
        f"version {version} is not newer than version 2026.11",
    )


def test_versions_must_keep_growing_after_each_install(store: CatalogStore) -> None:
    store.install(*signed(catalog_bytes("2026.12")), today=TODAY)
    _refused_and_unchanged(
        store, *signed(catalog_bytes("2026.12")), "not newer than version 2026.12"
    )
    store.install(*signed(catalog_bytes("2026.12.1")), today=TODAY)
    assert store.current().version == "2026.12.1"


def test_a_fee_change_announced_five_working_days_ahead_is_accepted(store: CatalogStore) -> None:
    data = catalog_bytes(
        change=lambda d: service(d, "gas-bill")["fees"].append(fee(NOTICE_ENDS, 30))
    )
    catalog = store.install(*signed(data), today=TODAY)
    gas = catalog.service("gas-bill")
    assert gas.fee_on(date(2026, 11, 27), 10_000) == 0
    assert gas.fee_on(date(2026, 11, 30), 10_000) == 30


def test_a_fee_change_announced_too_late_is_refused(store: CatalogStore) -> None:
    data = catalog_bytes(
        change=lambda d: service(d, "gas-bill")["fees"].append(fee("2026-11-27", 30))
    )
    _refused_and_unchanged(
        store,
        *signed(data),
        "announces a gas-bill fee from 2026-11-27 too late: published 2026-11-23, fees may "
        "change 5 working days later at the earliest, on 2026-11-30",
    )


def test_rewriting_a_fee_already_in_force_is_refused(store: CatalogStore) -> None:
    data = catalog_bytes(
        change=lambda d: service(d, "catv-bill").update(fees=[fee("2024-01-01", 50)])
    )
    _refused_and_unchanged(store, *signed(data), "catv-bill fee from 2024-01-01 too late")


def test_withdrawing_the_fee_in_force_without_notice_is_refused(store: CatalogStore) -> None:
    data = catalog_bytes(
        change=lambda d: service(d, "catv-bill").update(fees=[fee(NOTICE_ENDS, 100)])
    )
    _refused_and_unchanged(
        store, *signed(data), "changes the catv-bill fee in force on 2026-11-23 without notice"
    )


def test_cancelling_an_announced_change_well_ahead_is_accepted(store: CatalogStore) -> None:
    data = catalog_bytes(change=lambda d: service(d, "water-bill")["fees"].pop())
    catalog = store.install(*signed(data), today=TODAY)
    assert catalog.service("water-bill").upcoming_fee_change(TODAY) is None


def test_a_new_service_goes_on_sale_after_the_notice_period(store: CatalogStore) -> None:
    def add_newspaper(fees: list[dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
        def change(document: dict[str, Any]) -> None:
            newspaper = copy.deepcopy(service(document, "telecom-bill"))
            newspaper.update(code="newspaper-bill", name="Newspaper subscription", fees=fees)
            document["services"].append(newspaper)

        return change

    _refused_and_unchanged(
        store,
        *signed(catalog_bytes(change=add_newspaper([fee("2026-11-23", 0)]))),
        "newspaper-bill fee from 2026-11-23 too late",
    )
    catalog = store.install(
        *signed(catalog_bytes(change=add_newspaper([fee(NOTICE_ENDS, 0)]))), today=TODAY
    )
    assert catalog.service("newspaper-bill").fee_on(date(2026, 11, 30), 1_000) == 0


def test_a_catalog_published_after_today_is_refused(store: CatalogStore) -> None:
    _refused_and_unchanged(
        store,
        *signed(catalog_bytes(published="2026-11-24")),
        "after today .* check the terminal's date",
    )


def test_the_installed_catalog_is_verified_again_when_loaded(store: CatalogStore) -> None:
    store.install(*signed(catalog_bytes()), today=TODAY)
    document = store.directory / "catalog-2026.12.json"
    document.write_bytes(document.read_bytes().replace(b'"flat_fen": 100', b'"flat_fen": 900'))
    restarted = CatalogStore(store.directory, shipped_operator_public_pem())
    with pytest.raises(CatalogError, match="installed catalog '2026.12' .* fails its check"):
        restarted.current()


def test_a_correctly_signed_catalog_repairs_a_damaged_store(store: CatalogStore) -> None:
    store.install(*signed(catalog_bytes()), today=TODAY)
    (store.directory / "catalog-2026.12.json.sig").write_bytes(b"")
    restarted = CatalogStore(store.directory, shipped_operator_public_pem())
    with pytest.raises(CatalogError):
        restarted.current()
    restarted.install(*signed(catalog_bytes("2026.12.1")), today=TODAY)
    assert restarted.current().version == "2026.12.1"


def test_an_interrupted_install_leaves_the_previous_catalog_in_force(store: CatalogStore) -> None:
    store.install(*signed(catalog_bytes()), today=TODAY)
    # A crash after the new files were written but before the pointer moved.
    data, sig = signed(catalog_bytes("2027.1"))
    (store.directory / "catalog-2027.1.json").write_bytes(data)
    (store.directory / "catalog-2027.1.json.sig").write_bytes(sig)
    (store.directory / "current.tmp").write_bytes(b"2027")
    assert (
        CatalogStore(store.directory, shipped_operator_public_pem()).current().version == "2026.12"
    )
    store.install(data, sig, today=TODAY)  # and the same install succeeds when retried
    assert store.current().version == "2027.1"


def test_a_newer_shipped_catalog_replaces_an_older_installed_one(store: CatalogStore) -> None:
    # As after a software update that ships a newer catalog than the one installed.
    data, sig = signed(catalog_bytes("2026.1", published="2026-01-05"))
    store.directory.mkdir(parents=True)
    (store.directory / "catalog-2026.1.json").write_bytes(data)
    (store.directory / "catalog-2026.1.json.sig").write_bytes(sig)
    (store.directory / "current").write_text("2026.1\n")
    assert store.installed() is not None
    assert store.current().version == "2026.11.1"


def test_a_terminal_trusting_another_operator_refuses_the_shipped_catalog(tmp_path: Path) -> None:
    operator = ec.generate_private_key(ec.SECP256R1())
    private = operator.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = operator.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    store = CatalogStore(tmp_path / "catalog", public)
    with pytest.raises(CatalogError, match="shipped with the software cannot be used"):
        store.current()
    # Its own operator's catalog is accepted: there is no fee in force to protect yet.
    store.install(*signed(catalog_bytes("1"), private), today=TODAY)
    assert store.current().version == "1"
