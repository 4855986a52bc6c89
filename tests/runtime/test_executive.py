"""The executive and the pallets through whole blocks: balances and fees, failed calls rolled back
to their fee and nonce, events, the existential deposit, sudo and the runtime upgrade, the
timestamp inherent, block import refusing bad blocks whole, and the overlay's layers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gensyn_node.keyring import dev_account
from runtime.block import Block, compute_extrinsics_root, pre_runtime_digest
from runtime.codec.scale import H256, Variant, Vec
from runtime.context import BlockContext, phase_apply_extrinsic
from runtime.executive import (
    BLOCK_HASH_COUNT,
    InvalidBlock,
    _dispatch_info_bytes,
    execute_block,
    validate_transaction,
)
from runtime.extrinsic import encode_unsigned
from runtime.frame import Call, ModuleErrors, Pallet, event_enum
from runtime.pallets.balances import currency
from runtime.pallets.balances import events as balance_events
from runtime.pallets.balances.calls import TRANSFER_WEIGHT
from runtime.pallets.balances.errors import ERRORS as BALANCE_ERRORS
from runtime.pallets.indices import BALANCES, SUDO, SYSTEM, TRANSACTION_PAYMENT
from runtime.pallets.sudo import make_pallet as make_sudo_pallet
from runtime.pallets.sudo.errors import ERRORS as SUDO_ERRORS
from runtime.pallets.system import storage as system
from runtime.pallets.system.account import AccountRecord
from runtime.pallets.system.calls import KNOWN_SPEC_VERSIONS
from runtime.pallets.system.errors import ERRORS as SYSTEM_ERRORS
from runtime.pallets.system.events import EVENTS as SYSTEM_EVENTS
from runtime.pallets.transaction_payment import events as payment_events
from runtime.pallets.transaction_payment.fees import compute_fee
from runtime.pallets.transaction_payment.storage import TreasuryAccount
from runtime.params import ChainParameters
from runtime.storage import MemoryState, OverlayState, StorageLayerError
from runtime.transaction_validity import InvalidTransaction
from runtime.trie import Trie
from runtime.types import AccountInfo, Phase
from runtime.version import RUNTIMES, Runtime, get_runtime

PARAMS = ChainParameters()
ED = PARAMS.existential_deposit
ENDOWMENT = 10**18
U128 = (1 << 128) - 1


# --- helpers --------------------------------------------------------------------------------------


def names(records):
    return [(r["event"][0], r["event"][1][0]) for r in records]


def events_of(records, index):
    """The events of extrinsic `index` of the block."""
    return [r["event"] for r in records if r["phase"] == ("ApplyExtrinsic", index)]


def fee_of(raw: bytes, weight: int = TRANSFER_WEIGHT, tip: int = 0) -> int:
    return compute_fee(PARAMS, len(raw), weight, tip)


def split_fee(fee: int, tip: int = 0) -> tuple[int, int]:
    """(author share, treasury share) of a fee."""
    treasury = (fee - tip) * PARAMS.treasury_percent // 100
    return fee - treasury, treasury


def all_accounts(view) -> dict[bytes, AccountRecord]:
    return {key[-32:]: AccountRecord.from_bytes(value) for key, value in view.iter_prefix(system.Account.prefix)}


def module_error(errors, name):
    return ("Module", {"index": errors.pallet_index, "error": bytes((errors.index[name], 0, 0, 0))})


@pytest.fixture
def alice(keys):
    return keys["alice"]


@pytest.fixture
def bob(keys):
    return keys["bob"]


@pytest.fixture
def ferdie(keys):
    return keys["ferdie"]


@pytest.fixture
def one_block(chain, trie, store, make_block, commit):
    """one_block(xts, **kw) -> (built block, trie after it), built on genesis."""

    def build(xts, **kw):
        built = make_block(trie, chain.header, xts, **kw)
        return built, commit(store, built)

    return build


# --- transfers and fees ----------------------------------------------------------------------------


def test_transfer_moves_balance_and_charges_fee(chain, trie, sign, transfer, alice, bob, ferdie, account,
                                               total_issuance, one_block, read_events):
    raw = sign(alice, transfer(bob.public, 10**15), 0)
    built, after = one_block([raw])
    assert built.outcomes[0].success
    fee = fee_of(raw)
    author_share, treasury_share = split_fee(fee)
    assert account(after, alice.public).free == ENDOWMENT - 10**15 - fee
    assert account(after, alice.public).nonce == 1
    assert account(after, bob.public).free == ENDOWMENT + 10**15
    assert account(after, ferdie.public).free == ENDOWMENT + author_share
    treasury = TreasuryAccount.get(OverlayState(after.get))
    if treasury_share < ED:  # too little to open the treasury account: burned
        assert account(after, treasury).providers == 0
        assert total_issuance(after) == total_issuance(trie) - treasury_share
    else:
        assert account(after, treasury).free == account(trie, treasury).free + treasury_share
        assert total_issuance(after) == total_issuance(trie)
    records = read_events(after)
    assert names(records)[0] == ("System", "ExtrinsicSuccess")  # the timestamp inherent
    own = events_of(records, 1)
    assert own[-1][1][0] == "ExtrinsicSuccess"
    assert ("Balances", ("Transfer", {"from": alice.public, "to": bob.public, "amount": 10**15})) in own
    assert ("TransactionPayment", ("TransactionFeePaid", {"who": alice.public, "actual_fee": fee, "tip": 0})) in own
    assert ("Balances", ("Deposit", {"who": ferdie.public, "amount": author_share})) in [r["event"] for r in records]


def test_tip_goes_to_the_author(chain, sign, transfer, alice, bob, ferdie, account, one_block):
    tip = 10**12
    raw = sign(alice, transfer(bob.public, 10**15), 0, tip=tip)
    _built, after = one_block([raw])
    fee = fee_of(raw, tip=tip)
    assert account(after, alice.public).free == ENDOWMENT - 10**15 - fee
    assert account(after, ferdie.public).free == ENDOWMENT + split_fee(fee, tip)[0]
    assert split_fee(fee, tip)[0] > tip


def test_failed_call_keeps_only_fee_and_nonce(chain, trie, sign, transfer, alice, bob, account, one_block,
                                              read_events):
    raw = sign(alice, transfer(bob.public, 10 * ENDOWMENT), 0)
    built, after = one_block([raw])
    outcome = built.outcomes[0]
    assert not outcome.success
    assert outcome.error == module_error(BALANCE_ERRORS, "InsufficientBalance")
    assert account(after, alice.public).free == ENDOWMENT - fee_of(raw)
    assert account(after, alice.public).nonce == 1
    assert account(after, bob.public).to_bytes() == account(trie, bob.public).to_bytes()
    before, now = all_accounts(trie), all_accounts(after)
    changed = {who for who in before.keys() | now.keys()
               if before.get(who, AccountRecord()).to_bytes() != now.get(who, AccountRecord()).to_bytes()}
    treasury = TreasuryAccount.get(OverlayState(after.get))
    payer_and_author = {alice.public, dev_account("ferdie").public}
    assert payer_and_author <= changed <= payer_and_author | {treasury}
    failed = [e for e in events_of(read_events(after), 1) if e[1][0] == "ExtrinsicFailed"]
    assert len(failed) == 1
    error = failed[0][1][1]["dispatch_error"]
    assert error == module_error(BALANCE_ERRORS, "InsufficientBalance")
    assert BALANCE_ERRORS.names[error[1]["error"][0]] == "InsufficientBalance"
    assert error[1]["index"] == BALANCES


def test_failed_call_rolls_back_its_writes(chain, trie):
    """A call that writes and then fails leaves nothing behind but what came before its layer."""
    state = OverlayState(trie.get)
    ctx = BlockContext(state, PARAMS, 1, chain.hash, dev_account("ferdie").public)
    alice, bob = dev_account("alice").public, dev_account("bob").public
    currency.withdraw(ctx, alice, 10**9)  # "the fee", outside the layer
    after_fee = dict(state.changes)
    state.start_layer()
    currency.transfer(ctx, alice, bob, 10**12, keep_alive=True)
    currency.reserve(ctx, bob, 10**12)
    assert state.changes != after_fee
    state.rollback_layer()
    assert state.changes == after_fee


def test_block_of_many_transfers_keeps_issuance_exact(chain, trie, sign, transfer, keys, account, one_block,
                                                      total_issuance):
    names_ = list(keys)
    xts = [sign(keys[a], transfer(keys[b].public, 10**15 + i), 0)
           for i, (a, b) in enumerate(zip(names_, names_[1:] + names_[:1]))]
    built, after = one_block(xts)
    assert all(o.success for o in built.outcomes)
    accounts = all_accounts(after)
    assert total_issuance(after) == sum(r.free + r.reserved for r in accounts.values())


# --- events -------------------------------------------------------------------------------------------


def test_events_reencode_to_the_stored_bytes(chain, sign, transfer, alice, bob, rt, one_block, read_events):
    """Every event record in System.Events, fast path or not, is exactly the generic encoding."""
    xts = [sign(alice, transfer(bob.public, 10**15), 0),
           sign(alice, transfer(bob.public, 10 * ENDOWMENT), 1),
           sign(alice, transfer(dev_account("newbie").public, ED), 2),
           sign(bob, rt.encode_call("System", "remark_with_event", {"remark": b"hi"}), 0)]
    _built, after = one_block(xts)
    raw = after.get(system.Events.key())
    records = read_events(after)
    record_type = Vec(_record_type(rt))
    assert record_type.encode(records) == raw
    assert system.EventCount.get(OverlayState(after.get)) == len(records)
    assert all(r["topics"] == [] for r in records)
    assert ("System", "NewAccount") in names(records) and ("Balances", "Endowed") in names(records)
    assert ("System", "Remarked") in names(records)


def _record_type(rt):
    from runtime.codec.scale import Struct

    return Struct(("frame_system", "EventRecord"), [("phase", Phase), ("event", rt.event_enum), ("topics", Vec(H256))])


def test_system_events_declared_type_decodes_stored_value(one_block, sign, transfer, alice, bob, read_events):
    """Metadata publishes System.Events' declared type: it must read the stored bytes as they are."""
    _built, after = one_block([sign(alice, transfer(bob.public, 10**15), 0)])
    declared = system.Events.get(OverlayState(after.get))
    assert declared == read_events(after) and len(declared) > 3


