"""Era randomness (runtime/pallets/staking/randomness.py) through real blocks: it is fixed one
era ahead from the previous era's sealed block hashes, what a block of era e contains changes
neither the leaders of era e nor of era e+1, and forks agree on every slot's leader."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consensus.authorities import get_authorities, get_randomness
from consensus.slots import get_slot_leader
from gensyn_node.keyring import DEV_NAMES, Keypair, dev_account
from runtime.block import Header
from runtime.executive import BlockBuilder, execute_block
from runtime.extrinsic import encode_signed, signing_payload
from runtime.genesis import build_genesis
from runtime.hashing import blake2_256
from runtime.metadata import build_metadata
from runtime.pallets.staking import get_current_era, get_era_randomness
from runtime.pallets.staking import storage as staking
from runtime.pallets.staking.randomness import (
    compute_era_randomness,
    compute_genesis_randomness,
    compute_genesis_seed,
    compute_mixed,
)
from runtime.params import ChainParameters
from runtime.storage import OverlayState
from runtime.trie import Trie
from runtime.types import Era
from runtime.version import LATEST_SPEC_VERSION, TRANSACTION_VERSION, get_runtime

ERA = 4
PARAMS = ChainParameters(era_length=ERA, max_validators=4, min_validator_bond=10**12)
KEYS = {name: dev_account(name) for name in DEV_NAMES}
NAMES = ("alice", "bob", "charlie")
SESSION_KEYS = {name: blake2_256(b"session:" + name.encode()) for name in NAMES}
RT = get_runtime(LATEST_SPEC_VERSION)
SLOTS = range(64)


def genesis_config() -> dict[str, Any]:
    validators = [{"account": KEYS[n].public, "session_key": SESSION_KEYS[n], "bond": (i + 1) * 10**13}
                  for i, n in enumerate(NAMES)]
    return {"balances": [(k.public, 10**18) for k in KEYS.values()], "sudo": KEYS["alice"].public,
            "params": PARAMS, "validators": validators}


GENESIS, _GENESIS_STORAGE, GENESIS_NODES = build_genesis(genesis_config())


class Fork:
    """A branch of real blocks (BlockBuilder, re-executed with execute_block) over a shared node
    store; `branch()` continues from the same head with its own nonces."""

    def __init__(self, store: dict[bytes, bytes], head: Header, nonces: dict[bytes, int] | None = None):
        self.store = store
        self.head = head
        self.headers = [head]
        self.nonces = dict(nonces or {})

    def branch(self) -> Fork:
        fork = Fork(self.store, self.head, self.nonces)
        fork.headers = list(self.headers)
        return fork

    def state(self, header: Header | None = None) -> OverlayState:
        trie = Trie((header or self.head).state_root, self.store.get)
        return OverlayState(trie.get, trie.iter_prefix)

    def transfer(self, sender: Keypair, value: int) -> bytes:
        nonce = self.nonces.get(sender.public, 0)
        self.nonces[sender.public] = nonce + 1
        call = RT.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", KEYS["dave"].public), "value": value})
        payload = signing_payload(call, Era.encode(None), nonce, 0, LATEST_SPEC_VERSION, TRANSACTION_VERSION,
                                  GENESIS.hash, GENESIS.hash)
        return encode_signed(call, sender.public, sender.scheme, sender.sign(payload), None, nonce, 0)

    def produce(self, xts: Sequence[bytes] = (), slot_offset: int = 0) -> Header:
        number = self.head.number + 1
        slot = number * 2 + slot_offset
        builder = BlockBuilder(Trie(self.head.state_root, self.store.get), self.head, slot=slot,
                               author=KEYS["alice"].public, timestamp_ms=slot * PARAMS.slot_duration_ms)
        for xt in xts:
            builder.push(xt)
        block, built = builder.build()
        # A real seal, so the block hash mixed into the randomness is a sealed header's.
        sealed = block.header.with_seal(KEYS["alice"].sign(block.header.hash))
        executed = execute_block(Trie(self.head.state_root, self.store.get), type(block)(sealed, block.extrinsics))
        assert executed.state_root == built.state_root
        self.store.update(executed.new_nodes)
        self.head = sealed
        self.headers.append(sealed)
        return sealed

    def produce_until(self, number: int) -> None:
        while self.head.number < number:
            self.produce()


def new_chain() -> Fork:
    return Fork(dict(GENESIS_NODES), GENESIS)


def leader_schedule(state: OverlayState) -> list[bytes | None]:
    """Who leads each of SLOTS after `state`'s block, as authoring and verification draw it."""
    authorities = get_authorities(state)
    randomness = get_randomness(state)
    schedule = [get_slot_leader(authorities, randomness, slot) for slot in SLOTS]
    return [leader.account if leader else None for leader in schedule]


