"""Sudo storage items."""

from runtime.frame import StorageValue
from runtime.types import AccountId

Key = StorageValue("Key", AccountId, docs="The `AccountId` of the sudo key.")

ITEMS = [Key]
