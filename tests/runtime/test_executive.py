"""The executive and the pallets through whole blocks: balances and fees, failed calls rolled back
to their fee and nonce, events, the existential deposit, sudo and the runtime upgrade."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gensyn_node.keyring import dev_account
from runtime.codec.scale import Vec
from runtime.context import BlockContext, phase_apply_extrinsic
from runtime.executive import (
    _dispatch_info_bytes,
    execute_block,
    validate_transaction,
)
from runtime.frame import Call
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
from runtime.storage import MemoryState, OverlayState
from runtime.transaction_validity import InvalidTransaction
from runtime.trie import Trie
from runtime.types import AccountInfo
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
    record_type = Vec(rt.event_record)
    assert record_type.encode(records) == raw
    assert system.EventCount.get(OverlayState(after.get)) == len(records)
    assert all(r["topics"] == [] for r in records)
    assert ("System", "NewAccount") in names(records) and ("Balances", "Endowed") in names(records)
    assert ("System", "Remarked") in names(records)


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
