"""Offences pallet: equivocation reports (votes and blocks) with real ed25519 session keys. A
valid report slashes the offender through staking's `slash`, pays the reporter its share,
burns the rest (total issuance exact) and removes the offender from the active set at once;
every bad report is a no-op with a named error; reports travel as unsigned extrinsics through
the pool's validation and real blocks."""

from __future__ import annotations

from typing import Any

import pytest

from gensyn_node.keyring import DEV_NAMES, dev_account
from runtime.block import Header, pre_runtime_digest
from runtime.context import BlockContext
from runtime.crypto import ED25519
from runtime.executive import InvalidBlock, validate_transaction
from runtime.extrinsic import encode_unsigned
from runtime.finality_vote import PRECOMMIT, PREVOTE, compute_vote_payload
from runtime.frame import NONE, signed
from runtime.genesis import build_genesis_state
from runtime.pallets.balances.storage import TotalIssuance
from runtime.pallets.offences import PALLET
from runtime.pallets.offences.calls import EQUIVOCATION_SLASH_PPM, REPORTER_REWARD_PPM
from runtime.pallets.offences.errors import ERRORS
from runtime.pallets.offences.evidence import get_genesis_hash
from runtime.pallets.staking import storage as staking
from runtime.pallets.staking.api import get_ledger
from runtime.pallets.system.account import get_account
from runtime.params import ChainParameters
from runtime.storage import MemoryState
from runtime.transaction_validity import InvalidTransaction
from runtime.version import LATEST_SPEC_VERSION, get_runtime
from tests.runtime.test_staking import assert_issuance_exact, assert_noop

PARAMS = ChainParameters(era_length=50, max_validators=4, min_validator_bond=10**12)
ACCOUNTS = {n: dev_account(n) for n in DEV_NAMES}
SESSION = {n: dev_account(n, ED25519) for n in DEV_NAMES}
BONDS = {"alice": 5 * 10**12, "bob": 4 * 10**12, "charlie": 3 * 10**12}
RT = get_runtime(LATEST_SPEC_VERSION)
GENESIS_STORAGE = build_genesis_state({
    "balances": [(k.public, 10**18) for k in ACCOUNTS.values()], "sudo": ACCOUNTS["alice"].public, "params": PARAMS,
    "validators": [{"account": ACCOUNTS[n].public, "session_key": SESSION[n].public, "bond": b}
                   for n, b in BONDS.items()]})
BOB, DAVE = ACCOUNTS["bob"].public, ACCOUNTS["dave"].public


def make_ctx(author: bytes | None = None) -> BlockContext:
    return BlockContext(MemoryState(GENESIS_STORAGE), PARAMS, 1, author=author)


def signed_target(ctx: BlockContext, voter: str, target: bytes, number: int = 7, set_id: int = 0, rnd: int = 3,
                  step: int = PREVOTE) -> dict[str, Any]:
    payload = compute_vote_payload(get_genesis_hash(ctx), set_id, rnd, step, target, number)
    return {"target_hash": target, "target_number": number, "signature": SESSION[voter].sign(payload)}


def vote_proof(ctx: BlockContext, voter: str = "bob", set_id: int = 0, rnd: int = 3, step: int = PREVOTE,
               targets: tuple[bytes, bytes] = (b"\xaa" * 32, b"\xbb" * 32)) -> dict[str, Any]:
    return {"voter": SESSION[voter].public, "set_id": set_id, "round": rnd, "step": step,
            "first": signed_target(ctx, voter, targets[0], set_id=set_id, rnd=rnd, step=step),
            "second": signed_target(ctx, voter, targets[1], set_id=set_id, rnd=rnd, step=step)}


def sealed_header(author: str, slot: int, tag: bytes) -> bytes:
    header = Header(tag * 32, 5, bytes(32), bytes(32), (pre_runtime_digest(slot, ACCOUNTS[author].public),))
    return header.with_seal(SESSION[author].sign(header.hash)).encode()