ACCOUNT = st.binary(min_size=32, max_size=32)
BALANCE = st.integers(min_value=0, max_value=U128)


def _fresh_ctx() -> BlockContext:
    ctx = BlockContext(MemoryState(), PARAMS, 1)
    ctx.phase = phase_apply_extrinsic(3)
    return ctx


def _generic(pallet_index, enum, name, payload) -> bytes:
    ctx = _fresh_ctx()
    ctx.deposit_event(pallet_index, enum, name, payload)
    return ctx.events[0]


@settings(deadline=None)
@given(ACCOUNT, BALANCE)
def test_fast_deposit_and_withdraw_events_equal_generic(who, amount):
    for index, name in ((balance_events.DEPOSIT_INDEX, "Deposit"), (balance_events.WITHDRAW_INDEX, "Withdraw")):
        ctx = _fresh_ctx()
        balance_events.deposit_who_amount(ctx, index, who, amount)
        assert ctx.events == [_generic(BALANCES, balance_events.EVENTS, name, {"who": who, "amount": amount})]


@settings(deadline=None)
@given(ACCOUNT, BALANCE, BALANCE)
def test_fast_fee_paid_event_equals_generic(who, fee, tip):
    ctx = _fresh_ctx()
    payment_events.deposit_fee_paid(ctx, who, fee, tip)
    generic = _generic(TRANSACTION_PAYMENT, payment_events.EVENTS, "TransactionFeePaid",
                       {"who": who, "actual_fee": fee, "tip": tip})
    assert ctx.events == [generic]


