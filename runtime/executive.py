"""The executive: the block's state transition, one path for building, importing and validating.

    initialize_block → apply_extrinsic (each) → finalize_block      (BlockBuilder, execute_block)
    validate_transaction                                             (the tx pool)

A signed extrinsic is checked before dispatch in Substrate's order: era (its birth block must
be known), signature over the payload with spec/tx version and genesis hash, nonce, block
weight, fee. Then the nonce is bumped and the fee withdrawn; the call runs in a storage layer
that is rolled back if it fails, and the failure is recorded as `ExtrinsicFailed` with a
named error. Anything that fails a check is an invalid transaction: the pool rejects it, and a
block that contains it is rejected whole.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from runtime.block import Block, Header, compute_extrinsics_root, pre_runtime_digest
from runtime.codec.errors import CodecError
from runtime.codec.scale import encode_compact
from runtime.context import PHASE_FINALIZATION, BlockContext, phase_apply_extrinsic
from runtime.crypto import verify_signature

SignatureChecker = Callable[[str, bytes, bytes, bytes], bool]
from runtime.extrinsic import Extrinsic, decode_extrinsic, signing_payload
from runtime.frame import NONE, DispatchError, signed
from runtime.hashing import blake2_256
from runtime.pallets.indices import SYSTEM
from runtime.pallets.system import storage as system
from runtime.pallets.system.account import account_key, get_account, put_account
from runtime.pallets.system.events import EVENTS as SYSTEM_EVENTS
from runtime.pallets.system.pallet import BLOCK_HASH_COUNT
from runtime.pallets.transaction_payment.events import deposit_fee_paid
from runtime.pallets.transaction_payment.fees import check_can_pay, compute_fee, compute_priority, take_fee
from runtime.params import ChainParameters
from runtime.storage import OverlayState
from runtime.transaction_validity import InvalidTransaction, TransactionValidityError, ValidTransaction
from runtime.trie import Trie, TrieDiff
from runtime.types import DispatchInfo, era_birth, era_death
from runtime.version import Runtime, get_runtime

_U32 = struct.Struct("<I")
INHERENT_CALLS = {("Timestamp", "set")}
_SUCCESS_INDEX = SYSTEM_EVENTS.by_name["ExtrinsicSuccess"].index


class InvalidBlock(Exception):
    """A block that must not be imported: wrong roots, parent, an invalid extrinsic."""


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    success: bool
    error: Any = None  # the DispatchError value when the call failed
    message: str = ""


def get_params(state: OverlayState) -> ChainParameters:
    raw = state.get(system.ChainParameters.key())
    if raw is None:
        raise InvalidBlock("state has no chain parameters (not a genesis-built state)")
    return ChainParameters.from_scale(raw)


def get_state_runtime(state: OverlayState) -> Runtime:
    return get_runtime(system.SpecVersion.get(state))


def get_next_block_runtime(state: OverlayState) -> Runtime:
    """The runtime the next block runs: a scheduled upgrade takes effect there."""
    pending = system.PendingSpecVersion.get(state)
    return get_runtime(pending if pending is not None else system.SpecVersion.get(state))


def block_hash_at(ctx: BlockContext, number: int) -> bytes | None:
    """The hash of block `number` as this block sees it (BlockHash only changes in on_initialize,
    so the answer is remembered for the block: every signature check asks for the genesis hash)."""
    if number == ctx.block_number - 1:
        return ctx.parent_hash
    known = ctx.extra.setdefault("block_hashes", {})
    if number not in known:
        known[number] = ctx.state.get(system.BlockHash.key(number))
    return known[number]


# --- block lifecycle -------------------------------------------------------------------------------


def initialize_block(state: OverlayState, header: Header) -> tuple[Runtime, BlockContext]:
    """Enact a scheduled runtime upgrade, set up the block's context and run on_initialize."""
    pending = system.PendingSpecVersion.get(state)
    upgraded = pending is not None
    if upgraded:
        system.SpecVersion.put(state, pending)
        system.PendingSpecVersion.kill(state)
    runtime = get_state_runtime(state)
    slot, author = header.slot_and_author()
    ctx = BlockContext(state, get_params(state), header.number, header.parent_hash, author, slot)
    runtime.on_initialize(ctx)
    if upgraded:
        ctx.deposit_event(SYSTEM, SYSTEM_EVENTS, "CodeUpdated")
    system.Randomness.put(state, blake2_256(system.Randomness.get(state) + header.parent_hash))
    # Block 0's hash stays: every immortal transaction's signature commits to it.
    if header.number - 1 - BLOCK_HASH_COUNT > 0:
        system.BlockHash.remove(state, header.number - 1 - BLOCK_HASH_COUNT)
    return runtime, ctx


