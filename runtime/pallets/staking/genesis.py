"""Staking's part of genesis: bond the chain spec's validators, declare them with their session
keys, store the era-0 set (top `max_validators` of them by bond) and seed the randomness of
eras 0 and 1 from their session keys.

config["validators"]: a list of {"account": 32 bytes, "session_key": 32 bytes, "bond": int,
optional "commission": Perbill parts}. Each account must already be endowed by Balances.
"""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.pallets.staking import storage
from runtime.pallets.staking.ledger import apply_bond
from runtime.pallets.staking.randomness import apply_genesis_randomness
from runtime.pallets.staking.types import PERBILL
from runtime.pallets.staking.validators import apply_validate, elect_validators
from runtime.pallets.system.account import get_account


def _invalid(message: str) -> Exception:
    """runtime.genesis.InvalidGenesis, imported when needed: runtime.genesis imports the runtime
    table, which imports this pallet."""
    from runtime.genesis import InvalidGenesis

    return InvalidGenesis(message)


def _is_bytes32(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray)) and len(value) == 32


def validate_genesis_validator(ctx: BlockContext, entry: Any, seen_accounts: set[bytes], seen_keys: set[bytes]) -> None:
    """Verify that one genesis validator is well formed, unique, endowed and above the minimum bond."""
    if not isinstance(entry, dict) or not _is_bytes32(entry.get("account")) or not _is_bytes32(entry.get("session_key")):
        raise _invalid("a genesis validator needs a 32-byte account and a 32-byte session_key")
    account, key, bond = bytes(entry["account"]), bytes(entry["session_key"]), entry.get("bond")
    if account in seen_accounts or key in seen_keys:
        raise _invalid(f"genesis validator {account.hex()} or its session key is listed twice")
    if not isinstance(bond, int) or isinstance(bond, bool) or bond < ctx.params.min_validator_bond:
        raise _invalid(f"genesis validator {account.hex()} bonds less than min_validator_bond")
    commission = entry.get("commission", 0)
    if not isinstance(commission, int) or not 0 <= commission <= PERBILL:
        raise _invalid(f"genesis validator {account.hex()}: commission must be within 0..={PERBILL}")
    record = get_account(ctx.state, account)
    if record.providers == 0 or record.free < bond:
        raise _invalid(f"genesis validator {account.hex()} is not endowed with its bond")


def genesis_build(ctx: BlockContext, config: dict[str, Any]) -> None:
    validators = config.get("validators") or []
    if not validators:
        return
    seen_accounts: set[bytes] = set()
    seen_keys: set[bytes] = set()
    for entry in validators:
        validate_genesis_validator(ctx, entry, seen_accounts, seen_keys)
        account, key = bytes(entry["account"]), bytes(entry["session_key"])
        seen_accounts.add(account)
        seen_keys.add(key)
        apply_bond(ctx, account, entry["bond"], ("Staked", None))
        apply_validate(ctx, account, {"commission": entry.get("commission", 0), "blocked": False}, key)
    state = ctx.state
    storage.ValidatorCount.put(state, ctx.params.max_validators)
    storage.MinValidatorBond.put(state, ctx.params.min_validator_bond)
    storage.CurrentEra.put(state, 0)
    storage.ActiveEra.put(state, {"index": 0, "start": None})
    storage.ErasStartBlock.insert(state, 0, 0)
    storage.ActiveValidators.put(state, elect_validators(ctx))
    apply_genesis_randomness(ctx, seen_keys)