@settings(deadline=None)
@given(ACCOUNT, ACCOUNT, st.integers(min_value=ED, max_value=10**30))
def test_fast_transfer_event_equals_generic(source, dest, amount):
    if source == dest:
        return
    ctx = _fresh_ctx()
    currency.deposit_creating(ctx, source, amount, event=False)
    ctx.events.clear()
    currency.transfer(ctx, source, dest, amount - ED if amount >= 2 * ED else amount, keep_alive=False)
    moved = amount - ED if amount >= 2 * ED else amount
    generic = _generic(BALANCES, balance_events.EVENTS, "Transfer", {"from": source, "to": dest, "amount": moved})
    assert generic in ctx.events


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 64) - 1), st.sampled_from(["Normal", "Operational", "Mandatory"]),
       st.booleans())
def test_fast_extrinsic_success_event_equals_generic(weight, dispatch_class, pays_fee):
    call = Call("x", 0, [], lambda ctx, origin: None, weight, pays_fee=pays_fee, dispatch_class=dispatch_class)
    info = {"weight": {"ref_time": weight, "proof_size": 0}, "class": dispatch_class,
            "pays_fee": "Yes" if pays_fee else "No"}
    ctx = _fresh_ctx()
    ctx.deposit_event_raw(SYSTEM, SYSTEM_EVENTS.by_name["ExtrinsicSuccess"].index, _dispatch_info_bytes(weight, call))
    assert ctx.events == [_generic(SYSTEM, SYSTEM_EVENTS, "ExtrinsicSuccess", {"dispatch_info": info})]


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 32) - 1), st.integers(min_value=0, max_value=(1 << 32) - 1),
       st.integers(min_value=0, max_value=(1 << 32) - 1), st.integers(min_value=0, max_value=(1 << 32) - 1),
       BALANCE, BALANCE, BALANCE, BALANCE)