def finalize_block(runtime: Runtime, ctx: BlockContext, extrinsic_count: int) -> None:
    """Run on_finalize and write the block's events and counters into state."""
    ctx.phase = PHASE_FINALIZATION
    runtime.on_finalize(ctx)
    state = ctx.state
    state.set(system.Events.key(), encode_compact(len(ctx.events)) + b"".join(ctx.events))
    system.EventCount.put(state, len(ctx.events))
    system.ExtrinsicCount.put(state, extrinsic_count)
    system.ExtrinsicLengths.put(state, ctx.length_used)


# --- transaction checks ------------------------------------------------------------------------------


def compute_signing_payload(runtime: Runtime, ctx: BlockContext, xt: Extrinsic) -> bytes:
    """What `xt`'s signature must sign in this block; its era's birth block must be known."""
    birth = era_birth(xt.era, ctx.block_number)
    if birth > ctx.block_number:
        raise InvalidTransaction("AncientBirthBlock", "the era's birth block is in the future")
    era_hash = block_hash_at(ctx, birth)
    if era_hash is None:
        raise InvalidTransaction("AncientBirthBlock", f"the era's birth block {birth} is unknown or too old")
    genesis_hash = block_hash_at(ctx, 0)
    return signing_payload(xt.call_bytes, xt.era_bytes, xt.nonce, xt.tip, runtime.spec_version,
                           runtime.transaction_version, genesis_hash or bytes(32), era_hash)


def _check_signed(runtime: Runtime, ctx: BlockContext, xt: Extrinsic) -> tuple[int, int, Any]:
    """Verify era, signature, weight and fee affordability; returns (weight, fee, call def)."""
    payload = compute_signing_payload(runtime, ctx, xt)
    if not ctx.verify(xt.scheme, xt.signer, payload, xt.signature):  # type: ignore[arg-type]
        raise InvalidTransaction(
            "BadProof", "bad signature (or signed for another chain, spec version, transaction version or era)")
    call = runtime.get_call(xt.call)
    weight = call.get_weight(xt.call[2])
    if ctx.weight_used + weight > ctx.params.max_block_weight or xt.length > ctx.params.max_block_length:
        raise InvalidTransaction("ExhaustsResources", "the transaction does not fit in the block")
    fee = compute_fee(ctx.params, xt.length, weight, xt.tip) if call.pays_fee else 0
    return weight, fee, call


def validate_transaction(state: OverlayState, best: Header, raw: bytes,
                         verify: SignatureChecker = verify_signature) -> tuple[ValidTransaction, Extrinsic]:
    """Check a transaction against the state after `best` (for the pool); raises
    InvalidTransaction with a reason. Nothing is written to `state`."""
    runtime = get_next_block_runtime(state)
    try:
        xt = decode_extrinsic(raw, runtime)
    except CodecError as exc:
        raise InvalidTransaction("Call", f"could not decode: {exc}") from None
    ctx = BlockContext(state, get_params(state), best.number + 1, best.hash)
    ctx.verify = verify
    if not xt.is_signed:
        return _validate_unsigned(runtime, ctx, xt), xt
    if (runtime.pallets_by_index[xt.call[0]].name, xt.call[1]) in INHERENT_CALLS:
        raise InvalidTransaction("Call", "inherents may not be signed")
    weight, fee, _call = _check_signed(runtime, ctx, xt)
    account = get_account(state, xt.signer)  # type: ignore[arg-type]
    if xt.nonce < account.nonce:
        raise InvalidTransaction("Stale", f"nonce {xt.nonce} is below the account's next nonce {account.nonce}")
    check_can_pay(ctx, account, fee)
    signer = xt.signer or b""
    provides = (signer + _U32.pack(xt.nonce),)
    requires = (signer + _U32.pack(xt.nonce - 1),) if xt.nonce > account.nonce else ()
    longevity = max(1, min(era_death(xt.era, ctx.block_number), 2**64 - 1) - ctx.block_number)
    return ValidTransaction(compute_priority(fee, xt.tip, weight, xt.length), requires, provides, longevity), xt


