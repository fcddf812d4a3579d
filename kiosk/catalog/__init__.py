"""The catalog of services and fees: signed, versioned data published by the operator.

Owns which services the terminal offers, what a valid account number and amount are, and
the only fees a customer may be charged (seed 002). Adding a service is a new catalog, not
new code: nothing outside this package may branch on a service code. Format, signing and
install rules: docs/catalog.md.
"""

from kiosk.catalog.account_rules import AccountInvalid, AccountRule, luhn_check_digit, luhn_valid
from kiosk.catalog.fees import FEE_NOTICE_WORKING_DAYS, FeeRule, earliest_fee_change
from kiosk.catalog.model import (
    CATALOG_FORMAT,
    KINDS,
    Catalog,
    CatalogError,
    Service,
    UnknownService,
    describe_fee_rule,
    parse_catalog,
    version_key,
)
from kiosk.catalog.signed import public_key_fingerprint, sign_catalog, verify_catalog_signature
from kiosk.catalog.store import (
    CatalogStore,
    check_fee_notice,
    load_signed_catalog,
    shipped_catalog_files,
    shipped_operator_public_pem,
)

__all__ = [
    "CATALOG_FORMAT",
    "FEE_NOTICE_WORKING_DAYS",
    "KINDS",
    "AccountInvalid",
    "AccountRule",
    "Catalog",
    "CatalogError",
    "CatalogStore",
    "FeeRule",
    "Service",
    "UnknownService",
    "check_fee_notice",
    "describe_fee_rule",
    "earliest_fee_change",
    "load_signed_catalog",
    "luhn_check_digit",
    "luhn_valid",
    "parse_catalog",
    "public_key_fingerprint",
    "shipped_catalog_files",
    "shipped_operator_public_pem",
    "sign_catalog",
    "verify_catalog_signature",
    "version_key",
]