def test_account_record_fast_codec_equals_generic(nonce, consumers, providers, sufficients, free, reserved, frozen,
                                                  flags):
    record = AccountRecord(nonce, consumers, providers, sufficients, free, reserved, frozen, flags)
    generic = {"nonce": nonce, "consumers": consumers, "providers": providers, "sufficients": sufficients,
               "data": {"free": free, "reserved": reserved, "frozen": frozen, "flags": flags}}
    assert record.to_bytes() == AccountInfo.encode(generic)
    back = AccountRecord.from_bytes(AccountInfo.encode(generic))
    assert back.to_bytes() == record.to_bytes()
    assert AccountInfo.decode(record.to_bytes()) == generic


# --- existential deposit ----------------------------------------------------------------------------


def _send_leaving(sign, transfer, sender, dest, kind, left, nonce=0):
    """A signed transfer of everything but `left` (after its own fee) from an endowed sender."""
    value = ENDOWMENT - left
    for _ in range(3):
        raw = sign(sender, transfer(dest, value, kind), nonce)
        value = ENDOWMENT - fee_of(raw) - left
    raw = sign(sender, transfer(dest, value, kind), nonce)
    assert ENDOWMENT - fee_of(raw) - value == left
    return raw, value


def test_allow_death_reaps_sender_and_burns_dust(chain, trie, sign, transfer, bob, alice, account, one_block,
                                                 read_events, total_issuance):
    dust = ED // 2
    raw, value = _send_leaving(sign, transfer, bob, alice.public, "transfer_allow_death", dust)
    built, after = one_block([raw])
    assert built.outcomes[0].success
    assert account(after, bob.public).providers == 0
    assert after.get(system.Account.prefix + __import__("runtime.hashing").hashing.blake2_128(bob.public)
                     + bob.public) is None
    assert account(after, alice.public).free == ENDOWMENT + value
    records = events_of(read_events(after), 1)
    assert ("Balances", ("DustLost", {"account": bob.public, "amount": dust})) in records
    assert ("System", ("KilledAccount", {"account": bob.public})) in records
    _author, treasury_share = split_fee(fee_of(raw))
    assert total_issuance(after) == total_issuance(trie) - dust - treasury_share
    assert total_issuance(after) == sum(r.free + r.reserved for r in all_accounts(after).values())