UNSIGNED_LONGEVITY = 64


def _validate_unsigned(runtime: Runtime, ctx: BlockContext, xt: Extrinsic) -> ValidTransaction:
    """An unsigned transaction is valid if its call may come unsigned and dispatching it on the
    best state succeeds (the dispatch is rolled back: nothing is written)."""
    call = runtime.get_call(xt.call)
    # Verify that the call may come unsigned.
    if not call.unsigned:
        raise InvalidTransaction("Call", "unsigned transactions are accepted only as a block's inherents or reports")
    weight = call.get_weight(xt.call[2])
    if weight > ctx.params.max_block_weight or xt.length > ctx.params.max_block_length:
        raise InvalidTransaction("ExhaustsResources", "the transaction does not fit in a block")
    ctx.start_layer()
    try:
        runtime.dispatch(ctx, NONE, xt.call)
    except DispatchError as exc:
        raise InvalidTransaction("Call", f"the call fails: {exc}") from None
    finally:
        ctx.rollback_layer()
    return ValidTransaction(2**63 - 1, (), (blake2_256(xt.call_bytes),), UNSIGNED_LONGEVITY)


def apply_extrinsic(runtime: Runtime, ctx: BlockContext, xt: Extrinsic, index: int) -> ApplyOutcome:
    """Check and dispatch one extrinsic at position `index`; raises TransactionValidityError
    (the extrinsic may not be in the block), returns whether its call succeeded."""
    ctx.phase = phase_apply_extrinsic(index)
    state = ctx.state
    # Verify that the block stays within its length limit (CheckWeight's length part).
    if ctx.length_used + xt.length > ctx.params.max_block_length:
        raise InvalidTransaction("ExhaustsResources", "the block's extrinsics exceed the block length limit")
    ctx.length_used += xt.length
    pallet_name = runtime.pallets_by_index[xt.call[0]].name
    if not xt.is_signed:
        call = runtime.get_call(xt.call)
        if call.unsigned:
            weight = call.get_weight(xt.call[2])
            # Verify that the report fits in the block's weight.
            if ctx.weight_used + weight > ctx.params.max_block_weight:
                raise InvalidTransaction("ExhaustsResources", "the transaction does not fit in the block")
            return _dispatch(runtime, ctx, xt, NONE, weight)
        if (pallet_name, xt.call[1]) not in INHERENT_CALLS or index != 0:
            raise InvalidTransaction("Call", "only Timestamp.set may be unsigned, as the block's first extrinsic")
        return _dispatch(runtime, ctx, xt, NONE, call.get_weight(xt.call[2]))
    if (pallet_name, xt.call[1]) in INHERENT_CALLS:
        raise InvalidTransaction("Call", "inherents may not be signed")
    weight, fee, _call = _check_signed(runtime, ctx, xt)
    signer: bytes = xt.signer  # type: ignore[assignment]
    account = get_account(state, signer)
    if xt.nonce != account.nonce:
        kind = "Stale" if xt.nonce < account.nonce else "Future"
        raise InvalidTransaction(kind, f"nonce {xt.nonce} is not the account's next nonce {account.nonce}")
    take_fee(ctx, account, fee, xt.tip)
    account.nonce += 1
    put_account(state, signer, account)
    deposit_fee_paid(ctx, signer, fee, xt.tip)
    return _dispatch(runtime, ctx, xt, signed(signer), weight)


