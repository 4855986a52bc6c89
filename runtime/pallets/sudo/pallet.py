"""Sudo pallet declaration (one per runtime: its calls carry that runtime's RuntimeCall)."""

from typing import Any

from runtime.frame import Pallet
from runtime.pallets.indices import SUDO
from runtime.pallets.sudo import storage
from runtime.pallets.sudo.calls import make_calls
from runtime.pallets.sudo.errors import ERRORS
from runtime.pallets.sudo.events import EVENTS


def make_pallet(call_type: Any, runtime_ref: dict[str, Any]) -> Pallet:
    return Pallet(name="Sudo", index=SUDO, calls=make_calls(call_type, runtime_ref), storage=storage.ITEMS,
                  events=EVENTS, errors=ERRORS)
