"""Genesis: the state and header of block 0 from a chain spec's genesis config (pure).

The config is plain data (the node parses the JSON chain spec into it): chain parameters,
endowed accounts, the sudo key, the treasury account and each pallet's own section. Every
pallet with a `genesis_build` hook reads its section, so the same spec always gives the same
state root and so the same genesis hash.
"""

from __future__ import annotations

from typing import Any

from runtime.block import Header, compute_extrinsics_root
from runtime.context import BlockContext
from runtime.frame import DispatchError
from runtime.pallets.balances import currency
from runtime.pallets.sudo.storage import Key as SudoKey
from runtime.pallets.system import storage as system
from runtime.pallets.transaction_payment.storage import TreasuryAccount
from runtime.params import ChainParameters
from runtime.storage import MemoryState
from runtime.trie import EMPTY_ROOT, Trie
from runtime.version import LATEST_SPEC_VERSION, UnknownRuntime, get_runtime


class InvalidGenesis(ValueError):
    """A genesis config that cannot make a valid chain (duplicate accounts, balances below the
    existential deposit, unknown spec version...)."""


def build_genesis_state(config: dict[str, Any]) -> dict[bytes, bytes]:
    """All storage of block 0 as raw key -> value."""
    params: ChainParameters = config.get("params") or ChainParameters()
    params.validate()
    spec_version = config.get("spec_version", LATEST_SPEC_VERSION)
    try:
        runtime = get_runtime(spec_version)
    except UnknownRuntime as exc:
        raise InvalidGenesis(str(exc)) from None
    state = MemoryState()
    ctx = BlockContext(state, params)
    state.set(system.ChainParameters.key(), params.to_scale())
    system.SpecVersion.put(state, spec_version)
    seen: set[bytes] = set()
    for account, amount in config.get("balances", []):
        if account in seen:
            raise InvalidGenesis(f"account {account.hex()} is endowed twice")
        seen.add(account)
        if amount < params.existential_deposit:
            raise InvalidGenesis(f"account {account.hex()} is endowed below the existential deposit")
        try:
            currency.deposit_creating(ctx, account, amount, event=False)
        except DispatchError as exc:
            raise InvalidGenesis(f"endowment of {account.hex()} does not fit: {exc}") from None
    if config.get("sudo") is not None:
        SudoKey.put(state, config["sudo"])
    TreasuryAccount.put(state, config.get("treasury", bytes(32)))
    for pallet in runtime.pallets:
        if pallet.genesis_build is not None:
            pallet.genesis_build(ctx, config)
    ctx.events.clear()
    return {k: v for k, v in state.changes.items() if v is not None}


def build_genesis(config: dict[str, Any]) -> tuple[Header, dict[bytes, bytes], dict[bytes, bytes]]:
    """(genesis header, genesis storage, trie nodes) — the header's hash is the genesis hash."""
    storage = build_genesis_state(config)
    empty = Trie(EMPTY_ROOT, lambda _h: None)
    root, nodes = empty.apply(storage)
    header = Header(bytes(32), 0, root, compute_extrinsics_root([]), ())
    return header, storage, nodes
