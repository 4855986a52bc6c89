"""Properties of the balances state machine over random sequences of transfers (hypothesis):
total issuance stays exactly the sum of all balances, no account lingers below the existential
deposit, and re-executing every block on a fresh store reproduces its state root; slashing for
equivocations keeps issuance exact too."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gensyn_node.keyring import DEV_NAMES, dev_account
from runtime.block import Block, Header, compute_extrinsics_root
from runtime.codec.scale import H256, Struct, Vec
from runtime.context import BlockContext
from runtime.executive import BlockBuilder, InvalidBlock, execute_block
from runtime.frame import NONE, DispatchError, signed
from runtime.pallets.balances import currency
from runtime.pallets.balances.storage import TotalIssuance
from runtime.pallets.system import storage as system
from runtime.pallets.system.account import AccountRecord, get_account
from runtime.params import ChainParameters
from runtime.storage import MemoryState, OverlayState
from runtime.transaction_validity import InvalidTransaction
from runtime.trie import Trie
from runtime.types import Phase
from runtime.version import LATEST_SPEC_VERSION, get_runtime
from tests.runtime.test_offences import make_ctx, report_votes, vote_proof

PARAMS = ChainParameters()
ED = PARAMS.existential_deposit
ENDOWMENT = 10**18
# The six endowed dev accounts and two that start empty.
KEYS = [dev_account(n) for n in DEV_NAMES] + [dev_account("newcomer"), dev_account("stranger")]
AUTHOR = dev_account("ferdie").public

AMOUNTS = st.one_of(
    st.sampled_from([0, 1, ED - 1, ED, ED + 1, ENDOWMENT, 2 * ENDOWMENT]),
    st.integers(min_value=0, max_value=2 * ENDOWMENT),
    st.tuples(st.just("percent"), st.integers(min_value=0, max_value=100)),  # of the sender's free balance
    st.tuples(st.just("leave"), st.integers(min_value=0, max_value=2 * ED)),  # free minus a little
)
OPS = st.tuples(
    st.integers(min_value=0, max_value=len(KEYS) - 1),
    st.integers(min_value=0, max_value=len(KEYS) - 1),
    st.sampled_from(["transfer_allow_death", "transfer_keep_alive", "transfer_all", "transfer_all_keep_alive",
                     "force_transfer"]),
    AMOUNTS,
)
BLOCKS = st.lists(st.lists(OPS, max_size=8), min_size=1, max_size=3)


def _amount(spec, free: int) -> int:
    if isinstance(spec, int):
        return spec
    kind, k = spec
    return free * k // 100 if kind == "percent" else max(free - 10**9 - k, 0)  # about a fee, then k more


def _call(rt, kind: str, sender: bytes, dest: bytes, value: int) -> bytes:
    if kind == "transfer_all":
        return rt.encode_call("Balances", "transfer_all", {"dest": ("Id", dest), "keep_alive": False})
    if kind == "transfer_all_keep_alive":
        return rt.encode_call("Balances", "transfer_all", {"dest": ("Id", dest), "keep_alive": True})
    if kind == "force_transfer":
        inner = ("Balances", ("force_transfer", {"source": ("Id", sender), "dest": ("Id", dest), "value": value}))
        return rt.encode_call("Sudo", "sudo", {"call": inner})
    return rt.encode_call("Balances", kind, {"dest": ("Id", dest), "value": value})


def _events(rt, trie: Trie) -> list:
    record = Struct(("frame_system", "EventRecord"), [("phase", Phase), ("event", rt.event_enum), ("topics", Vec(H256))])
    return Vec(record).decode(trie.get(system.Events.key()))


def check_invariants(trie: Trie) -> None:
    state = OverlayState(trie.get, trie.iter_prefix)
    records = [AccountRecord.from_bytes(v) for _k, v in state.iter_prefix(system.Account.prefix)]
    assert TotalIssuance.get(state) == sum(r.free + r.reserved for r in records)
    for record in records:
        assert record.providers >= 1 and record.free + record.reserved >= ED, "an account lingers below ED"
        assert 0 <= record.free < 1 << 128 and 0 <= record.reserved < 1 << 128


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BLOCKS)
def test_random_transfers_keep_issuance_exact_and_blocks_replayable(chain, sign, blocks):
    rt = chain.runtime
    store = dict(chain.nodes)
    trie, parent = Trie(chain.header.state_root, store.get), chain.header
    check_invariants(trie)
    reaped = 0
    for ops in blocks:
        builder = BlockBuilder(trie, parent, slot=parent.number + 1, author=AUTHOR,
                               timestamp_ms=(parent.number + 1) * PARAMS.slot_duration_ms)
        outcomes = [True]  # the timestamp inherent
        for s, d, kind, spec in ops:
            sender = KEYS[0] if kind == "force_transfer" else KEYS[s]  # alice holds the sudo key
            source = KEYS[s].public
            record = get_account(builder.state, sender.public)
            value = _amount(spec, get_account(builder.state, source).free)
            raw = sign(sender, _call(rt, kind, source, KEYS[d].public, value), record.nonce)
            try:
                outcome = builder.push(raw)
            except InvalidTransaction as exc:
                assert exc.kind == "Payment", str(exc)  # only an account that cannot pay is refused
                event("refused: cannot pay")
                continue
            outcomes.append(outcome.success)
            event("call succeeded" if outcome.success else f"call failed: {outcome.error[0]}")
        block, executed = builder.build()
        before = dict(store)
        replayed = execute_block(Trie(parent.state_root, dict(before).get), block)
        assert replayed.state_root == block.header.state_root == executed.state_root
        assert [o.success for o in replayed.outcomes] == outcomes
        store.update(executed.new_nodes)
        trie, parent = Trie(executed.state_root, store.get), block.header
        check_invariants(trie)
        records = _events(rt, trie)
        reaped += sum(1 for r in records if r["event"][1][0] == "KilledAccount")
        # Each extrinsic ends in exactly one ExtrinsicSuccess or ExtrinsicFailed, as it went.
        verdicts = [(r["phase"][1], r["event"][1][0] == "ExtrinsicSuccess") for r in records
                    if r["event"][1][0] in ("ExtrinsicSuccess", "ExtrinsicFailed")]
        assert verdicts == list(enumerate(outcomes))
    event("an account was reaped" if reaped else "no account reaped")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=5), st.integers(min_value=0, max_value=5),
                          st.integers(min_value=0, max_value=10**16)), min_size=1, max_size=10))
def test_block_root_independent_of_store_and_cache(chain, sign, transfer, transfers):
    """Building a block from the same extrinsics on two fresh stores gives the same header."""
    nonces = [0] * 6
    raws = []
    for s, d, value in transfers:  # sr25519 signatures are randomized: sign once, build twice
        raws.append(sign(KEYS[s], transfer(KEYS[d].public, value, "transfer_allow_death"), nonces[s]))
        nonces[s] += 1
    headers: list[Header] = []
    for _ in range(2):
        store = dict(chain.nodes)
        builder = BlockBuilder(Trie(chain.header.state_root, store.get), chain.header, slot=1, author=AUTHOR,
                               timestamp_ms=PARAMS.slot_duration_ms)
        for raw in raws:
            builder.push(raw)
        headers.append(builder.build()[0].header)
    assert headers[0] == headers[1]


CURRENCY_OPS = st.lists(st.tuples(
    st.sampled_from(["transfer", "transfer_keep_alive", "withdraw", "deposit_creating", "reserve", "unreserve",
                     "slash_reserved", "repatriate_reserved"]),
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=3),
    st.one_of(st.sampled_from([0, 1, ED - 1, ED, ED + 1, ENDOWMENT]), st.integers(min_value=0, max_value=3 * ED)),
), max_size=30)
WHO = [bytes([i]) * 32 for i in range(4)]


def _apply_currency_op(ctx, op: str, a: bytes, b: bytes, amount: int) -> None:
    if op in ("transfer", "transfer_keep_alive"):
        currency.transfer(ctx, a, b, amount, keep_alive=op == "transfer_keep_alive")
    elif op == "withdraw":
        currency.withdraw(ctx, a, amount)
    elif op == "deposit_creating":
        currency.deposit_creating(ctx, a, amount)
    elif op == "reserve":
        currency.reserve(ctx, a, amount)
    elif op == "unreserve":
        assert currency.unreserve(ctx, a, amount) <= amount
    elif op == "slash_reserved":
        assert currency.slash_reserved(ctx, a, amount) <= amount
    else:
        assert currency.repatriate_reserved(ctx, a, b, amount) <= amount


@settings(max_examples=150, deadline=None)
@given(CURRENCY_OPS)
def test_currency_operations_keep_issuance_exact(ops):
    """The entry points other pallets use (reserve, slash, repatriate...) keep the books exact;
    a failed one, rolled back as the executive does, changes nothing."""
    state = MemoryState()
    ctx = BlockContext(state, PARAMS, 1)
    currency.deposit_creating(ctx, WHO[0], 10 * ED)
    currency.deposit_creating(ctx, WHO[1], ENDOWMENT)
    for op, i, j, amount in ops:
        before = dict(state.changes)
        state.start_layer()
        try:
            _apply_currency_op(ctx, op, WHO[i], WHO[j], amount)
        except DispatchError:
            state.rollback_layer()
            assert state.changes == before
        else:
            state.commit_layer()
        records = [AccountRecord.from_bytes(v) for _k, v in state.iter_prefix(system.Account.prefix)]
        assert TotalIssuance.get(state) == sum(r.free + r.reserved for r in records)
        assert all(r.free + r.reserved >= ED for r in records), "an account lingers below ED"


@pytest.mark.parametrize("op", ["transfer", "withdraw", "deposit_creating", "reserve"])
def test_currency_refuses_negative_amounts(op):
    state = MemoryState()
    ctx = BlockContext(state, PARAMS, 1)
    currency.deposit_creating(ctx, WHO[0], ENDOWMENT)
    currency.deposit_creating(ctx, WHO[1], ENDOWMENT)
    before = dict(state.changes)
    state.start_layer()
    try:
        _apply_currency_op(ctx, op, WHO[0], WHO[1], -ED)
    except DispatchError:
        state.rollback_layer()
    else:
        state.commit_layer()
    assert state.changes == before, "a negative amount changed balances"


@pytest.fixture(scope="module")
def good_block(chain, sign, transfer):
    """A block on genesis: the inherent, a transfer, a failing transfer and a mortal remark."""
    keys = chain.keys
    xts = [sign(keys["alice"], transfer(keys["bob"].public, 10**15), 0),
           sign(keys["bob"], transfer(keys["alice"].public, 10 * ENDOWMENT), 0),
           sign(keys["charlie"], chain.runtime.encode_call("System", "remark", {"remark": b"hello"}), 0, era=(64, 0))]
    store = dict(chain.nodes)
    builder = BlockBuilder(Trie(chain.header.state_root, store.get), chain.header, slot=1, author=AUTHOR,
                           timestamp_ms=PARAMS.slot_duration_ms)
    for raw in xts:
        builder.push(raw)
    return builder.build()[0]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_block_rejected_whole(chain, good_block, data):
    """Any change to a block's body (its extrinsics root recomputed) is refused as InvalidBlock,
    never by another exception, and leaves the store as it was."""
    xts = list(good_block.extrinsics)
    which = data.draw(st.integers(min_value=0, max_value=len(xts) - 1), label="extrinsic")
    raw = bytearray(xts[which])
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="flips")):
        pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[pos] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
    if bytes(raw) == xts[which]:
        return
    xts[which] = bytes(raw)
    header = replace(good_block.header, extrinsics_root=compute_extrinsics_root(xts))
    store = dict(chain.nodes)
    with pytest.raises(InvalidBlock):
        execute_block(Trie(chain.header.state_root, store.get), Block(header, tuple(xts)))
    assert store == chain.nodes


RUNTIME = get_runtime(LATEST_SPEC_VERSION)
OFFENCE_OPS = st.lists(st.tuples(
    st.sampled_from(["alice", "bob", "charlie", "eve"]),            # the voter (eve is no validator)
    st.sampled_from(["dave", "alice", "newcomer", None]),           # the reporter (None: unsigned)
    st.integers(min_value=0, max_value=3),                          # the round
    st.booleans(),                                                  # a real equivocation, or two equal votes
), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OFFENCE_OPS)
def test_equivocation_reports_keep_issuance_exact(ops):
    """Slashing for equivocations burns exactly what it takes less what it pays the reporter;
    a refused report (bad, duplicate) changes nothing."""
    ctx = make_ctx(author=dev_account("ferdie").public)
    state = ctx.state
    for voter, reporter, rnd, real in ops:
        targets = (b"\xaa" * 32, b"\xbb" * 32) if real else (b"\xaa" * 32, b"\xaa" * 32)
        proof = vote_proof(ctx, voter=voter, rnd=rnd, targets=targets)
        origin = NONE if reporter is None else signed(dev_account(reporter).public)
        issuance, events = TotalIssuance.get(state), len(ctx.events)
        before = dict(state.changes)
        ctx.start_layer()
        try:
            report_votes(ctx, origin, proof)
        except DispatchError:
            ctx.rollback_layer()
            assert state.changes == before and TotalIssuance.get(state) == issuance
            continue
        ctx.commit_layer()
        pallet, (name, payload) = RUNTIME.event_record.decode(ctx.events[-1])["event"]
        assert len(ctx.events) > events and (pallet, name) == ("Offences", "Equivocation")
        assert TotalIssuance.get(state) == issuance - payload["slashed"] + payload["reward"]
        records = [AccountRecord.from_bytes(v) for _k, v in state.iter_prefix(system.Account.prefix)]
        assert TotalIssuance.get(state) == sum(r.free + r.reserved for r in records)


# --- ML-compute: escrow, stakes, bonds and slashing keep issuance exact ------------------------

ML_WHO = st.integers(min_value=0, max_value=4)
ML_OPS = st.one_of(
    st.tuples(st.just("register"), ML_WHO, st.sampled_from(["Solver", "Verifier"]), st.integers(0, 300)),
    st.tuples(st.just("unregister"), ML_WHO, st.sampled_from(["Solver", "Verifier"])),
    st.tuples(st.just("submit"), ML_WHO, st.integers(0, 60), st.integers(1, 3), st.integers(0, 2)),
    st.tuples(st.just("cancel"), ML_WHO, st.integers(0, 3)),
    st.tuples(st.just("commit"), st.integers(0, 3), st.binary(min_size=32, max_size=32)),
    st.tuples(st.just("challenge"), ML_WHO, st.integers(0, 3), st.integers(0, 4), st.integers(0, 5)),
    st.tuples(st.just("reveal"), st.integers(0, 3), st.binary(min_size=32, max_size=32)),
    st.tuples(st.just("wait"), st.integers(1, 6)),
)


def _ml_call(sim, names, op):  # type: ignore[no-untyped-def]
    from runtime.pallets.ml_compute.registry import MNIST_ROOT
    from tests.ml_compute.sim import UNIT

    kind = op[0]
    if kind == "register":
        return (names[op[1]], f"register_{op[2].lower()}", {"stake": op[3] * UNIT})
    if kind == "unregister":
        return (names[op[1]], "unregister", {"role": op[2]})
    if kind == "submit":
        return (names[op[1]], "submit_job", {
            "model": 2, "dataset": MNIST_ROOT,
            "hyper": {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 8},
            "steps": 6, "checkpoint_every": 2, "bounty": op[2] * UNIT,
            "verification": {"verifiers": op[3], "segments": 1, "fee": op[4] * UNIT // 4}, "deadline": 3})
    if kind == "cancel":
        return (names[op[1]], "cancel_job", {"job": op[2]})
    job = sim.job(op[1]) if kind in ("commit", "reveal") else None
    if kind == "commit":
        solver = job["solver"] if job and job["solver"] else names[0]
        return (solver, "commit", {"job": op[1], "checkpoint_root": op[2], "final_state_hash": op[2],
                                   "n_checkpoints": 4, "metrics": {"loss_q16": 0, "train_accuracy_ppm": 0,
                                                                   "test_accuracy_ppm": 0}})
    if kind == "challenge":
        return (names[op[1]], "challenge", {"job": op[2], "segment": op[3], "claimed_end_hash": bytes(32),
                                            "bond": op[4] * UNIT})
    solver = job["solver"] if job and job["solver"] else names[0]
    return (solver, "reveal_segment", {"job": op[1], "segment": 1, "start_hash": op[2], "start_proof": [],
                                       "end_hash": op[2], "end_proof": []})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ML_OPS, min_size=1, max_size=25), st.integers(0, 2**32))
def test_ml_compute_keeps_issuance_and_escrow_exact(ops, seed):
    """Random registrations, jobs, cancels, commits with made-up roots, challenges, reveals and
    waits (so deadlines, reassignments, timeouts, refunds and slashes happen): after every block
    total issuance is the sum of all balances and every reserved balance is exactly its stakes,
    escrowed bounties and open bonds (Sim.check_invariants); issuance only ever falls, by burns."""
    from tests.ml_compute.sim import ACCOUNTS, Sim

    sim = Sim(seed=seed)
    names = [ACCOUNTS[n] for n in ("alice", "bob", "charlie", "dave", "eve")]
    issuance = sim.issuance()
    for op in ops:
        if op[0] == "wait":
            sim.wait(op[1])
        else:
            sim.block(_ml_call(sim, names, op))
        assert sim.issuance() <= issuance
        issuance = sim.issuance()
