"""Whole blocks through the executive: the timestamp inherent, block import refusing bad blocks
whole, the overlay's layers, the block builder's limits, and a failed call's events."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gensyn_node.keyring import dev_account
from runtime.block import Block, compute_extrinsics_root, pre_runtime_digest
from runtime.codec.errors import CodecError
from runtime.codec.scale import Variant, Vec
from runtime.executive import (
    BLOCK_HASH_COUNT,
    InvalidBlock,
    execute_block,
    touched_keys,
    validate_transaction,
)
from runtime.extrinsic import encode_unsigned
from runtime.frame import Call, ModuleErrors, Pallet, event_enum
from runtime.pallets.balances.calls import TRANSFER_WEIGHT
from runtime.pallets.sudo import make_pallet as make_sudo_pallet
from runtime.pallets.system import storage as system
from runtime.pallets.system.calls import KNOWN_SPEC_VERSIONS
from runtime.params import ChainParameters
from runtime.storage import MemoryState, OverlayState, StorageLayerError
from runtime.transaction_validity import InvalidTransaction
from runtime.trie import Trie
from runtime.version import RUNTIMES, Runtime, get_runtime

PARAMS = ChainParameters()
ED = PARAMS.existential_deposit
ENDOWMENT = 10**18
U128 = (1 << 128) - 1




def names(records):
    return [(r["event"][0], r["event"][1][0]) for r in records]


# --- timestamp -------------------------------------------------------------------------------------------


def _rebody(block: Block, extrinsics) -> Block:
    extrinsics = tuple(extrinsics)
    header = replace(block.header, extrinsics_root=compute_extrinsics_root(extrinsics))
    return Block(header, extrinsics)


def assert_rejected(trie, store, block, match):
    before = dict(store)
    with pytest.raises(InvalidBlock, match=match):
        execute_block(Trie(trie.root, store.get), block)
    assert store == before


def test_block_without_timestamp_rejected(chain, trie, store, make_block):
    built = make_block(trie, chain.header, [])
    assert_rejected(trie, store, _rebody(built.block, built.block.extrinsics[1:]), "block hook failed")


def test_block_with_second_timestamp_rejected(chain, trie, store, rt, make_block):
    built = make_block(trie, chain.header, [])
    second = encode_unsigned(rt.encode_call("Timestamp", "set", {"now": 2001}))
    assert_rejected(trie, store, _rebody(built.block, built.block.extrinsics + (second,)), "invalid extrinsic")


def test_builder_refuses_second_timestamp(chain, trie, rt):
    from runtime.executive import BlockBuilder

    builder = BlockBuilder(trie, chain.header, slot=1, author=dev_account("ferdie").public, timestamp_ms=2000)
    with pytest.raises(InvalidTransaction):
        builder.push(encode_unsigned(rt.encode_call("Timestamp", "set", {"now": 2001})))


def test_too_early_timestamp_rejected(chain, trie, store, rt, make_block, commit):
    first = make_block(trie, chain.header, [])
    after = commit(store, first)
    with pytest.raises(InvalidTransaction):
        make_block(after, first.header, [], slot=2, timestamp_ms=2 * PARAMS.slot_duration_ms - 1)
    second = make_block(after, first.header, [])
    early = encode_unsigned(rt.encode_call("Timestamp", "set", {"now": 2 * PARAMS.slot_duration_ms - 1}))
    assert_rejected(after, store, _rebody(second.block, (early,) + second.block.extrinsics[1:]), "less than one slot")


def test_timestamp_far_from_slot_rejected(chain, trie, make_block):
    with pytest.raises(InvalidTransaction):
        make_block(trie, chain.header, [], slot=1, timestamp_ms=PARAMS.slot_duration_ms + PARAMS.max_timestamp_drift_ms + 1)


def test_timestamp_far_from_slot_zero_rejected(chain, trie, make_block):
    with pytest.raises(InvalidTransaction):
        make_block(trie, chain.header, [], slot=0, timestamp_ms=10**12)


def test_timestamp_inherent_must_come_first(chain, trie, store, sign, transfer, alice, bob, make_block):
    built = make_block(trie, chain.header, [sign(alice, transfer(bob.public, 10**15), 0)])
    swapped = (built.block.extrinsics[1], built.block.extrinsics[0])
    assert_rejected(trie, store, _rebody(built.block, swapped), "invalid extrinsic")


# --- block import ------------------------------------------------------------------------------------------


@pytest.fixture
def good_block(chain, trie, sign, transfer, alice, bob, make_block):
    return make_block(trie, chain.header, [sign(alice, transfer(bob.public, 10**15), 0),
                                           sign(bob, transfer(alice.public, 10 * ENDOWMENT), 0)])


def test_valid_block_executes_to_the_built_root(chain, trie, store, good_block):
    before = dict(store)
    executed = execute_block(Trie(trie.root, store.get), good_block.block)
    assert executed.state_root == good_block.header.state_root
    assert executed.new_nodes == good_block.executed.new_nodes
    assert [o.success for o in executed.outcomes] == [True, True, False]
    assert store == before  # execute_block writes nothing


def test_block_survives_msgpack_round_trip(chain, trie, store, good_block):
    block = Block.decode(good_block.block.encode())
    assert execute_block(Trie(trie.root, store.get), block).state_root == good_block.header.state_root


def test_block_with_wrong_state_root_rejected(trie, store, good_block):
    block = Block(replace(good_block.header, state_root=bytes(32)), good_block.block.extrinsics)
    assert_rejected(trie, store, block, "state root")


def test_block_with_wrong_extrinsics_root_rejected(trie, store, good_block):
    block = Block(replace(good_block.header, extrinsics_root=bytes(32)), good_block.block.extrinsics)
    assert_rejected(trie, store, block, "extrinsics root")
    reordered = (good_block.block.extrinsics[0],) + good_block.block.extrinsics[:0:-1]
    assert_rejected(trie, store, Block(good_block.header, reordered), "extrinsics root")


def test_block_with_bad_signature_rejected(chain, trie, store, alice, bob, transfer, good_block):
    from runtime.extrinsic import encode_signed

    forged = encode_signed(transfer(bob.public, 10**15), alice.public, "Sr25519", bytes(64), None, 0, 0)
    block = _rebody(good_block.block, good_block.block.extrinsics[:1] + (forged,))
    assert_rejected(trie, store, block, "BadProof")


def test_block_with_replayed_extrinsic_rejected(trie, store, good_block):
    xts = good_block.block.extrinsics
    assert_rejected(trie, store, _rebody(good_block.block, xts + (xts[1],)), "Stale")


def test_block_with_undecodable_extrinsic_rejected(trie, store, good_block):
    for junk in (b"", b"\x08\x84\x00", good_block.block.extrinsics[1] + b"\x00"):
        assert_rejected(trie, store, _rebody(good_block.block, good_block.block.extrinsics + (junk,)),
                        "does not decode")


def test_block_rejection_reason_is_the_first_bad_extrinsic_in_order(trie, store, good_block):
    """Extrinsics are decoded (and their keys read) ahead of execution, yet the block is refused
    for its first bad extrinsic, as if each were decoded at its turn."""
    xts = good_block.block.extrinsics
    assert_rejected(trie, store, _rebody(good_block.block, xts + (xts[1], b"\x08\x84\x00")), "Stale")
    assert_rejected(trie, store, _rebody(good_block.block, xts + (b"\x08\x84\x00", xts[1])), "does not decode")


def test_touched_keys_list_signers_and_named_accounts(alice, bob, transfer):
    from runtime.extrinsic import decode_extrinsic, encode_signed
    from runtime.pallets.system.account import account_key

    raw = encode_signed(transfer(bob.public, 10**15), alice.public, "Sr25519", bytes(64), None, 0, 0)
    xt = decode_extrinsic(raw, get_runtime(1))
    assert touched_keys([xt, CodecError("skipped")]) == [account_key(alice.public), account_key(bob.public)]


def test_block_without_pre_runtime_digest_rejected(trie, store, good_block):
    assert_rejected(trie, store, Block(replace(good_block.header, digest=()), good_block.block.extrinsics),
                    "PreRuntime")


def test_block_with_other_author_rejected(trie, store, good_block):
    """The author is in the digest and receives the fees: another author is another state root."""
    digest = (pre_runtime_digest(1, dev_account("eve").public),)
    assert_rejected(trie, store, Block(replace(good_block.header, digest=digest), good_block.block.extrinsics),
                    "state root")


def test_block_with_wrong_parent_rejected(trie, store, good_block):
    block = Block(replace(good_block.header, parent_hash=bytes(32)), good_block.block.extrinsics)
    assert_rejected(trie, store, block, "BadProof|state root")


def test_block_on_wrong_parent_state_rejected(chain, trie, store, make_block, commit, good_block):
    after = commit(store, good_block)
    child = make_block(after, good_block.header, [])
    assert_rejected(trie, store, child.block, "state root|invalid")


def test_unsigned_transfer_in_block_rejected(trie, store, transfer, bob, good_block):
    unsigned = encode_unsigned(transfer(bob.public, 10**15))
    assert_rejected(trie, store, _rebody(good_block.block, good_block.block.extrinsics + (unsigned,)), "Call")


@pytest.mark.parametrize("case", ["future nonce", "no account", "fee above balance", "signed inherent"])
def test_block_with_inadmissible_transaction_rejected(trie, store, sign, transfer, rt, keys, good_block, case):
    """What the pool refuses, import refuses too: the block is invalid as a whole."""
    xt, match = {
        "future nonce": (sign(keys["charlie"], transfer(keys["bob"].public, ED), 5), "Future"),
        "no account": (sign(dev_account("nobody"), transfer(keys["bob"].public, ED), 0), "Payment"),
        "fee above balance": (sign(keys["charlie"], transfer(keys["bob"].public, ED), 0, tip=10 * ENDOWMENT), "Payment"),
        "signed inherent": (sign(keys["charlie"], rt.encode_call("Timestamp", "set", {"now": 2000}), 0), "Call"),
    }[case]
    assert_rejected(trie, store, _rebody(good_block.block, good_block.block.extrinsics + (xt,)), match)


def test_immortal_transactions_valid_after_block_hash_count(chain, trie, store, sign, transfer, alice, bob,
                                                            make_block, commit):
    view, best = trie, chain.header
    for _ in range(BLOCK_HASH_COUNT + 2):
        built = make_block(view, best, [])
        view, best = commit(store, built), built.header
    raw = sign(alice, transfer(bob.public, 10**15), 0)
    try:
        validate_transaction(OverlayState(view.get), best, raw)
    except InvalidTransaction as exc:
        raise AssertionError(f"rejected: {exc}") from None


def test_block_hashes_pruned_after_block_hash_count(chain, trie, store, make_block, commit):
    view, best = trie, chain.header
    hashes = [chain.hash]
    for _ in range(BLOCK_HASH_COUNT + 3):
        built = make_block(view, best, [])
        view, best = commit(store, built), built.header
        hashes.append(best.hash)
    state = OverlayState(view.get)
    number = best.number
    assert system.BlockHash.get(state, number - 1) == hashes[number - 1]
    oldest = number - BLOCK_HASH_COUNT  # BLOCK_HASH_COUNT hashes are kept, as in Substrate
    assert system.BlockHash.get(state, oldest) == hashes[oldest]
    assert not system.BlockHash.contains(state, oldest - 1)
    assert not system.BlockHash.contains(state, 1)


# --- overlay layers -----------------------------------------------------------------------------------------


def test_overlay_nested_rollback_keeps_outer_writes():
    state = MemoryState({b"a": b"base", b"b": b"base"})
    state.set(b"a", b"top")
    state.start_layer()
    state.set(b"b", b"outer")
    state.start_layer()
    state.set(b"b", b"inner")
    state.delete(b"a")
    state.set(b"c", b"inner")
    state.rollback_layer()
    assert (state.get(b"a"), state.get(b"b"), state.get(b"c")) == (b"top", b"outer", None)
    state.commit_layer()
    assert state.changes == {b"a": b"top", b"b": b"outer"}


def test_overlay_inner_commit_undone_by_outer_rollback():
    state = MemoryState({b"a": b"base"})
    state.start_layer()
    state.start_layer()
    state.set(b"a", b"inner")
    state.set(b"new", b"inner")
    state.commit_layer()
    assert state.get(b"a") == b"inner"
    state.rollback_layer()
    assert state.changes == {} and state.get(b"a") == b"base" and state.get(b"new") is None


def test_overlay_closing_without_layer_raises():
    state = MemoryState()
    with pytest.raises(StorageLayerError):
        state.commit_layer()
    with pytest.raises(StorageLayerError):
        state.rollback_layer()
    state.start_layer()
    state.commit_layer()
    with pytest.raises(StorageLayerError):
        state.rollback_layer()


def test_overlay_iter_prefix_merges_base_and_changes():
    state = MemoryState({b"p1": b"1", b"p2": b"2", b"q": b"x"})
    state.set(b"p3", b"3")
    state.delete(b"p1")
    state.set(b"p2", b"two")
    assert list(state.iter_prefix(b"p")) == [(b"p2", b"two"), (b"p3", b"3")]


OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), st.sampled_from([b"a", b"b", b"c"]), st.binary(max_size=2)),
    st.tuples(st.just("delete"), st.sampled_from([b"a", b"b", b"c"]), st.none()),
    st.tuples(st.sampled_from(["start", "commit", "rollback"]), st.none(), st.none()),
), max_size=40)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_overlay_layers_match_a_stack_of_copies(ops):
    base = {b"a": b"A", b"b": b"B"}
    state = MemoryState(base)
    model = [dict(base)]  # one full view per open layer, the innermost last
    for op, key, value in ops:
        if op == "set":
            state.set(key, value)
            model[-1][key] = value
        elif op == "delete":
            state.delete(key)
            model[-1].pop(key, None)
        elif op == "start":
            state.start_layer()
            model.append(dict(model[-1]))
        elif len(model) == 1:
            with pytest.raises(StorageLayerError):
                getattr(state, op + "_layer")()
        elif op == "commit":
            state.commit_layer()
            top = model.pop()
            model[-1] = top
        else:
            state.rollback_layer()
            model.pop()
        for k in (b"a", b"b", b"c"):
            assert state.get(k) == model[-1].get(k)
    assert dict(state.iter_prefix(b"")) == model[-1]


# --- the block builder -----------------------------------------------------------------------------------


def test_builder_leaves_no_trace_of_refused_transactions(chain, trie, sign, transfer, alice, bob, make_block):
    """Refused transactions (bad proof, stale, unpayable) change nothing in the block being built."""
    good = [sign(alice, transfer(bob.public, 10**15), 0), sign(bob, transfer(alice.public, 10**15), 0)]
    clean = make_block(trie, chain.header, good)
    from runtime.executive import BlockBuilder
    from runtime.extrinsic import encode_signed

    builder = BlockBuilder(trie, chain.header, slot=1, author=dev_account("ferdie").public,
                           timestamp_ms=PARAMS.slot_duration_ms)
    refused = [
        encode_signed(transfer(bob.public, 1), alice.public, "Sr25519", bytes(64), None, 0, 0),  # bad proof
        sign(alice, transfer(bob.public, 10**15), 0, tip=10 * ENDOWMENT),  # cannot pay
        sign(dev_account("nobody"), transfer(bob.public, ED), 0),  # no account
        b"\x00",  # does not decode
    ]
    builder.push(good[0])
    for raw in refused:
        with pytest.raises(InvalidTransaction):
            builder.push(raw)
    with pytest.raises(InvalidTransaction) as info:
        builder.push(good[0])  # now stale
    assert info.value.kind == "Stale"
    builder.push(good[1])
    block, _executed = builder.build()
    assert block == clean.block


def _small_chain(**params):
    from runtime.genesis import build_genesis

    small = replace(PARAMS, **params)
    keys = [dev_account(n) for n in ("alice", "bob")]
    header, _storage, nodes = build_genesis({"balances": [(k.public, ENDOWMENT) for k in keys], "sudo": keys[0].public,
                                             "spec_version": 1, "params": small})
    return header, Trie(header.state_root, dict(nodes).get)


def _signed_for(header, keypair, call, nonce):
    from runtime.extrinsic import encode_signed, signing_payload

    payload = signing_payload(call, b"\x00", nonce, 0, 1, 1, header.hash, header.hash)
    return encode_signed(call, keypair.public, keypair.scheme, keypair.sign(payload), None, nonce, 0)


def test_builder_refuses_transactions_past_the_block_length(rt, alice, bob, transfer):
    from runtime.executive import BlockBuilder

    header, trie = _small_chain(max_block_length=600)
    builder = BlockBuilder(trie, header, slot=1, author=bob.public, timestamp_ms=PARAMS.slot_duration_ms)
    pushed = 0
    with pytest.raises(InvalidTransaction) as info:
        for nonce in range(10):
            builder.push(_signed_for(header, alice, transfer(bob.public, ED), nonce))
            pushed += 1
    assert info.value.kind == "ExhaustsResources"
    assert 2 <= pushed < 10 and builder.total_length <= 600
    block, executed = builder.build()
    assert execute_block(trie, block).state_root == executed.state_root


def test_builder_refuses_transactions_past_the_block_weight(alice, bob, transfer):
    from runtime.executive import BlockBuilder

    header, trie = _small_chain(max_block_weight=3 * TRANSFER_WEIGHT)
    builder = BlockBuilder(trie, header, slot=1, author=bob.public, timestamp_ms=PARAMS.slot_duration_ms)
    builder.push(_signed_for(header, alice, transfer(bob.public, ED), 0))
    builder.push(_signed_for(header, alice, transfer(bob.public, ED), 1))
    with pytest.raises(InvalidTransaction) as info:
        builder.push(_signed_for(header, alice, transfer(bob.public, ED), 2))
    assert info.value.kind == "ExhaustsResources"
    assert len(builder.build()[0].extrinsics) == 3  # the inherent and two transfers


def test_block_with_expired_transaction_rejected(chain, trie, store, sign, transfer, alice, bob, make_block, commit):
    raw = sign(alice, transfer(bob.public, 10**15), 0, era=(4, 0))
    view, best = trie, chain.header
    for _ in range(4):
        built = make_block(view, best, [])
        view, best = commit(store, built), built.header
    late = make_block(view, best, [])
    assert_rejected(view, store, _rebody(late.block, late.block.extrinsics + (raw,)), "AncientBirthBlock|BadProof")


def test_block_over_the_length_limit_rejected(alice, bob, transfer):
    from runtime.executive import BlockBuilder

    header, trie = _small_chain(max_block_length=600)
    builder = BlockBuilder(trie, header, slot=1, author=bob.public, timestamp_ms=PARAMS.slot_duration_ms)
    builder.ctx.params = PARAMS  # a dishonest author's builder, ignoring the chain's limit
    for nonce in range(8):
        builder.push(_signed_for(header, alice, transfer(bob.public, ED), nonce))
    block, _executed = builder.build()
    assert sum(len(xt) for xt in block.extrinsics) > 600
    with pytest.raises(InvalidBlock):
        execute_block(trie, block)


# --- a failed call's events ------------------------------------------------------------------------------

PROBE_INDEX = 200


def _poke_then_fail(ctx, origin):
    """A call that writes and deposits an event, then fails."""
    ctx.deposit_event(PROBE_INDEX, _PROBE_EVENTS, "Poked", None)
    ctx.state.set(b"probe", b"written")
    raise _PROBE_ERRORS("Nope")


_PROBE_EVENTS = event_enum("Probe", [Variant("Poked", 0)])
_PROBE_ERRORS = ModuleErrors(PROBE_INDEX, "Probe", ["Nope"])


@pytest.fixture
def probe_chain():
    """A chain whose runtime 98 adds a Probe pallet with one call that emits an event and fails."""
    from runtime.genesis import build_genesis

    probe = Pallet(name="Probe", index=PROBE_INDEX, calls=[Call("poke_then_fail", 0, [], _poke_then_fail, 1_000_000)],
                   events=_PROBE_EVENTS, errors=_PROBE_ERRORS)
    record_target = system.EventRecord.target
    runtime = Runtime(98, [p for p in get_runtime(1).pallets if p.name != "Sudo"] + [make_sudo_pallet, probe])
    RUNTIMES[98] = runtime
    KNOWN_SPEC_VERSIONS.add(98)
    try:
        names_ = ("alice", "bob", "ferdie")
        header, _storage, nodes = build_genesis({
            "balances": [(dev_account(n).public, ENDOWMENT) for n in names_], "sudo": dev_account("alice").public,
            "spec_version": 98, "params": PARAMS})
        yield runtime, header, dict(nodes)
    finally:
        del RUNTIMES[98]
        KNOWN_SPEC_VERSIONS.discard(98)
        system.EventRecord.target = record_target


def _run_probe(probe_chain, make_block, call_name):
    from runtime.extrinsic import encode_signed, signing_payload

    runtime, header, nodes = probe_chain
    if call_name == "direct":
        call = runtime.encode_call("Probe", "poke_then_fail", {})
    else:
        call = runtime.encode_call("Sudo", "sudo", {"call": ("Probe", ("poke_then_fail", {}))})
    alice = dev_account("alice")
    payload = signing_payload(call, b"\x00", 0, 0, 98, 1, header.hash, header.hash)
    raw = encode_signed(call, alice.public, alice.scheme, alice.sign(payload), None, 0, 0)
    built = make_block(Trie(header.state_root, nodes.get), header, [raw])
    nodes.update(built.executed.new_nodes)
    after = Trie(built.header.state_root, nodes.get)
    record_type = Vec(runtime.event_record)
    return built, after, record_type.decode(after.get(system.Events.key()))


def test_failed_probe_call_rolls_back_its_write(probe_chain, make_block):
    built, after, records = _run_probe(probe_chain, make_block, "direct")
    assert built.outcomes[0].error == ("Module", {"index": PROBE_INDEX, "error": b"\x00\x00\x00\x00"})
    assert after.get(b"probe") is None
    assert ("System", "ExtrinsicFailed") in names(records)


def test_failed_call_leaves_no_events(probe_chain, make_block):
    _built, _after, records = _run_probe(probe_chain, make_block, "direct")
    assert ("Probe", "Poked") not in names(records)


def test_failed_sudo_inner_call_leaves_no_events(probe_chain, make_block):
    built, after, records = _run_probe(probe_chain, make_block, "sudo")
    assert built.outcomes[0].success and after.get(b"probe") is None
    assert ("Sudo", "Sudid") in names(records)
    assert ("Probe", "Poked") not in names(records)
