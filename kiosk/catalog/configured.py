"""The catalog store of a configured terminal: its directory under the data path and the
operator key that verifies what is installed there (the configured one, else the shipped
development key)."""

from pathlib import Path

from kiosk.catalog.store import CatalogStore, shipped_operator_public_pem
from kiosk.config import Config


def catalog_provider(config: Config) -> CatalogStore:
    key_file = config.business.operator_key_file
    operator_key = Path(key_file).read_bytes() if key_file else shipped_operator_public_pem()
    return CatalogStore(config.data_path / "catalog", operator_key)