def test_keep_alive_refuses_to_reap(chain, sign, transfer, bob, alice, account, one_block):
    raw, _value = _send_leaving(sign, transfer, bob, alice.public, "transfer_keep_alive", ED // 2)
    built, after = one_block([raw])
    assert built.outcomes[0].error == module_error(BALANCE_ERRORS, "Expendability")
    assert account(after, bob.public).free == ENDOWMENT - fee_of(raw)


def test_keep_alive_may_leave_exactly_the_deposit(chain, sign, transfer, bob, alice, account, one_block):
    raw, _value = _send_leaving(sign, transfer, bob, alice.public, "transfer_keep_alive", ED)
    built, after = one_block([raw])
    assert built.outcomes[0].success
    assert account(after, bob.public).free == ED


def test_new_account_below_deposit_refused(chain, sign, transfer, alice, account, one_block, read_events):
    newbie = dev_account("newbie").public
    built, after = one_block([sign(alice, transfer(newbie, ED - 1), 0), sign(alice, transfer(newbie, ED), 1)])
    assert built.outcomes[0].error == module_error(BALANCE_ERRORS, "ExistentialDeposit")
    assert built.outcomes[1].success
    assert account(after, newbie).free == ED and account(after, newbie).providers == 1
    records = events_of(read_events(after), 2)
    assert ("System", ("NewAccount", {"account": newbie})) in records
    assert ("Balances", ("Endowed", {"account": newbie, "free_balance": ED})) in records


def test_transfer_all_empties_the_account(chain, sign, rt, alice, bob, account, one_block):
    call = rt.encode_call("Balances", "transfer_all", {"dest": ("Id", alice.public), "keep_alive": False})
    raw = sign(bob, call, 0)
    built, after = one_block([raw])
    assert built.outcomes[0].success
    assert account(after, bob.public).providers == 0
    assert account(after, alice.public).free == 2 * ENDOWMENT - fee_of(raw)


def test_transfer_all_keep_alive_leaves_the_deposit(chain, sign, rt, alice, bob, account, one_block):
    call = rt.encode_call("Balances", "transfer_all", {"dest": ("Id", alice.public), "keep_alive": True})
    built, after = one_block([sign(bob, call, 0)])
    assert built.outcomes[0].success
    assert account(after, bob.public).free == ED


def test_transfer_to_unresolvable_address_fails(chain, sign, rt, alice, one_block):
    call = rt.encode_call("Balances", "transfer_keep_alive", {"dest": ("Index", 3), "value": ED})
    built, _after = one_block([sign(alice, call, 0)])
    assert built.outcomes[0].error == ("CannotLookup", None)


def test_force_transfer_needs_root(chain, sign, rt, alice, bob, one_block):
    call = rt.encode_call("Balances", "force_transfer",
                          {"source": ("Id", bob.public), "dest": ("Id", alice.public), "value": ED})
    built, _after = one_block([sign(alice, call, 0)])
    assert built.outcomes[0].error == ("BadOrigin", None)


# --- sudo and runtime upgrades --------------------------------------------------------------------------


def _sudo(rt, pallet, name, args):
    return rt.encode_call("Sudo", "sudo", {"call": (pallet, (name, args))})


def test_sudo_by_non_sudo_refused(chain, sign, rt, bob, one_block):
    built, after = one_block([sign(bob, _sudo(rt, "System", "upgrade_runtime", {"spec_version": 2}), 0)])
    assert built.outcomes[0].error == module_error(SUDO_ERRORS, "RequireSudo")
    assert built.outcomes[0].error[1]["index"] == SUDO
    assert system.PendingSpecVersion.get(OverlayState(after.get)) is None


def test_upgrade_runtime_needs_root(chain, sign, rt, alice, one_block):
    built, _after = one_block([sign(alice, rt.encode_call("System", "upgrade_runtime", {"spec_version": 2}), 0)])
    assert built.outcomes[0].error == ("BadOrigin", None)


def test_sudo_upgrade_to_unknown_version_fails_inside_sudid(chain, sign, rt, alice, one_block, read_events):
    unknown = max(RUNTIMES) + 1
    built, after = one_block([sign(alice, _sudo(rt, "System", "upgrade_runtime", {"spec_version": unknown}), 0)])
    assert built.outcomes[0].success  # sudo itself succeeded
    sudid = [e for e in events_of(read_events(after), 1) if e[0] == "Sudo"]
    assert sudid == [("Sudo", ("Sudid", {"sudo_result": ("Err", module_error(SYSTEM_ERRORS,
                                                                               "FailedToExtractRuntimeVersion"))}))]
    assert system.PendingSpecVersion.get(OverlayState(after.get)) is None


def test_sudo_upgrade_to_same_version_fails_inside_sudid(chain, sign, rt, alice, one_block, read_events):
    _built, after = one_block([sign(alice, _sudo(rt, "System", "upgrade_runtime", {"spec_version": 1}), 0)])
    sudid = [e for e in events_of(read_events(after), 1) if e[0] == "Sudo"]
    assert sudid[0][1][1]["sudo_result"] == ("Err", module_error(SYSTEM_ERRORS, "SpecVersionNeedsToIncrease"))


def test_sudo_dispatches_as_root(chain, sign, rt, alice, bob, account, one_block):
    call = _sudo(rt, "Balances", "force_transfer",
                 {"source": ("Id", bob.public), "dest": ("Id", alice.public), "value": 10**15})
    built, after = one_block([sign(alice, call, 0)])
    assert built.outcomes[0].success
    assert account(after, bob.public).free == ENDOWMENT - 10**15


def test_sudo_set_key_hands_over(chain, trie, store, sign, rt, alice, bob, make_block, commit):
    first = make_block(trie, chain.header, [sign(alice, rt.encode_call("Sudo", "set_key", {"new": ("Id", bob.public)}), 0)])
    after = commit(store, first)
    second = make_block(after, first.header, [
        sign(alice, _sudo(rt, "System", "remark", {"remark": b""}), 1),
        sign(bob, _sudo(rt, "System", "remark", {"remark": b""}), 0),
    ])
    assert second.outcomes[0].error == module_error(SUDO_ERRORS, "RequireSudo")
    assert second.outcomes[1].success


@pytest.fixture
def spec_99():
    """A runtime 99 in the table (the same pallets): what a node that knows the upgrade holds."""
    pallets = [p for p in get_runtime(1).pallets if p.name != "Sudo"] + [make_sudo_pallet]
    record_target = system.EventRecord.target  # constructing a runtime re-points System.Events' type
    runtime = Runtime(99, pallets)
    RUNTIMES[99] = runtime
    KNOWN_SPEC_VERSIONS.add(99)
    try:
        yield runtime
    finally:
        del RUNTIMES[99]
        KNOWN_SPEC_VERSIONS.discard(99)
        system.EventRecord.target = record_target


def test_sudo_upgrade_switches_runtime_at_next_block(chain, trie, store, sign, transfer, rt, alice, bob, spec_99,
                                                     make_block, commit, read_events):
    first = make_block(trie, chain.header, [sign(alice, _sudo(rt, "System", "upgrade_runtime", {"spec_version": 99}), 0)])
    after1 = commit(store, first)
    state1 = OverlayState(after1.get)
    assert system.PendingSpecVersion.get(state1) == 99 and system.SpecVersion.get(state1) == 1
    assert ("System", ("RuntimeUpgradeScheduled", {"spec_version": 99})) in events_of(read_events(after1), 1)
    new = sign(bob, transfer(alice.public, 10**15), 0, spec_version=99)
    with pytest.raises(InvalidTransaction):
        make_block(after1, first.header, [sign(bob, transfer(alice.public, 10**15), 0)])  # signed for spec 1
    second = make_block(after1, first.header, [new])
    after2 = commit(store, second)
    state2 = OverlayState(after2.get)
    assert system.SpecVersion.get(state2) == 99 and system.PendingSpecVersion.get(state2) is None
    records = read_events(after2)
    assert records[0]["phase"] == ("Initialization", None)
    assert records[0]["event"] == ("System", ("CodeUpdated", None))
    assert second.outcomes[0].success
    for parent_trie, built in ((trie, first), (after1, second)):
        assert execute_block(Trie(parent_trie.root, dict(store).get), built.block).state_root == built.header.state_root


def test_validate_after_upgrade_block_uses_the_next_blocks_runtime(chain, trie, store, sign, transfer, rt, alice,
                                                                   bob, spec_99, make_block, commit):
    first = make_block(trie, chain.header, [sign(alice, _sudo(rt, "System", "upgrade_runtime", {"spec_version": 99}), 0)])
    after1 = commit(store, first)
    new = sign(bob, transfer(alice.public, 10**15), 0, spec_version=99)
    validate_transaction(OverlayState(after1.get), first.header, new)
    old = sign(bob, transfer(alice.public, 10**15), 0)
    with pytest.raises(InvalidTransaction) as info:
        validate_transaction(OverlayState(after1.get), first.header, old)
    assert info.value.kind == "BadProof"


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
    record_type = Vec(_record_type(runtime))
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
