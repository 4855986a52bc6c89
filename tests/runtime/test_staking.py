"""Staking pallet: every call through signed extrinsics in real blocks and through its handler,
every error as a no-op, eras (election, rewards, unlocking), slashing, and total issuance kept
exact under random sequences of staking operations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gensyn_node.keyring import DEV_NAMES, Keypair, dev_account
from runtime.block import Header
from runtime.codec.errors import CodecError
from runtime.context import BlockContext
from runtime.executive import ApplyOutcome, BlockBuilder, execute_block
from runtime.extrinsic import encode_signed, signing_payload
from runtime.frame import ROOT, DispatchError, signed
from runtime.genesis import InvalidGenesis, build_genesis, build_genesis_state
from runtime.hashing import blake2_256, twox_128
from runtime.pallets.balances.errors import ERRORS as BALANCES_ERRORS
from runtime.pallets.balances.storage import TotalIssuance
from runtime.pallets.staking import PALLET, api, get_active_validators, get_current_era, slash
from runtime.pallets.staking import storage as staking
from runtime.pallets.staking.api import get_era_reward_points, get_ledger, get_offences, get_session_key
from runtime.pallets.staking.eras import on_initialize
from runtime.pallets.staking.errors import ERRORS
from runtime.pallets.staking.types import MAX_UNLOCKING_CHUNKS, StakingLedger, UnlockChunk
from runtime.pallets.system.account import AccountRecord, get_account
from runtime.pallets.system.storage import Account, Events
from runtime.params import ChainParameters
from runtime.storage import MemoryState, OverlayState
from runtime.trie import Trie
from runtime.types import Era
from runtime.version import LATEST_SPEC_VERSION, TRANSACTION_VERSION, get_runtime

PARAMS = ChainParameters(era_length=4, bonding_duration=2, max_validators=2, min_validator_bond=10**12,
                         era_reward_per_block=10**12)
ED = PARAMS.existential_deposit
MIN_BOND = PARAMS.min_validator_bond
REWARD = PARAMS.era_reward_per_block
ENDOWMENT = 10**18
KEYS = {name: dev_account(name) for name in DEV_NAMES}
ALICE, BOB, CHARLIE, DAVE, EVE, FERDIE = (KEYS[n].public for n in DEV_NAMES)
ALICE_BOND, BOB_BOND = 5 * MIN_BOND, 3 * MIN_BOND
PREFS = {"commission": 50_000_000, "blocked": False}
RT = get_runtime(LATEST_SPEC_VERSION)


def session_key(name: str) -> bytes:
    return blake2_256(b"session:" + name.encode())


def genesis_config(validators: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    if validators is None:
        validators = [{"account": ALICE, "session_key": session_key("alice"), "bond": ALICE_BOND},
                      {"account": BOB, "session_key": session_key("bob"), "bond": BOB_BOND}]
    return {"balances": [(k.public, ENDOWMENT) for k in KEYS.values()], "sudo": ALICE, "params": PARAMS,
            "validators": list(validators)}


GENESIS_STORAGE = build_genesis_state(genesis_config())


# --- helpers: direct handler calls ---------------------------------------------------------------


def make_ctx(block_number: int = 1, author: bytes | None = None) -> BlockContext:
    return BlockContext(MemoryState(GENESIS_STORAGE), PARAMS, block_number, author=author)


def assert_noop(ctx: BlockContext, action: Callable[[], Any], error: DispatchError | None = None) -> DispatchError:
    """Substrate's assert_noop!: the action fails with `error` and writes nothing at all."""
    changes, event_count = dict(ctx.state.changes), len(ctx.events)
    with pytest.raises(DispatchError) as raised:
        action()
    if error is not None:
        assert raised.value.error == error.error
    assert ctx.state.changes == changes
    assert len(ctx.events) == event_count
    return raised.value


def dispatch(ctx: BlockContext, who: bytes, name: str, **args: Any) -> None:
    PALLET.calls_by_name[name].handler(ctx, signed(who), **args)


