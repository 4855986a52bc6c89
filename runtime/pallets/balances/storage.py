"""Balances storage items (account balances themselves live in System.Account.data)."""

from runtime.frame import StorageValue
from runtime.types import Balance

TotalIssuance = StorageValue("TotalIssuance", Balance, default=0, docs="The total units issued in the system.")

ITEMS = [TotalIssuance]