def test_genesis_seeds_eras_zero_and_one() -> None:
    state = new_chain().state()
    seed = compute_genesis_seed(SESSION_KEYS.values())
    assert get_era_randomness(state) == compute_genesis_randomness(seed, 0)
    assert staking.NextEraRandomness.get(state) == compute_genesis_randomness(seed, 1)
    assert compute_genesis_randomness(seed, 0) != compute_genesis_randomness(seed, 1)


def test_era_randomness_is_fixed_one_era_ahead_from_the_seals_of_the_era_before() -> None:
    chain = new_chain()
    genesis_next = staking.NextEraRandomness.get(chain.state())
    chain.produce_until(3 * ERA)
    headers = chain.headers
    for era in (1, 2, 3):
        start = era * ERA
        # Verify that the era's randomness is the "next" one fixed at the previous era's start.
        fixed_before = genesis_next if era == 1 else staking.NextEraRandomness.get(chain.state(headers[start - ERA]))
        for number in range(start, min(start + ERA, len(headers))):
            state = chain.state(headers[number])
            assert get_current_era(state) == era
            assert get_era_randomness(state) == fixed_before
        # Verify that the next era's randomness mixes exactly the sealed hashes of blocks start-ERA .. start-1.
        accumulated = bytes(32)
        for header in headers[start - ERA:start]:
            accumulated = compute_mixed(accumulated, header.hash)
        assert staking.NextEraRandomness.get(chain.state(headers[start])) == compute_era_randomness(accumulated, era + 1)


def test_block_contents_of_an_era_do_not_change_its_leaders_or_the_next_eras() -> None:
    trunk = new_chain()
    trunk.produce_until(ERA + 1)  # the fork point: inside era 1
    quiet, busy = trunk, trunk.branch()
    busy.produce([busy.transfer(KEYS["bob"], 10**15), busy.transfer(KEYS["charlie"], 10**15)], slot_offset=1)
    quiet.produce()
    assert quiet.head.hash != busy.head.hash and quiet.head.state_root != busy.head.state_root
    for fork in (quiet, busy):
        fork.produce_until(3 * ERA)
    for number in range(ERA + 2, 3 * ERA):  # the rest of era 1 and all of era 2
        state_q, state_b = quiet.state(quiet.headers[number]), busy.state(busy.headers[number])
        assert get_current_era(state_q) == get_current_era(state_b)
        assert leader_schedule(state_q) == leader_schedule(state_b)
    # The blocks of era 1 fix era 3's randomness: there the forks differ (so the checks above
    # could fail), as they do by construction in any chain.
    era3_q, era3_b = quiet.state(quiet.headers[3 * ERA]), busy.state(busy.headers[3 * ERA])
    assert get_era_randomness(era3_q) != get_era_randomness(era3_b)


def test_leaders_within_an_era_do_not_depend_on_the_parent() -> None:
    chain = new_chain()
    chain.produce_until(2 * ERA - 1)
    schedules = [leader_schedule(chain.state(chain.headers[n])) for n in range(ERA, 2 * ERA)]
    assert all(schedule == schedules[0] for schedule in schedules)
    # Every validator leads some slot, and the schedule changes with the era.
    assert {a for a in schedules[0] if a is not None} == {KEYS[n].public for n in NAMES}
    chain.produce_until(2 * ERA)
    assert leader_schedule(chain.state()) != schedules[0]


def test_era_randomness_items_are_in_the_metadata() -> None:
    metadata = build_metadata(RT, PARAMS)
    for item in (staking.EraRandomness, staking.NextEraRandomness, staking.RandomnessUnderConstruction):
        assert item.name.encode() in metadata and item.docs.encode() in metadata