def report_votes(ctx: BlockContext, origin: Any, proof: dict[str, Any]) -> None:
    PALLET.calls_by_name["report_vote_equivocation"].handler(ctx, origin, equivocation=proof)


def report_blocks(ctx: BlockContext, origin: Any, first: bytes, second: bytes) -> None:
    PALLET.calls_by_name["report_block_equivocation"].handler(ctx, origin, first=first, second=second)


def test_vote_equivocation_slashes_rewards_reporter_burns_rest_and_removes_offender():
    ctx = make_ctx()
    issuance = TotalIssuance.get(ctx.state)
    dave_before = get_account(ctx.state, DAVE).free
    set_id = staking.ValidatorSetId.get(ctx.state)
    report_votes(ctx, signed(DAVE), vote_proof(ctx, step=PRECOMMIT))
    slashed = BONDS["bob"] * EQUIVOCATION_SLASH_PPM // 10**6
    reward = slashed * REPORTER_REWARD_PPM // 10**6
    assert get_ledger(ctx.state, BOB).total == BONDS["bob"] - slashed
    assert get_account(ctx.state, DAVE).free == dave_before + reward
    assert TotalIssuance.get(ctx.state) == issuance - slashed + reward
    assert_issuance_exact(ctx.state)
    assert BOB not in [v[0] for v in staking.ActiveValidators.get(ctx.state)]
    assert staking.ValidatorSetId.get(ctx.state) == set_id + 1
    assert not staking.Validators.contains(ctx.state, BOB)  # not re-elected at the next era


def test_unsigned_report_rewards_the_block_author():
    author = ACCOUNTS["charlie"].public
    ctx = make_ctx(author=author)
    before = get_account(ctx.state, author).free
    report_votes(ctx, NONE, vote_proof(ctx))
    assert get_account(ctx.state, author).free > before
    assert_issuance_exact(ctx.state)


def test_bad_vote_reports_change_nothing():
    ctx = make_ctx()
    same = vote_proof(ctx, targets=(b"\xaa" * 32, b"\xaa" * 32))
    forged = vote_proof(ctx)
    forged["second"] = dict(forged["second"], signature=bytes(64))
    not_voter = vote_proof(ctx, voter="eve")
    mixed = vote_proof(ctx)
    mixed["second"] = signed_target(ctx, "bob", b"\xbb" * 32, rnd=4)  # another round: no equivocation
    future = vote_proof(ctx, set_id=9)
    for proof, error in ((same, "InvalidEquivocationProof"), (forged, "InvalidSignature"),
                         (not_voter, "UnknownOffender"), (mixed, "InvalidSignature"), (future, "InvalidSetId")):
        assert_noop(ctx, lambda p=proof: report_votes(ctx, signed(DAVE), p), ERRORS(error))
    report_votes(ctx, signed(DAVE), vote_proof(ctx))
    other_pair = vote_proof(ctx, targets=(b"\xaa" * 32, b"\xcc" * 32))  # same offence, other votes
    assert_noop(ctx, lambda: report_votes(ctx, signed(DAVE), other_pair), ERRORS("DuplicateReport"))