def _dispatch(runtime: Runtime, ctx: BlockContext, xt: Extrinsic, origin: Any, weight: int) -> ApplyOutcome:
    call = runtime.get_call(xt.call)
    ctx.start_layer()
    try:
        runtime.dispatch(ctx, origin, xt.call)
    except DispatchError as exc:
        ctx.rollback_layer()
        ctx.weight_used += weight
        ctx.deposit_event(SYSTEM, SYSTEM_EVENTS, "ExtrinsicFailed",
                          {"dispatch_error": exc.error, "dispatch_info": _dispatch_info(weight, call)})
        if not xt.is_signed:
            raise InvalidTransaction("Call", f"inherent failed: {exc}") from None
        return ApplyOutcome(False, exc.error, str(exc))
    ctx.commit_layer()
    ctx.weight_used += weight
    ctx.deposit_event_raw(SYSTEM, _SUCCESS_INDEX, _dispatch_info_bytes(weight, call))
    return ApplyOutcome(True)


_DISPATCH_INFO_CACHE: dict[tuple[int, str, bool], bytes] = {}


def _dispatch_info_bytes(weight: int, call: Any) -> bytes:
    key = (weight, call.dispatch_class, call.pays_fee)
    cached = _DISPATCH_INFO_CACHE.get(key)
    if cached is not None:
        return cached
    if len(_DISPATCH_INFO_CACHE) > 4096:
        _DISPATCH_INFO_CACHE.clear()
    encoded = _DISPATCH_INFO_CACHE[key] = DispatchInfo.encode(_dispatch_info(weight, call))
    return encoded


def _dispatch_info(weight: int, call: Any) -> dict[str, Any]:
    return {"weight": {"ref_time": weight, "proof_size": 0}, "class": call.dispatch_class,
            "pays_fee": "Yes" if call.pays_fee else "No"}


# --- whole blocks --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecutedBlock:
    """A block's execution result, what the chain store commits: the new trie nodes, and for a
    pruning store the positions rewritten (TrieDiff's `removed` and `inserted_again`)."""

    state_root: bytes
    new_nodes: dict[bytes, bytes]
    changes: dict[bytes, bytes | None]
    outcomes: tuple[ApplyOutcome, ...]
    removed_nodes: tuple[bytes, ...] = ()
    inserted_again: tuple[bytes, ...] = ()

    @classmethod
    def from_diff(cls, diff: TrieDiff, changes: dict[bytes, bytes | None],
                  outcomes: tuple[ApplyOutcome, ...]) -> ExecutedBlock:
        return cls(diff.root, diff.new_nodes, changes, outcomes, tuple(diff.removed), tuple(diff.inserted_again))


def execute_block(trie: Trie, block: Block, verify: SignatureChecker = verify_signature) -> ExecutedBlock:
    """Re-execute `block` on the state `trie` (its parent's) and verify its roots; raises
    InvalidBlock with the reason. Nothing is written anywhere: the caller commits the result."""
    header = block.header
    if compute_extrinsics_root(block.extrinsics) != header.extrinsics_root:
        raise InvalidBlock("extrinsics root does not match the body")
    state = OverlayState(trie.get, trie.iter_prefix)
    try:
        runtime, ctx = initialize_block(state, header)
        ctx.verify = verify
        decoded: list[Extrinsic | CodecError] = []
        for raw in block.extrinsics:
            try:
                decoded.append(decode_extrinsic(raw, runtime))
            except CodecError as exc:
                decoded.append(exc)  # rejected at its turn, as if decoded there
        state.prefetch(trie.get_many(touched_keys(decoded)))
        outcomes = []
        for index, xt in enumerate(decoded):
            if isinstance(xt, CodecError):
                raise InvalidBlock(f"extrinsic {index} does not decode: {xt}") from None
            outcomes.append(apply_extrinsic(runtime, ctx, xt, index))
        finalize_block(runtime, ctx, len(block.extrinsics))
    except TransactionValidityError as exc:
        raise InvalidBlock(f"invalid extrinsic: {exc}") from None
    except DispatchError as exc:
        raise InvalidBlock(f"block hook failed: {exc}") from None
    except CodecError as exc:
        raise InvalidBlock(f"malformed block: {exc}") from None
    diff = trie.update(state.changes)
    if diff.root != header.state_root:
        raise InvalidBlock("state root does not match the header's")
    return ExecutedBlock.from_diff(diff, state.changes, tuple(outcomes))


