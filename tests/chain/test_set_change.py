"""A voter-set change elected at an era boundary is enacted for finality only once the old set
has finalized the block that elects it: the old set's last justification is for exactly that
block, the new set's justifications follow, and a justification of the old set past the
change is refused (in process: a real node, LevelDB, a controlled clock)."""

from __future__ import annotations

import pytest

from consensus.authorities import get_voter_set
from consensus.finality_messages import Justification, JustificationError, Vote, decode_justification
from gensyn_node.chain_spec import DEV_BOND, dev_spec
from gensyn_node.keyring import dev_account
from gensyn_node.service import Node, NodeConfig
from runtime.crypto import ED25519
from runtime.executive import get_state_runtime
from runtime.extrinsic import encode_signed, signing_payload
from runtime.finality_vote import PRECOMMIT
from runtime.pallets.system.account import get_account
from runtime.storage import OverlayState
from runtime.types import Era
from tests.chain.test_node_finality import Clock

ALICE, ALICE_SESSION = dev_account("alice"), dev_account("alice", ED25519)
ERA_LENGTH = 4


def author(node, clock, count):
    """Advance slot by slot until `count` blocks are authored (bob leads some slots once elected)."""
    authored = 0
    for _ in range(20 * count):
        clock.now += node.slot_ms / 1000
        if node.try_author(int(clock.now * 1000) // node.slot_ms) is not None:
            authored += 1
            if authored == count:
                return
    raise AssertionError(f"authored {authored} of {count} blocks")


def spec_with_bob_waiting():
    """alice and bob are candidates, but only one validator is elected until Root raises the count."""
    spec = dev_spec(validators=2)
    spec.genesis["params"]["era_length"] = str(ERA_LENGTH)
    spec.genesis["params"]["max_validators"] = "1"
    spec.genesis["validators"][1]["bond"] = str(DEV_BOND // 10)  # bob: ~9% of the stake
    return spec


def sudo_set_validator_count(node, count):
    """Alice (sudo) raises the validator count: the next era boundary elects bob too."""
    _best, state = node.best_state()
    runtime = get_state_runtime(OverlayState(state.get))  # the dev chain's runtime (spec 2)
    call = runtime.encode_call("Sudo", "sudo", {"call": ("Staking", ("set_validator_count", {"new": count}))})
    nonce = get_account(OverlayState(state.get, state.iter_prefix), ALICE.public).nonce
    genesis = node.store.genesis_hash
    payload = signing_payload(call, Era.encode(None), nonce, 0, runtime.spec_version, 1, genesis, genesis)
    return node.submit_extrinsic(encode_signed(call, ALICE.public, ALICE.scheme, ALICE.sign(payload), None, nonce, 0))


def test_new_voter_set_takes_over_only_after_the_old_set_finalized_the_change(tmp_path):
    clock = Clock()
    node = Node(NodeConfig(spec=spec_with_bob_waiting(), base_path=str(tmp_path), validator=True,
                           session_key=ALICE_SESSION, rpc_enabled=False), clock=clock)
    store = node.store
    assert len(get_voter_set(store.state_at(store.best_hash)).voters) == 1
    sudo_set_validator_count(node, 2)
    author(node, clock, 3 * ERA_LENGTH)
    change = next(n for n in range(1, store.best_header().number + 1)
                  if get_voter_set(store.state_at(store.hash_at(n))).set_id == 1)
    assert change % ERA_LENGTH == 0  # elected at an era boundary
    assert len(get_voter_set(store.state_at(store.hash_at(change))).voters) == 2
    justified = {}
    for number in range(1, store.finalized_header().number + 1):
        raw = store.get_justification(store.hash_at(number))
        if raw is not None:
            justified[number] = decode_justification(raw).set_id

    def set_after(number):
        return get_voter_set(store.state_at(store.hash_at(number))).set_id

    # Every justification is by the set of its block's parent: the set a block elects (every era
    # boundary here: rewards are staked, so stakes change) votes only from that block on, and
    # the change block itself is justified by the old set.
    assert justified and all(s == set_after(n - 1) for n, s in justified.items())
    assert justified[change] == 0 and max(justified) > change and set_after(max(justified)) >= 1
    assert node.gadget.voters.set_id == set_after(store.finalized_header().number)
    node.close()


def test_a_justification_of_the_old_set_past_the_change_is_refused(tmp_path):
    """Block by block: a node that has not finalized the change block yet is handed an old-set
    justification for a later block; it refuses it (the old set must finalize the change)."""
    clock = Clock()
    validator = Node(NodeConfig(spec=spec_with_bob_waiting(), base_path=str(tmp_path), validator=True,
                                session_key=ALICE_SESSION, rpc_enabled=False), clock=clock)
    sudo_set_validator_count(validator, 2)
    # Build the chain with the gadget held back (no tick task runs here; blocks do not reach it),
    # so nothing is final when the skipping justification arrives.
    validator.gadget.on_block = lambda now: None
    author(validator, clock, 2 * ERA_LENGTH)
    store = validator.store
    change = next(n for n in range(1, store.best_header().number + 1)
                  if get_voter_set(store.state_at(store.hash_at(n))).set_id == 1)
    past = store.require_header(store.hash_at(change + 1))
    unsigned = Vote(0, 1, PRECOMMIT, past.hash, past.number, ALICE_SESSION.public, b"")
    vote = Vote(0, 1, PRECOMMIT, past.hash, past.number, ALICE_SESSION.public,
                ALICE_SESSION.sign(unsigned.payload(store.genesis_hash)))
    skipping = Justification(0, 1, past.hash, past.number, (vote,), ())
    with pytest.raises(JustificationError, match="skips a voter-set change"):
        validator.import_justification(past.hash, skipping.encode())
    assert store.finalized_header().number < change
    validator.close()