def test_block_equivocation_slashes_and_bad_block_reports_change_nothing():
    ctx = make_ctx()
    first, second = sealed_header("bob", 11, b"\x01"), sealed_header("bob", 11, b"\x02")
    unsealed = Header(b"\x03" * 32, 5, bytes(32), bytes(32), (pre_runtime_digest(11, BOB),)).encode()
    wrong_seal = Header(b"\x04" * 32, 5, bytes(32), bytes(32), (pre_runtime_digest(11, BOB),))
    wrong_seal_raw = wrong_seal.with_seal(SESSION["alice"].sign(wrong_seal.hash)).encode()
    cases = [((first, first), "InvalidEquivocationProof"), ((first, sealed_header("bob", 12, b"\x02")),
             "InvalidEquivocationProof"), ((first, unsealed), "InvalidEquivocationProof"),
             ((first, wrong_seal_raw), "InvalidSignature"), ((first, b"\x00garbage"), "InvalidEquivocationProof"),
             ((sealed_header("eve", 11, b"\x01"), sealed_header("eve", 11, b"\x02")), "UnknownOffender")]
    for (a, b), error in cases:
        assert_noop(ctx, lambda a=a, b=b: report_blocks(ctx, signed(DAVE), a, b), ERRORS(error))
    report_blocks(ctx, signed(DAVE), first, second)
    assert get_ledger(ctx.state, BOB).total < BONDS["bob"]
    assert_noop(ctx, lambda: report_blocks(ctx, signed(DAVE), second, first), ERRORS("DuplicateReport"))
    assert_issuance_exact(ctx.state)


def test_the_last_validator_is_slashed_but_not_removed():
    ctx = make_ctx()
    for name in ("alice", "charlie"):
        report_votes(ctx, signed(DAVE), vote_proof(ctx, voter=name))
    active = staking.ActiveValidators.get(ctx.state)
    assert [v[0] for v in active] == [BOB]
    report_votes(ctx, signed(DAVE), vote_proof(ctx, voter="bob"))
    assert [v[0] for v in staking.ActiveValidators.get(ctx.state)] == [BOB]  # the chain keeps an author


def test_unsigned_report_passes_the_pool_and_lands_in_a_block():
    """Through the executive: the pool validates an unsigned report by dispatching it (nothing
    written), refuses a bad one with a reason; a block carries the good one, and a block that
    carries a bad one is invalid."""
    from runtime.block import Block, compute_extrinsics_root
    from runtime.executive import BlockBuilder, execute_block
    from runtime.genesis import build_genesis
    from runtime.storage import OverlayState
    from runtime.trie import Trie

    genesis, _storage, nodes = build_genesis({
        "balances": [(k.public, 10**18) for k in ACCOUNTS.values()], "sudo": ACCOUNTS["alice"].public,
        "params": PARAMS, "validators": [{"account": ACCOUNTS[n].public, "session_key": SESSION[n].public, "bond": b}
                                         for n, b in BONDS.items()]})
    trie = Trie(genesis.state_root, dict(nodes).get)
    state = OverlayState(trie.get, trie.iter_prefix)
    proof = vote_proof(BlockContext(state, PARAMS, 1, genesis.hash), voter="bob")
    good = encode_unsigned(RT.encode_call("Offences", "report_vote_equivocation", {"equivocation": proof}))
    bad_proof = dict(proof, second=dict(proof["second"], signature=bytes(64)))
    bad = encode_unsigned(RT.encode_call("Offences", "report_vote_equivocation", {"equivocation": bad_proof}))
    valid, _xt = validate_transaction(state, genesis, good)
    assert valid.provides and not state.changes
    with pytest.raises(InvalidTransaction, match="not signed by the voter"):
        validate_transaction(state, genesis, bad)
    author = ACCOUNTS["alice"].public
    builder = BlockBuilder(trie, genesis, slot=1, author=author, timestamp_ms=2000)
    builder.push(good)
    with pytest.raises(InvalidTransaction):
        builder.push(bad)  # the author leaves a bad report out
    block, executed = builder.build()
    after = Trie(executed.state_root, {**nodes, **executed.new_nodes}.get)
    assert execute_block(trie, block).state_root == executed.state_root
    assert get_ledger(OverlayState(after.get, after.iter_prefix), BOB).total < BONDS["bob"]
    forged_body = block.extrinsics + (bad,)
    forged = Block(type(block.header)(block.header.parent_hash, 1, block.header.state_root,
                                      compute_extrinsics_root(forged_body), block.header.digest), forged_body)
    with pytest.raises(InvalidBlock):
        execute_block(trie, forged)
