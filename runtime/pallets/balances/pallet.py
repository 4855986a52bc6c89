"""Balances pallet declaration."""

from runtime.frame import Pallet
from runtime.pallets.balances import storage
from runtime.pallets.balances.calls import CALLS
from runtime.pallets.balances.errors import ERRORS
from runtime.pallets.balances.events import EVENTS
from runtime.pallets.indices import BALANCES
from runtime.types import Balance

PALLET = Pallet(
    name="Balances",
    index=BALANCES,
    calls=CALLS,
    storage=storage.ITEMS,
    events=EVENTS,
    errors=ERRORS,
    constants=[("ExistentialDeposit", Balance, lambda params: params.existential_deposit,
                "The minimum amount required to keep an account open.")],
)