def touched_keys(extrinsics: Iterable[Extrinsic | CodecError]) -> list[bytes]:
    """The storage keys a block's extrinsics will likely read, listed without executing them:
    each signer's account (nonce and fee) and every account a call names by MultiAddress::Id
    (a transfer's destination), so that they can be read from the state in one walk."""
    keys = []
    for xt in extrinsics:
        if isinstance(xt, CodecError):
            continue
        if xt.signer is not None:
            keys.append(account_key(xt.signer))
        for arg in xt.call[2].values():
            if type(arg) is tuple and len(arg) == 2 and arg[0] == "Id" and type(arg[1]) is bytes:
                keys.append(account_key(arg[1]))
    return keys


SignatureCheck = tuple[str, bytes, bytes, bytes]  # scheme, public key, message, signature


def get_signature_checks(trie: Trie, block: Block) -> list[SignatureCheck]:
    """The signature checks executing `block` will make, in order, without executing it, so the
    node can have them run ahead elsewhere. Extrinsics that cannot be checked (undecodable, bad
    era) are left out: executing the block rejects them anyway."""
    state = OverlayState(trie.get, trie.iter_prefix)
    try:
        runtime, ctx = initialize_block(state, block.header)
    except (CodecError, DispatchError, InvalidBlock):
        return []
    checks: list[SignatureCheck] = []
    for raw in block.extrinsics:
        try:
            xt = decode_extrinsic(raw, runtime)
            if xt.is_signed:
                checks.append((xt.scheme, xt.signer, compute_signing_payload(runtime, ctx, xt), xt.signature))  # type: ignore[arg-type]
        except (CodecError, TransactionValidityError):
            continue
    return checks


class BlockBuilder:
    """Builds a block on `parent` (the author's path): inherents first, then transactions one by
    one; a transaction that turns out invalid is rolled back and reported, not included."""

    def __init__(self, trie: Trie, parent: Header, slot: int, author: bytes, timestamp_ms: int,
                 verify: SignatureChecker = verify_signature):
        self.trie = trie
        self.state = OverlayState(trie.get, trie.iter_prefix)
        self.header = Header(parent.hash, parent.number + 1, bytes(32), bytes(32), (pre_runtime_digest(slot, author),))
        self.runtime, self.ctx = initialize_block(self.state, self.header)
        self.ctx.verify = verify
        self.extrinsics: list[bytes] = []
        from runtime.extrinsic import encode_unsigned

        inherent = encode_unsigned(self.runtime.encode_call("Timestamp", "set", {"now": timestamp_ms}))
        self.push(inherent)

    @property
    def total_length(self) -> int:
        return self.ctx.length_used

    def push(self, raw: bytes) -> ApplyOutcome:
        """Apply one extrinsic; raises TransactionValidityError (state untouched) if it is invalid."""
        try:
            xt = decode_extrinsic(raw, self.runtime)
        except CodecError as exc:
            raise InvalidTransaction("Call", f"could not decode: {exc}") from None
        self.ctx.start_layer()
        weight_before, length_before = self.ctx.weight_used, self.ctx.length_used
        try:
            outcome = apply_extrinsic(self.runtime, self.ctx, xt, len(self.extrinsics))
        except (TransactionValidityError, DispatchError) as exc:
            self.ctx.rollback_layer()
            self.ctx.weight_used, self.ctx.length_used = weight_before, length_before
            if isinstance(exc, DispatchError):
                raise InvalidTransaction("Payment", str(exc)) from None
            raise
        self.ctx.commit_layer()
        self.extrinsics.append(raw)
        return outcome

    def build(self) -> tuple[Block, ExecutedBlock]:
        """Finalize, compute the roots and return the unsealed block with what to commit."""
        finalize_block(self.runtime, self.ctx, len(self.extrinsics))
        diff = self.trie.update(self.state.changes)
        header = Header(self.header.parent_hash, self.header.number, diff.root,
                        compute_extrinsics_root(self.extrinsics), self.header.digest)
        return Block(header, tuple(self.extrinsics)), ExecutedBlock.from_diff(diff, self.state.changes, ())
