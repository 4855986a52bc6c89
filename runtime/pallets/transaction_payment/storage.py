"""Transaction payment storage items."""

from runtime.frame import StorageValue
from runtime.types import AccountId

# Where the treasury's share of every fee goes (set at genesis; a plain account for now).
TreasuryAccount = StorageValue("TreasuryAccount", AccountId, default=bytes(32), docs="The account receiving the treasury share of fees.")

ITEMS = [TreasuryAccount]