def advance_era(ctx: BlockContext, author: bytes | None = None) -> None:
    """Run on_initialize of the next era-boundary block."""
    ctx.block_number = (ctx.block_number // PARAMS.era_length + 1) * PARAMS.era_length
    ctx.author = author
    ctx.extra.clear()
    on_initialize(ctx)


def assert_issuance_exact(state: OverlayState) -> None:
    """TotalIssuance == the sum of free + reserved over every System.Account entry."""
    records = (AccountRecord.from_bytes(raw) for _key, raw in state.iter_prefix(Account.prefix))
    assert TotalIssuance.get(state) == sum(r.free + r.reserved for r in records)


def staking_items(state: OverlayState) -> dict[bytes, bytes]:
    return dict(state.iter_prefix(twox_128(b"Staking")))


def event_names_of(ctx: BlockContext) -> list[str]:
    records = [RT.event_record.decode(raw) for raw in ctx.events]
    return [r["event"][1][0] for r in records if r["event"][0] == "Staking"]


# --- helpers: a chain of real blocks -------------------------------------------------------------


class Chain:
    """An in-memory chain: blocks are built with BlockBuilder, re-imported with execute_block,
    and committed; transactions are signed by the dev keys with tracked nonces."""

    def __init__(self, config: dict[str, Any]):
        header, _storage, nodes = build_genesis(config)
        self.genesis: Header = header
        self.head = header
        self.store = dict(nodes)
        self.trie = Trie(header.state_root, self.store.get)
        self.nonces: dict[bytes, int] = {}

    def sign(self, key: Keypair, call: bytes) -> bytes:
        nonce = self.nonces.get(key.public, 0)
        self.nonces[key.public] = nonce + 1
        payload = signing_payload(call, Era.encode(None), nonce, 0, LATEST_SPEC_VERSION, TRANSACTION_VERSION,
                                  self.genesis.hash, self.genesis.hash)
        return encode_signed(call, key.public, key.scheme, key.sign(payload), None, nonce, 0)

    def staking_call(self, key: Keypair, name: str, **args: Any) -> bytes:
        return self.sign(key, RT.encode_call("Staking", name, args))

    def produce(self, xts: Sequence[bytes] = (), author: bytes = ALICE) -> list[ApplyOutcome]:
        number = self.head.number + 1
        builder = BlockBuilder(self.trie, self.head, slot=number, author=author,
                               timestamp_ms=number * PARAMS.slot_duration_ms)
        outcomes = [builder.push(xt) for xt in xts]
        block, built = builder.build()
        imported = execute_block(Trie(self.head.state_root, self.store.get), block)
        assert imported.state_root == built.state_root
        self.store.update(built.new_nodes)
        self.trie = Trie(built.state_root, self.store.get)
        self.head = block.header
        return outcomes

    def produce_until(self, number: int) -> None:
        while self.head.number < number:
            self.produce()

    def state(self) -> OverlayState:
        return OverlayState(self.trie.get, self.trie.iter_prefix)

    def events(self, pallet: str = "Staking") -> list[tuple[str, Any]]:
        """(name, payload) of the head block's events of `pallet`."""
        return [r["event"][1] for r in Events.get(self.state()) if r["event"][0] == pallet]


@pytest.fixture
def chain() -> Chain:
    return Chain(genesis_config())


# --- genesis -------------------------------------------------------------------------------------


def test_genesis_bonds_validators_and_sets_era_zero_set(chain: Chain) -> None:
    state = chain.state()
    assert get_current_era(state) == 0
    assert get_active_validators(chain.trie) == [(ALICE, session_key("alice"), ALICE_BOND),
                                                 (BOB, session_key("bob"), BOB_BOND)]
    alice = get_account(state, ALICE)
    assert (alice.reserved, alice.free, alice.consumers) == (ALICE_BOND, ENDOWMENT - ALICE_BOND, 1)
    assert get_ledger(state, ALICE) == StakingLedger(ALICE, ALICE_BOND, ALICE_BOND, [])
    assert get_session_key(state, BOB) == session_key("bob")
    assert_issuance_exact(state)


@pytest.mark.parametrize("entry", [
    {"account": bytes(32), "session_key": session_key("x"), "bond": MIN_BOND},  # not endowed
    {"account": CHARLIE, "session_key": session_key("alice"), "bond": MIN_BOND},  # duplicate key
    {"account": ALICE, "session_key": session_key("y"), "bond": MIN_BOND},  # duplicate account
    {"account": CHARLIE, "session_key": session_key("c"), "bond": MIN_BOND - 1},  # below the minimum
    {"account": CHARLIE, "session_key": session_key("c"), "bond": ENDOWMENT + 1},  # more than endowed
    {"account": CHARLIE, "session_key": b"short", "bond": MIN_BOND},  # malformed key
])
def test_genesis_rejects_invalid_validator(entry: dict[str, Any]) -> None:
    validators = [{"account": ALICE, "session_key": session_key("alice"), "bond": ALICE_BOND}, entry]
    with pytest.raises(InvalidGenesis):
        build_genesis_state(genesis_config(validators))


def test_genesis_elects_top_max_validators_and_none_without_validators() -> None:
    validators = [{"account": k.public, "session_key": session_key(n), "bond": MIN_BOND * (i + 1)}
                  for i, (n, k) in enumerate(KEYS.items())]
    state = MemoryState(build_genesis_state(genesis_config(validators)))
    assert [v[0] for v in get_active_validators(state)] == [FERDIE, EVE]
    # Without validators genesis writes no staking state at all.
    assert staking_items(MemoryState(build_genesis_state(genesis_config([])))) == {}


# --- calls through signed extrinsics in blocks ---------------------------------------------------


def test_bond_validate_and_election_through_blocks(chain: Chain) -> None:
    xts = [chain.staking_call(KEYS["charlie"], "bond", value=4 * MIN_BOND, payee=("Stash", None)),
           chain.staking_call(KEYS["charlie"], "validate", prefs=PREFS, session_key=session_key("charlie"))]
    assert all(o.success for o in chain.produce(xts))
    state = chain.state()
    assert get_ledger(state, CHARLIE) == StakingLedger(CHARLIE, 4 * MIN_BOND, 4 * MIN_BOND, [])
    assert get_account(state, CHARLIE).reserved == 4 * MIN_BOND
    assert staking.Validators.get(state, CHARLIE) == PREFS
    assert staking.Payee.get(state, CHARLIE) == ("Stash", None)
    assert [name for name, _ in chain.events()] == ["Bonded", "SessionKeySet", "ValidatorPrefsSet"]
    chain.produce_until(PARAMS.era_length)
    assert get_current_era(chain.trie) == 1
    assert [v[:2] for v in get_active_validators(chain.trie)] == [(ALICE, session_key("alice")),
                                                                  (CHARLIE, session_key("charlie"))]
    assert [n for n, _ in chain.events()] == ["Rewarded", "EraPaid", "StakersElected", "NewEra"]
    assert staking.ActiveEra.get(chain.state()) == {"index": 1, "start": PARAMS.era_length * PARAMS.slot_duration_ms}


def test_bond_extra_unbond_withdraw_through_blocks(chain: Chain) -> None:
    charlie = KEYS["charlie"]
    chain.produce([chain.staking_call(charlie, "bond", value=2 * MIN_BOND, payee=("Staked", None)),
                   chain.staking_call(charlie, "bond_extra", max_additional=MIN_BOND),
                   chain.staking_call(charlie, "unbond", value=MIN_BOND)])
    chunks = [UnlockChunk(MIN_BOND, PARAMS.bonding_duration)]
    assert get_ledger(chain.state(), CHARLIE) == StakingLedger(CHARLIE, 3 * MIN_BOND, 2 * MIN_BOND, chunks)
    # One era later the chunk is still locked: withdrawing frees nothing.
    chain.produce_until(PARAMS.era_length)
    chain.produce([chain.staking_call(charlie, "withdraw_unbonded", num_slashing_spans=0)])
    assert get_account(chain.state(), CHARLIE).reserved == 3 * MIN_BOND
    # bonding_duration eras after the unbond it is free.
    chain.produce_until(PARAMS.era_length * PARAMS.bonding_duration)
    assert get_current_era(chain.trie) == PARAMS.bonding_duration
    outcomes = chain.produce([chain.staking_call(charlie, "withdraw_unbonded", num_slashing_spans=0)])
    assert outcomes[0].success
    assert ("Withdrawn", {"stash": CHARLIE, "amount": MIN_BOND}) in chain.events()
    state = chain.state()
    assert get_account(state, CHARLIE).reserved == 2 * MIN_BOND
    assert get_ledger(state, CHARLIE) == StakingLedger(CHARLIE, 2 * MIN_BOND, 2 * MIN_BOND, [])
    assert_issuance_exact(state)


def test_unbond_all_then_withdraw_removes_the_ledger(chain: Chain) -> None:
    charlie = KEYS["charlie"]
    chain.produce([chain.staking_call(charlie, "bond", value=MIN_BOND, payee=("Staked", None)),
                   chain.staking_call(charlie, "unbond", value=MIN_BOND)])
    chain.produce_until(PARAMS.era_length * PARAMS.bonding_duration)
    chain.produce([chain.staking_call(charlie, "withdraw_unbonded", num_slashing_spans=0)])
    state = chain.state()
    assert get_ledger(state, CHARLIE) is None
    assert not staking.Bonded.contains(state, CHARLIE)
    assert (get_account(state, CHARLIE).reserved, get_account(state, CHARLIE).consumers) == (0, 0)


def test_chill_set_payee_through_blocks(chain: Chain) -> None:
    bob = KEYS["bob"]
    outcomes = chain.produce([chain.staking_call(bob, "chill"),
                              chain.staking_call(bob, "set_payee", payee=("Stash", None))])
    assert all(o.success for o in outcomes)
    state = chain.state()
    assert not staking.Validators.contains(state, BOB)
    assert staking.Payee.get(state, BOB) == ("Stash", None)
    assert ("Chilled", {"stash": BOB}) in chain.events()
    # Chilled takes effect at the next election.
    assert [v[0] for v in get_active_validators(chain.trie)] == [ALICE, BOB]
    chain.produce_until(PARAMS.era_length)
    assert [v[0] for v in get_active_validators(chain.trie)] == [ALICE]


def test_root_calls_through_sudo(chain: Chain) -> None:
    sudo = KEYS["alice"]
    count = RT.encode_call("Staking", "set_validator_count", {"new": 1})
    force = RT.encode_call("Staking", "force_new_era", {})
    outcomes = chain.produce([chain.sign(sudo, RT.encode_call("Sudo", "sudo", {"call": RT.call_enum.decode(count)})),
                              chain.sign(sudo, RT.encode_call("Sudo", "sudo", {"call": RT.call_enum.decode(force)}))])
    assert all(o.success for o in outcomes)
    assert staking.ValidatorCount.get(chain.state()) == 1
    chain.produce()  # block 2: the forced era starts here, not at block 4
    assert get_current_era(chain.trie) == 1
    assert staking.ErasStartBlock.get(chain.state(), 1) == 2
    assert get_active_validators(chain.trie) == [(ALICE, session_key("alice"), ALICE_BOND + REWARD)]
    chain.produce()
    assert get_current_era(chain.trie) == 1  # forcing lasts one era


def test_failed_extrinsic_changes_no_staking_state(chain: Chain) -> None:
    before = staking_items(chain.state())
    reserved = get_account(chain.state(), ALICE).reserved
    outcomes = chain.produce([chain.staking_call(KEYS["alice"], "bond", value=MIN_BOND, payee=("Staked", None)),
                              chain.staking_call(KEYS["charlie"], "unbond", value=1),
                              chain.staking_call(KEYS["dave"], "validate", prefs=PREFS, session_key=session_key("d"))],
                             author=FERDIE)
    assert [o.error for o in outcomes] == [ERRORS(n).error for n in ("AlreadyBonded", "NotController", "NotController")]
    after = staking_items(chain.state())
    # The block itself mixes its parent's hash into the era randomness (on_initialize); the
    # failed calls change nothing else.
    accumulator = staking.RandomnessUnderConstruction.key()
    assert after.pop(accumulator) != before.pop(accumulator, None)
    assert after == before
    assert get_account(chain.state(), ALICE).reserved == reserved
    assert [name for name, _ in chain.events("System") if name == "ExtrinsicFailed"] == ["ExtrinsicFailed"] * 3


def test_call_encoding_matches_substrate() -> None:
    assert RT.encode_call("Staking", "bond", {"value": 1, "payee": ("Staked", None)}) == bytes([4, 0, 4, 0])
    assert RT.encode_call("Staking", "chill") == bytes([4, 6])
    prefs = {"commission": 1, "blocked": True}
    validate = RT.encode_call("Staking", "validate", {"prefs": prefs, "session_key": bytes(32)})
    assert validate == bytes([4, 4, 4, 1]) + bytes(32)
    with pytest.raises(CodecError):
        RT.decode_call(bytes([4, 4]) + bytes([0x02, 0x2A, 0x6B, 0xEE]) + b"\x00" + bytes(32))  # 1_000_000_000 + 1 ppb


# --- calls through their handlers ----------------------------------------------------------------


def test_bond_handler_success() -> None:
    ctx = make_ctx()
    dispatch(ctx, CHARLIE, "bond", value=ED, payee=("Account", DAVE))
    assert get_ledger(ctx.state, CHARLIE) == StakingLedger(CHARLIE, ED, ED, [])
    assert staking.Bonded.get(ctx.state, CHARLIE) == CHARLIE and get_account(ctx.state, CHARLIE).consumers == 1
    assert event_names_of(ctx) == ["Bonded"]


@pytest.mark.parametrize(("who", "value", "error"), [
    (ALICE, MIN_BOND, ERRORS("AlreadyBonded")),
    (CHARLIE, ED - 1, ERRORS("InsufficientBond")),
    (CHARLIE, ENDOWMENT + 1, BALANCES_ERRORS("InsufficientBalance")),
    (bytes(32), ED, BALANCES_ERRORS("InsufficientBalance")),
])
def test_bond_errors_are_noops(who: bytes, value: int, error: DispatchError) -> None:
    ctx = make_ctx()
    assert_noop(ctx, lambda: dispatch(ctx, who, "bond", value=value, payee=("Staked", None)), error)


def test_calls_check_origin() -> None:
    ctx = make_ctx()
    bond = PALLET.calls_by_name["bond"].handler
    assert_noop(ctx, lambda: bond(ctx, ROOT, value=ED, payee=("Staked", None)))
    assert_noop(ctx, lambda: dispatch(ctx, ALICE, "set_validator_count", new=3))
    assert_noop(ctx, lambda: dispatch(ctx, ALICE, "force_new_era"))


def test_bond_extra_handler_caps_at_free_balance() -> None:
    ctx = make_ctx()
    dispatch(ctx, ALICE, "bond_extra", max_additional=10 * ENDOWMENT)
    assert get_account(ctx.state, ALICE).free == 0
    assert get_ledger(ctx.state, ALICE) == StakingLedger(ALICE, ENDOWMENT, ENDOWMENT, [])
    assert_issuance_exact(ctx.state)


def test_unbond_handler_merges_chunks_of_one_era_and_takes_dust() -> None:
    ctx = make_ctx()
    dispatch(ctx, CHARLIE, "bond", value=10 * ED, payee=("Staked", None))
    dispatch(ctx, CHARLIE, "unbond", value=3 * ED)
    dispatch(ctx, CHARLIE, "unbond", value=6 * ED + 1)  # would leave ED - 1 active: all of it goes
    chunks = [UnlockChunk(10 * ED, PARAMS.bonding_duration)]
    assert get_ledger(ctx.state, CHARLIE) == StakingLedger(CHARLIE, 10 * ED, 0, chunks)


@pytest.mark.parametrize(("name", "args", "error"), [
    ("bond_extra", {"max_additional": ED}, "NotStash"),
    ("unbond", {"value": ED}, "NotController"),
    ("withdraw_unbonded", {"num_slashing_spans": 0}, "NotController"),
    ("validate", {"prefs": PREFS, "session_key": session_key("charlie")}, "NotController"),
    ("chill", {}, "NotController"),
    ("set_payee", {"payee": ("Stash", None)}, "NotController"),
])
def test_calls_of_unbonded_account_are_noops(name: str, args: dict[str, Any], error: str) -> None:
    ctx = make_ctx()
    assert_noop(ctx, lambda: dispatch(ctx, CHARLIE, name, **args), ERRORS(error))


def test_validator_unbond_below_min_bond_is_noop() -> None:
    ctx = make_ctx()
    # A validator must keep the minimum bond active.
    assert_noop(ctx, lambda: dispatch(ctx, BOB, "unbond", value=BOB_BOND - MIN_BOND + 1), ERRORS("InsufficientBond"))
    dispatch(ctx, BOB, "unbond", value=BOB_BOND - MIN_BOND)


def test_unbond_no_more_chunks_is_noop() -> None:
    ctx = make_ctx()
    dispatch(ctx, CHARLIE, "bond", value=100 * ED, payee=("Staked", None))
    for era in range(MAX_UNLOCKING_CHUNKS):
        staking.CurrentEra.put(ctx.state, era)
        dispatch(ctx, CHARLIE, "unbond", value=ED)
    dispatch(ctx, CHARLIE, "unbond", value=ED)  # same era: merges into the last chunk
    staking.CurrentEra.put(ctx.state, MAX_UNLOCKING_CHUNKS)
    assert_noop(ctx, lambda: dispatch(ctx, CHARLIE, "unbond", value=ED), ERRORS("NoMoreChunks"))


def test_validate_below_min_bond_or_with_taken_key_is_noop() -> None:
    ctx = make_ctx()
    key = session_key("charlie")
    dispatch(ctx, CHARLIE, "bond", value=MIN_BOND - 1, payee=("Staked", None))
    assert_noop(ctx, lambda: dispatch(ctx, CHARLIE, "validate", prefs=PREFS, session_key=key),
                ERRORS("InsufficientBond"))
    dispatch(ctx, CHARLIE, "bond_extra", max_additional=1)
    taken = session_key("bob")
    assert_noop(ctx, lambda: dispatch(ctx, CHARLIE, "validate", prefs=PREFS, session_key=taken),
                ERRORS("DuplicateSessionKey"))
    dispatch(ctx, CHARLIE, "validate", prefs=PREFS, session_key=key)
    assert staking.KeyOwner.get(ctx.state, key) == CHARLIE


def test_validate_new_session_key_releases_the_old_one_but_not_within_the_era() -> None:
    ctx = make_ctx()
    old, new = session_key("bob"), session_key("bob2")
    dispatch(ctx, BOB, "validate", prefs=PREFS, session_key=new)
    assert staking.KeyOwner.get(ctx.state, old) is None and api.get_validator_by_session_key(ctx.state, old) == BOB
    assert get_session_key(ctx.state, BOB) == new
    # Bob's old key still signs for the current era: nobody else may take it yet.
    dispatch(ctx, CHARLIE, "bond", value=MIN_BOND, payee=("Staked", None))
    assert_noop(ctx, lambda: dispatch(ctx, CHARLIE, "validate", prefs=PREFS, session_key=old),
                ERRORS("DuplicateSessionKey"))
    advance_era(ctx)
    dispatch(ctx, CHARLIE, "validate", prefs=PREFS, session_key=old)


def test_set_payee_controller_is_noop() -> None:
    ctx = make_ctx()
    assert_noop(ctx, lambda: dispatch(ctx, ALICE, "set_payee", payee=("Controller", None)),
                ERRORS("ControllerDeprecated"))


# --- eras: election, rewards ---------------------------------------------------------------------


def test_election_takes_top_n_above_min_bond_with_account_tie_break() -> None:
    ctx = make_ctx()
    for who, bond in ((CHARLIE, ALICE_BOND), (DAVE, ALICE_BOND), (EVE, 10 * MIN_BOND)):
        dispatch(ctx, who, "bond", value=bond, payee=("Staked", None))
        dispatch(ctx, who, "validate", prefs=PREFS, session_key=blake2_256(who))
    staking.ValidatorCount.put(ctx.state, 3)
    staking.MinValidatorBond.put(ctx.state, 6 * MIN_BOND)  # Eve alone is above it now
    advance_era(ctx)
    assert [v[0] for v in get_active_validators(ctx.state)] == [EVE]
    staking.MinValidatorBond.put(ctx.state, MIN_BOND)
    advance_era(ctx)
    tied = sorted([ALICE, CHARLIE, DAVE])
    assert [v[0] for v in get_active_validators(ctx.state)] == [EVE, *tied[:2]]
    assert [v[2] for v in get_active_validators(ctx.state)] == [10 * MIN_BOND, ALICE_BOND, ALICE_BOND]


def test_election_with_no_candidate_keeps_the_set() -> None:
    ctx = make_ctx()
    dispatch(ctx, ALICE, "chill")
    dispatch(ctx, BOB, "chill")
    before = get_active_validators(ctx.state)
    advance_era(ctx)
    assert get_active_validators(ctx.state) == before
    assert "StakingElectionFailed" in event_names_of(ctx)
    assert get_current_era(ctx.state) == 1


def test_rewards_are_paid_by_authored_blocks(chain: Chain) -> None:
    chain.produce([chain.staking_call(KEYS["bob"], "set_payee", payee=("Stash", None))], author=ALICE)
    chain.produce(author=BOB)
    chain.produce(author=ALICE)
    assert get_era_reward_points(chain.trie, 0) == {ALICE: 2, BOB: 1}
    before = chain.state()
    alice_before, bob_before = get_account(before, ALICE), get_account(before, BOB)
    issuance_before = TotalIssuance.get(before)
    chain.produce(author=FERDIE)  # block 4: era 0 is paid; Ferdie is not bonded: no point
    assert get_era_reward_points(chain.trie, 1) == {}
    state = chain.state()
    alice, bob = get_account(state, ALICE), get_account(state, BOB)
    assert alice.reserved == alice_before.reserved + 2 * REWARD  # Staked
    assert get_ledger(state, ALICE) == StakingLedger(ALICE, ALICE_BOND + 2 * REWARD, ALICE_BOND + 2 * REWARD, [])
    assert bob.free == bob_before.free + REWARD  # Stash
    assert TotalIssuance.get(state) == issuance_before + 3 * REWARD
    assert ("EraPaid", {"era_index": 0, "validator_payout": 3 * REWARD, "remainder": 0}) in chain.events()
    assert_issuance_exact(state)


def test_rewards_to_none_and_to_unborn_account_are_not_minted() -> None:
    ctx = make_ctx(author=ALICE)
    on_initialize(ctx)
    ctx.author = BOB
    on_initialize(ctx)
    dispatch(ctx, ALICE, "set_payee", payee=("None", None))
    dispatch(ctx, BOB, "set_payee", payee=("Account", bytes(32)))
    issuance = TotalIssuance.get(ctx.state)
    ctx.params = ChainParameters(era_length=4, era_reward_per_block=ED - 1)
    advance_era(ctx)
    assert TotalIssuance.get(ctx.state) == issuance
    assert not get_account(ctx.state, bytes(32)).providers


# --- slashing ------------------------------------------------------------------------------------


def test_slash_reduces_bond_reserved_and_issuance() -> None:
    ctx = make_ctx()
    issuance = TotalIssuance.get(ctx.state)
    amount = slash(ctx, ALICE, 100_000, b"equivocation")
    assert amount == ALICE_BOND // 10
    assert get_account(ctx.state, ALICE).reserved == ALICE_BOND - amount
    assert get_ledger(ctx.state, ALICE) == StakingLedger(ALICE, ALICE_BOND - amount, ALICE_BOND - amount, [])
    assert TotalIssuance.get(ctx.state) == issuance - amount
    assert get_offences(ctx.state, ALICE) == [{"era": 0, "block": 1, "fraction_ppm": 100_000, "amount": amount,
                                               "reason": b"equivocation"}]
    assert "Slashed" in event_names_of(ctx)
    assert staking.Validators.contains(ctx.state, ALICE)
    assert_issuance_exact(ctx.state)


def test_slash_takes_active_first_then_unlocking_and_chills_below_min() -> None:
    ctx = make_ctx()
    dispatch(ctx, BOB, "chill")
    dispatch(ctx, BOB, "unbond", value=MIN_BOND)
    staking.CurrentEra.put(ctx.state, 1)
    dispatch(ctx, BOB, "unbond", value=MIN_BOND)
    dispatch(ctx, BOB, "validate", prefs=PREFS, session_key=session_key("bob"))
    # Bob: active MIN_BOND, chunks [MIN_BOND @2, MIN_BOND @3]; a 5/6 slash takes 2.5 bonds.
    amount = slash(ctx, BOB, 833_334, b"bad proof")
    left = BOB_BOND - amount
    assert get_ledger(ctx.state, BOB) == StakingLedger(BOB, left, 0, [UnlockChunk(left, 3)])
    assert get_account(ctx.state, BOB).reserved == left
    assert not staking.Validators.contains(ctx.state, BOB)
    assert "Chilled" in event_names_of(ctx)


def test_slash_of_unbonded_account_is_zero_and_bad_fraction_fails() -> None:
    ctx = make_ctx()
    assert slash(ctx, CHARLIE, 500_000, b"x") == 0
    assert_noop(ctx, lambda: slash(ctx, ALICE, 1_000_001, b"x"), ERRORS("InvalidSlashFraction"))
    assert_noop(ctx, lambda: slash(ctx, ALICE, 1, b"x" * 257), ERRORS("OffenceReasonTooLong"))


def test_full_slash_keeps_the_account_until_withdraw() -> None:
    ctx = make_ctx()
    dispatch(ctx, CHARLIE, "bond", value=ENDOWMENT, payee=("Staked", None))
    assert slash(ctx, CHARLIE, 1_000_000, b"fraud") == ENDOWMENT
    assert get_account(ctx.state, CHARLIE).providers == 1  # the ledger's consumer keeps it
    dispatch(ctx, CHARLIE, "withdraw_unbonded", num_slashing_spans=0)
    assert get_ledger(ctx.state, CHARLIE) is None
    assert_issuance_exact(ctx.state)


# --- property: total issuance stays exact --------------------------------------------------------

ACCOUNTS = [ALICE, BOB, CHARLIE, DAVE]
amounts = st.one_of(st.integers(0, 3 * MIN_BOND), st.integers(0, 2 * ENDOWMENT),
                    st.sampled_from([ED - 1, ED, MIN_BOND]))
operations = st.one_of(
    st.tuples(st.sampled_from(["bond", "bond_extra", "unbond"]), st.sampled_from(ACCOUNTS), amounts),
    st.tuples(st.sampled_from(["withdraw_unbonded", "validate", "chill", "author", "era"]), st.sampled_from(ACCOUNTS),
              st.just(0)),
    st.tuples(st.just("slash"), st.sampled_from(ACCOUNTS), st.integers(0, 1_000_000)),
)


def apply_operation(ctx: BlockContext, op: str, who: bytes, value: int) -> None:
    call_args = {"bond": {"value": value, "payee": ("Staked", None) if value % 2 else ("Stash", None)},
                 "bond_extra": {"max_additional": value}, "unbond": {"value": value},
                 "withdraw_unbonded": {"num_slashing_spans": 0}, "chill": {},
                 "validate": {"prefs": PREFS, "session_key": blake2_256(who)}}
    if op in call_args:
        dispatch(ctx, who, op, **call_args[op])
    elif op == "slash":
        slash(ctx, who, value, b"property")
    elif op == "author":  # the next block, authored by `who`
        ctx.block_number += 1
        ctx.author = who
        on_initialize(ctx)
    else:
        advance_era(ctx, who)


def assert_staking_invariants(state: OverlayState) -> None:
    assert_issuance_exact(state)
    for who in ACCOUNTS:
        ledger = get_ledger(state, who)
        reserved = get_account(state, who).reserved
        if ledger is not None:
            assert ledger.total == ledger.active + ledger.unlocking_total() == reserved
            assert staking.Bonded.get(state, who) == who
        else:
            assert reserved == 0
            assert not staking.Validators.contains(state, who)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, max_size=25))
def test_total_issuance_stays_exact_under_staking_operations(ops: list[tuple[str, bytes, int]]) -> None:
    ctx = make_ctx()
    for op, who, value in ops:
        ctx.state.start_layer()
        try:
            apply_operation(ctx, op, who, value)
        except DispatchError:
            ctx.state.rollback_layer()
        else:
            ctx.state.commit_layer()
        assert_staking_invariants(ctx.state)
