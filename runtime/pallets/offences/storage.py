"""Offences storage: the offences already reported, so a second report of one is refused."""

from runtime.codec.scale import H256
from runtime.frame import StorageMap, StorageValue
from runtime.types import BlockNumber

Reports = StorageMap("Reports", [("Identity", H256)], BlockNumber,
                     docs="The block at which each offence (by its id) was reported.")

ITEMS: list[StorageValue] = [Reports]
