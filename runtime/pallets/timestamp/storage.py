"""Timestamp storage items."""

from runtime.codec.scale import boolean
from runtime.frame import StorageValue
from runtime.types import Moment

Now = StorageValue("Now", Moment, default=0, docs="The current time for the current block (ms since the Unix epoch).")
DidUpdate = StorageValue("DidUpdate", boolean, default=False, docs="Whether the timestamp has been updated in this block.")

ITEMS = [Now, DidUpdate]
