"""Validator candidates and the election: who wants to validate (with which session key), and
the pure choice of the active set from them — the top N by active bond above the minimum,
ties broken by account bytes, so every node elects the same set."""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.pallets.staking import events, storage
from runtime.pallets.staking.errors import ERRORS
from runtime.pallets.staking.ledger import get_ledger, get_min_validator_bond, get_validator_count
from runtime.storage import OverlayState

Elected = list[tuple[bytes, bytes, int]]


def validate_session_key_free(state: OverlayState, stash: bytes, session_key: bytes) -> None:
    """Verify that no other validator owns `session_key`, nor signs with it in the current era."""
    owner = storage.KeyOwner.get(state, session_key)
    if owner is not None and owner != stash:
        raise ERRORS("DuplicateSessionKey", "the session key belongs to another validator")
    for account, key, _stake in storage.ActiveValidators.get(state):
        if key == session_key and account != stash:
            raise ERRORS("DuplicateSessionKey", "another validator of the current era signs with this key")


def apply_session_key(ctx: BlockContext, stash: bytes, session_key: bytes) -> None:
    """Give `stash` the session key `session_key`, releasing its previous one."""
    state = ctx.state
    previous = storage.SessionKeys.get(state, stash)
    if previous == session_key:
        return
    if previous is not None:
        storage.KeyOwner.remove(state, previous)
    storage.SessionKeys.insert(state, stash, session_key)
    storage.KeyOwner.insert(state, session_key, stash)
    events.deposit(ctx, "SessionKeySet", {"stash": stash, "session_key": session_key})


def apply_validate(ctx: BlockContext, stash: bytes, prefs: dict[str, Any], session_key: bytes) -> None:
    """Declare `stash` a validator candidate (the caller has run the checks)."""
    apply_session_key(ctx, stash, session_key)
    storage.Validators.insert(ctx.state, stash, prefs)
    events.deposit(ctx, "ValidatorPrefsSet", {"stash": stash, "prefs": prefs})


def get_candidates(ctx: BlockContext) -> Elected:
    """Every validator candidate with a session key and at least the minimum active bond."""
    state = ctx.state
    min_bond = get_min_validator_bond(ctx)
    out: Elected = []
    for raw_key, _prefs in storage.Validators.iter_values(state):
        stash = storage.Validators.decode_last_key(raw_key)
        ledger = get_ledger(state, stash)
        key = storage.SessionKeys.get(state, stash)
        if ledger is not None and key is not None and ledger.active >= min_bond:
            out.append((stash, key, ledger.active))
    return out


def compute_elected(candidates: Elected, count: int) -> Elected:
    """The `count` candidates with the highest stake, highest first; equal stakes in account
    byte order."""
    return sorted(candidates, key=lambda c: (-c[2], c[0]))[:count]


def elect_validators(ctx: BlockContext) -> Elected:
    return compute_elected(get_candidates(ctx), get_validator_count(ctx))


def apply_active_set(ctx: BlockContext, active: Elected) -> None:
    """Store the active set; a set that differs from the stored one gets the next set id, so
    the finality gadget can tell that this block changes its voters (and the old set finalizes it)."""
    state = ctx.state
    if [tuple(v) for v in storage.ActiveValidators.get(state)] == [tuple(v) for v in active]:
        return
    storage.ActiveValidators.put(state, active)
    storage.ValidatorSetId.put(state, storage.ValidatorSetId.get(state) + 1)
