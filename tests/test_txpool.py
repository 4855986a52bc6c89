"""The tx pool against a tiny ledger whose `validate` follows Substrate's CheckNonce and
ChargeTransactionPayment (not a mock of the pool): what `ready()` yields must apply in order."""

from __future__ import annotations

import copy

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gensyn_node.txpool import (
    AlreadyImported,
    CycleDetected,
    Invalid,
    PoolError,
    PoolFull,
    PoolTx,
    TemporarilyBanned,
    TooLowPriority,
    TxPool,
)
from runtime.hashing import blake2_256
from runtime.transaction_validity import InvalidTransaction, UnknownTransaction, ValidTransaction

ACCOUNTS = ("alice", "bob", "charlie", "dave")
SENDERS = st.sampled_from(ACCOUNTS[:3])
MACHINE_SETTINGS = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- A tiny ledger: accounts -> nonce and balance ---
def make_tx(
    who: str, nonce: int, tip: int = 0, *, longevity: int = 64, bad: bool = False, pad: int = 0
) -> bytes:
    return f"{who}|{nonce}|{tip}|{longevity}|{'bad' if bad else 'ok'}|".encode() + b"x" * pad


def parse_tx(data: bytes) -> tuple[str, int, int, int, bool]:
    who, nonce, tip, longevity, flag, _ = data.split(b"|", 5)
    return who.decode(), int(nonce), int(tip), int(longevity), flag == b"bad"


class Ledger:
    def __init__(self) -> None:
        self.nonces = dict.fromkeys(ACCOUNTS, 0)
        self.balances = dict.fromkeys(ACCOUNTS, 1_000)
        self.number = 0

    def validate(self, data: bytes, at: object = None) -> ValidTransaction:
        who, nonce, tip, longevity, bad = parse_tx(data)
        if who not in self.nonces:
            raise UnknownTransaction("the sender's account does not exist")
        if bad:
            raise InvalidTransaction("BadProof", "bad signature")
        if nonce < self.nonces[who]:
            raise InvalidTransaction("Stale", f"nonce {nonce} < {self.nonces[who]}")
        if self.balances[who] < tip:
            raise InvalidTransaction("Payment", "cannot pay the tip")
        tag = who.encode() + b"@"  # ++ nonce: Substrate's (account, nonce) tags
        requires = (tag + str(nonce - 1).encode(),) if nonce > self.nonces[who] else ()
        return ValidTransaction(tip, requires, (tag + str(nonce).encode(),), longevity)

    def apply(self, data: bytes) -> None:
        who, nonce, tip, _, bad = parse_tx(data)  # as a block would; raises if not includable
        if bad or nonce != self.nonces[who] or self.balances[who] < tip:
            raise AssertionError(f"{who} nonce {nonce} is not applicable at {self.nonces[who]}")
        self.nonces[who] += 1
        self.balances[who] -= tip

    def snapshot(self) -> dict:
        return copy.deepcopy(self.__dict__)

    def restore(self, snap: dict) -> None:
        self.__dict__.update(copy.deepcopy(snap))


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make_pool(ledger: Ledger, clock: Clock | None = None, **limits: int) -> TxPool:
    return TxPool(ledger.validate, blake2_256, clock=clock or Clock(), **limits)


def import_block(pool: TxPool, ledger: Ledger, datas: list[bytes]):
    for data in datas:
        ledger.apply(data)
    ledger.number += 1
    return pool.on_block_imported([blake2_256(d) for d in datas], at=ledger.number, at_number=ledger.number)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def pool(ledger: Ledger) -> TxPool:
    return make_pool(ledger)


def record(pool: TxPool, detail: bool = False) -> list[tuple]:
    events: list[tuple] = []
    pool.on_event(lambda h, s, d: events.append((h, s, d) if detail else (h, s)))
    return events


def ready_data(pool: TxPool) -> list[bytes]:
    return [tx.data for tx in pool.ready()]


# --- Queues and ordering ---
def test_txpool_future_is_promoted_when_the_gap_is_filled(ledger, pool):
    assert pool.submit(make_tx("alice", 2), None, 0)[1] == "future"
    assert pool.submit(make_tx("alice", 1), None, 0)[1] == "future"
    assert pool.submit(make_tx("alice", 0), None, 0)[1] == "ready"
    assert pool.status()["ready"] == 3 and pool.status()["future"] == 0
    assert ready_data(pool) == [make_tx("alice", n) for n in range(3)]


def test_txpool_ready_orders_by_priority_then_age(ledger, pool):
    pool.submit_many(
        [make_tx(w, 0, t) for w, t in (("alice", 5), ("bob", 9), ("charlie", 5), ("dave", 1))], None, 0
    )
    assert [parse_tx(d)[0] for d in ready_data(pool)] == ["bob", "alice", "charlie", "dave"]


def test_txpool_ready_keeps_nonce_order_even_when_a_later_nonce_tips_more(ledger, pool):
    pool.submit_many([make_tx("alice", 0, 1), make_tx("alice", 1, 100), make_tx("bob", 0, 50)], None, 0)
    assert [parse_tx(d)[:2] for d in ready_data(pool)] == [("bob", 0), ("alice", 0), ("alice", 1)]


def test_txpool_ready_skip_hides_dependants_for_this_iteration_only(ledger, pool):
    pool.submit_many([make_tx("alice", n, 10) for n in range(3)], None, 0)
    pool.submit(make_tx("bob", 0, 1), None, 0)
    it = pool.ready()
    first = next(it)
    it.skip(first.hash)
    assert [tx.data for tx in it] == [make_tx("bob", 0, 1)]
    assert len(ready_data(pool)) == 4


def test_txpool_report_invalid_while_iterating_skips_dependants_and_bans(ledger, pool):
    pool.submit_many([make_tx("alice", n, 10) for n in range(3)], None, 0)
    pool.submit(make_tx("bob", 0, 1), None, 0)
    events = record(pool)
    it = pool.ready()
    first = next(it)
    pool.report_invalid(first.hash, InvalidTransaction("Payment", "cannot pay"))
    assert [tx.data for tx in it] == [make_tx("bob", 0, 1)]
    assert pool.status()["ready"] == 1 and pool.status()["future"] == 2
    assert (first.hash, "invalid") in events
    assert [s for _, s in events].count("future") == 2
    with pytest.raises(TemporarilyBanned):
        pool.submit(first.data, None, 0)


def test_txpool_pending_lists_ready_then_future_and_submit_many_returns_errors_in_place(ledger, pool):
    results = pool.submit_many([make_tx("alice", 5), make_tx("bob", 0), make_tx("bob", 0)], None, 0)
    assert results[0][1] == "future" and results[1][1] == "ready" and isinstance(results[2], AlreadyImported)
    assert [tx.data for tx in pool.pending()] == [make_tx("bob", 0), make_tx("alice", 5)]
    tx = pool.get(blake2_256(make_tx("alice", 5)))
    assert isinstance(tx, PoolTx) and tx.valid_till == 64
    assert pool.get(b"\x00" * 32) is None


# --- Admission: duplicates, replacement, invalid, bans ---
@pytest.mark.parametrize("nonce", [0, 3])
def test_txpool_duplicate_is_already_imported(nonce, ledger, pool):
    pool.submit(make_tx("alice", nonce), None, 0)
    with pytest.raises(AlreadyImported):
        pool.submit(make_tx("alice", nonce), None, 0)
    assert len(pool) == 1


def test_txpool_higher_priority_replaces_and_keeps_dependants_ready(ledger, pool):
    old_hash, _ = pool.submit(make_tx("alice", 0, 1), None, 0)
    pool.submit(make_tx("alice", 1, 1), None, 0)
    events = record(pool, detail=True)
    new_hash, status = pool.submit(make_tx("alice", 0, 2), None, 0)
    assert status == "ready"
    assert (old_hash, "usurped", new_hash) in events
    assert ready_data(pool) == [make_tx("alice", 0, 2), make_tx("alice", 1, 1)]
    assert pool.get(old_hash) is None


@pytest.mark.parametrize("tip", [0, 5])
def test_txpool_replacement_with_lower_or_equal_priority_is_refused_and_changes_nothing(tip, ledger, pool):
    pool.submit(make_tx("alice", 0, 5), None, 0)
    before = (pool.status(), [tx.hash for tx in pool.pending()])
    with pytest.raises(TooLowPriority) as err:
        pool.submit(make_tx("alice", 0, tip, pad=1), None, 0)
    assert (err.value.old, err.value.new) == (5, tip)
    assert "Priority is too low" in err.value.reason
    assert (pool.status(), [tx.hash for tx in pool.pending()]) == before


def test_txpool_future_race_for_a_tag_is_won_by_the_higher_priority(ledger, pool):
    low, _ = pool.submit(make_tx("alice", 1, 1), None, 0)
    high, _ = pool.submit(make_tx("alice", 1, 7), None, 0)
    events = record(pool)
    pool.submit(make_tx("alice", 0), None, 0)
    assert ready_data(pool) == [make_tx("alice", 0), make_tx("alice", 1, 7)]
    assert (low, "dropped") in events and pool.get(low) is None and pool.get(high) is not None


def test_txpool_invalid_keeps_kind_and_reason_and_bans_until_expiry(ledger):
    clock = Clock()
    pool = make_pool(ledger, clock, ban_seconds=60)
    bad = make_tx("alice", 0, bad=True)
    with pytest.raises(Invalid) as err:
        pool.submit(bad, None, 0)
    assert (err.value.kind, err.value.reason) == ("BadProof", "bad signature")
    assert isinstance(err.value.error, InvalidTransaction)
    with pytest.raises(TemporarilyBanned):
        pool.submit(bad, None, 0)
    clock.now += 59
    assert pool.is_banned(blake2_256(bad))
    clock.now += 1
    with pytest.raises(Invalid):  # the ban is over: validated again (and banned again)
        pool.submit(bad, None, 0)


def test_txpool_unknown_transaction_is_refused_but_not_banned(ledger, pool):
    data = make_tx("eve", 0)
    with pytest.raises(Invalid) as err:
        pool.submit(data, None, 0)
    assert err.value.kind == "CannotLookup"
    ledger.nonces["eve"], ledger.balances["eve"] = 0, 10
    assert pool.submit(data, None, 0)[1] == "ready"


def test_txpool_remove_invalid_bans_and_demotes_dependants(ledger):
    clock = Clock()
    pool = make_pool(ledger, clock, ban_seconds=10)
    hashes = [pool.submit(make_tx("alice", n), None, 0)[0] for n in range(3)]
    removed = pool.remove_invalid([hashes[0]])
    assert [tx.hash for tx in removed] == [hashes[0]]
    assert pool.status()["ready"] == 0 and pool.status()["future"] == 2
    clock.now += 10
    assert pool.submit(make_tx("alice", 0), None, 0)[1] == "ready"
    assert pool.status()["ready"] == 3


# --- Limits ---
def test_txpool_count_limit_evicts_future_first_then_lowest_priority(ledger):
    pool = make_pool(ledger, max_count=3)
    future, _ = pool.submit(make_tx("alice", 9, 100), None, 0)
    low, _ = pool.submit(make_tx("bob", 0, 1), None, 0)
    mid, _ = pool.submit(make_tx("charlie", 0, 5), None, 0)
    events = record(pool)
    pool.submit(make_tx("dave", 0, 3), None, 0)  # a ready newcomer evicts the future one first
    assert (future, "dropped") in events and pool.get(future) is None
    pool.submit(make_tx("alice", 0, 4), None, 0)  # then the lowest-priority ready one
    assert pool.get(low) is None and pool.get(mid) is not None
    assert len(pool) == 3


def test_txpool_full_pool_refuses_a_newcomer_worse_than_everything_and_changes_nothing(ledger):
    pool = make_pool(ledger, max_count=2)
    pool.submit(make_tx("alice", 0, 5), None, 0)
    pool.submit(make_tx("bob", 0, 5), None, 0)
    before = [tx.hash for tx in pool.pending()]
    with pytest.raises(PoolFull):
        pool.submit(make_tx("charlie", 0, 5), None, 0)
    with pytest.raises(PoolFull):  # a future newcomer never evicts a ready transaction
        pool.submit(make_tx("charlie", 1, 50), None, 0)
    assert [tx.hash for tx in pool.pending()] == before


def test_txpool_eviction_spares_the_newcomers_own_dependencies(ledger):
    pool = make_pool(ledger, max_count=2)
    pool.submit(make_tx("alice", 0, 1), None, 0)
    pool.submit(make_tx("bob", 0, 2), None, 0)
    pool.submit(make_tx("alice", 1, 9), None, 0)  # evicts bob, not alice's nonce 0 it needs
    assert ready_data(pool) == [make_tx("alice", 0, 1), make_tx("alice", 1, 9)]


def test_txpool_byte_limit_evicts_as_many_as_needed(ledger):
    pool = make_pool(ledger, max_bytes=120)
    small = [pool.submit(make_tx(who, 0, 1, pad=20), None, 0)[0] for who in ("alice", "bob", "charlie")]
    assert pool.status()["bytes"] == 108
    _, status = pool.submit(make_tx("dave", 0, 2, pad=60), None, 0)
    assert status == "ready" and pool.status()["bytes"] <= 120
    assert sum(pool.get(h) is None for h in small) == 2
    with pytest.raises(PoolFull):
        pool.submit(make_tx("dave", 1, 99, pad=200), None, 0)


# --- Blocks: pruning, revalidation, longevity, reorgs ---
def test_txpool_block_prunes_included_and_drops_stale_after_revalidation(ledger, pool):
    a0, _ = pool.submit(make_tx("alice", 0, 1), None, 0)
    a1, _ = pool.submit(make_tx("alice", 1, 1), None, 0)
    b0, _ = pool.submit(make_tx("bob", 0, 3), None, 0)
    # Another author included a different bob nonce-0 transaction: ours is stale now.
    result = import_block(pool, ledger, [make_tx("alice", 0, 1), make_tx("bob", 0, 7)])
    assert result.in_block == (a0,)
    assert [h for h, _ in result.dropped] == [b0] and "Stale" in result.dropped[0][1]
    assert ready_data(pool) == [make_tx("alice", 1, 1)]
    assert pool.get(a1).valid.requires == ()
    with pytest.raises(TemporarilyBanned):  # included ones are banned: gossip cannot re-add them
        pool.submit(make_tx("alice", 0, 1), None, 1)


def test_txpool_block_promotes_future_satisfied_by_the_chain(ledger, pool):
    a1, _ = pool.submit(make_tx("alice", 1, 1), None, 0)
    events = record(pool)
    result = import_block(pool, ledger, [make_tx("alice", 0, 4)])
    assert result.promoted == (a1,) and result.in_block == ()
    assert events == [(a1, "ready")]
    assert ready_data(pool) == [make_tx("alice", 1, 1)]


def test_txpool_longevity_expires_transactions(ledger, pool):
    short, _ = pool.submit(make_tx("alice", 0, longevity=2), None, 10)
    assert pool.get(short).valid_till == 12
    ledger.number = 11
    import_block(pool, ledger, [])
    assert pool.get(short) is not None
    result = import_block(pool, ledger, [])
    assert [h for h, _ in result.dropped] == [short] and "expired" in result.dropped[0][1]


def test_txpool_reorg_requeues_retracted_transactions(ledger, pool):
    block = [make_tx("alice", 0, 1), make_tx("alice", 1, 1)]
    pool.submit_many(block, None, 0)
    pool.submit(make_tx("alice", 2, 1), None, 0)
    snap = ledger.snapshot()
    import_block(pool, ledger, block)
    assert ready_data(pool) == [make_tx("alice", 2, 1)]
    ledger.restore(snap)  # the block is retracted: back to the parent's state
    accepted = pool.on_reorg(block, at=ledger.number, at_number=ledger.number)
    assert [status for _, status in accepted] == ["ready", "ready"]
    assert ready_data(pool) == [make_tx("alice", n, 1) for n in range(3)]
    ledger.apply(make_tx("bob", 0, 2))  # a new branch included another bob nonce 0: ours is ignored
    assert pool.on_reorg([make_tx("bob", 0, 1)], at=1, at_number=1) == [] and len(pool) == 3


def test_txpool_broken_event_callback_does_not_break_the_pool(caplog, ledger, pool):
    seen = []
    pool.on_event(lambda h, s, d: 1 / 0)
    unsubscribe = pool.on_event(lambda h, s, d: seen.append(s))
    pool.submit(make_tx("alice", 0), None, 0)
    unsubscribe()
    pool.submit(make_tx("bob", 0), None, 0)
    assert seen == ["ready"] and pool.status()["ready"] == 2
    assert "callback failed" in caplog.text


# --- Properties ---
def check_ready_order(pool: TxPool, ledger: Ledger) -> list[PoolTx]:
    """Apply what ready() yields to a copy of the ledger: every one must apply, none twice."""
    replay = Ledger()
    replay.restore(ledger.snapshot())
    yielded = list(pool.ready())
    for tx in yielded:
        replay.apply(tx.data)  # nonce order: an early one, or a second copy, would not apply
    assert len({tx.hash for tx in yielded}) == len(yielded) == pool.status()["ready"]
    return yielded


submissions = st.lists(st.tuples(SENDERS, st.integers(0, 5), st.integers(0, 20)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(submissions)
def test_txpool_ready_never_yields_before_its_dependency_nor_twice(subs):
    ledger = Ledger()
    pool = make_pool(ledger)
    for who, nonce, tip in subs:
        try:
            pool.submit(make_tx(who, nonce, tip), None, 0)
        except PoolError:
            pass
    yielded = check_ready_order(pool, ledger)
    ready_nonces = {parse_tx(tx.data)[:2] for tx in yielded}
    for who, nonce, *_ in (parse_tx(tx.data) for tx in pool.pending()[len(yielded) :]):
        assert nonce > 0 and (who, nonce - 1) not in ready_nonces  # a future one waits for a gap


class PoolMachine(RuleBasedStateMachine):
    """Random submissions, blocks, invalid reports, reorgs and time, with small limits."""

    def __init__(self):
        super().__init__()
        self.ledger = Ledger()
        self.clock = Clock()
        self.pool = make_pool(self.ledger, self.clock, max_count=10, max_bytes=400, ban_seconds=5)
        self.tracked: dict[bytes, str] = {}  # status as the events tell it
        self.pool.on_event(self.on_event)
        self.blocks: list[tuple[tuple, list[bytes]]] = []

    def on_event(self, tx_hash, status, detail):
        if status in ("ready", "future"):
            self.tracked[tx_hash] = status
        else:
            assert self.tracked.pop(tx_hash, None) is not None, f"{status} for an unknown tx"

    @rule(who=SENDERS, nonce=st.integers(0, 6), tip=st.integers(0, 9), pad=st.integers(0, 40))
    def submit(self, who, nonce, tip, pad):
        try:
            data = make_tx(who, max(0, self.ledger.nonces[who] + nonce - 1), tip, pad=pad)
            self.pool.submit(data, None, self.ledger.number)
        except PoolError:
            pass

    @rule(take=st.integers(0, 5), foreign=st.booleans())
    def author_block(self, take, foreign):
        body = [tx.data for tx in list(self.pool.ready())[:take]]
        if foreign:  # another author's block with a transaction the pool never saw
            taken = sum(parse_tx(data)[0] == "dave" for data in body)
            body.append(make_tx("dave", self.ledger.nonces["dave"] + taken, 0))
        self.blocks.append((self.ledger.snapshot(), body))
        result = import_block(self.pool, self.ledger, body)
        for tx_hash in result.in_block:
            self.tracked.pop(tx_hash)

    @precondition(lambda self: self.blocks)
    @rule()
    def reorg_last_block(self):
        snap, body = self.blocks.pop()
        self.ledger.restore(snap)
        self.pool.on_reorg(body, at=self.ledger.number, at_number=self.ledger.number)

    @rule(index=st.integers(0, 20))
    def report_invalid(self, index):
        pending = self.pool.pending()
        if pending:
            self.pool.report_invalid(pending[index % len(pending)].hash, "test says so")

    @rule(seconds=st.integers(0, 6))
    def advance_clock(self, seconds):
        self.clock.now += seconds

    @invariant()
    def queues_are_consistent(self):
        check_ready_order(self.pool, self.ledger)
        pending = self.pool.pending()
        status = self.pool.status()
        assert len({tx.hash for tx in pending}) == len(pending) == status["ready"] + status["future"]
        assert status["bytes"] == sum(len(tx.data) for tx in pending) <= 400
        assert len(pending) <= 10
        statuses = {tx.hash: ("ready" if i < status["ready"] else "future") for i, tx in enumerate(pending)}
        assert statuses == self.tracked


TestPoolMachine = PoolMachine.TestCase
TestPoolMachine.settings = MACHINE_SETTINGS


# --- Arbitrary tag graphs (not only nonces) ---
def make_tagged(name: str, priority: int, requires: str = "", provides: str = "") -> bytes:
    """A transaction that states its own tags: one letter per tag."""
    return f"{name};{priority};{requires};{provides}".encode()


class TagChain:
    """A chain whose state is the set of tags provided so far (the nonce ledger, generalised)."""

    def __init__(self) -> None:
        self.tags: set[str] = set()

    def validate(self, data: bytes, at: object = None) -> ValidTransaction:
        _, priority, requires, provides = data.decode().split(";")
        if any(t in self.tags for t in provides):
            raise InvalidTransaction("Stale", "a provided tag is on chain already")
        return ValidTransaction(
            priority=int(priority),
            requires=tuple(t.encode() for t in requires if t not in self.tags),
            provides=tuple(t.encode() for t in provides),
            longevity=1_000,
        )

    def apply(self, data: bytes) -> None:
        _, _, requires, provides = data.decode().split(";")
        if not set(requires) <= self.tags or any(t in self.tags for t in provides):
            raise AssertionError(f"{data!r} is not applicable on {sorted(self.tags)}")
        self.tags |= set(provides)


def make_tag_pool(chain: TagChain, **limits: int) -> TxPool:
    return TxPool(chain.validate, blake2_256, clock=Clock(), **limits)


def test_txpool_waits_for_every_required_tag_and_counts_repeats_once():
    chain = TagChain()
    pool = make_tag_pool(chain)
    assert pool.submit(make_tagged("c", 9, "xyy", "z"), None, 0)[1] == "future"
    pool.submit(make_tagged("a", 1, "", "x"), None, 0)
    assert pool.get(blake2_256(make_tagged("c", 9, "xyy", "z"))).valid.requires == (b"x", b"y")
    pool.submit(make_tagged("b", 2, "", "y"), None, 0)
    assert [tx.data.split(b";")[0] for tx in pool.ready()] == [b"b", b"a", b"c"]


def test_txpool_refuses_a_transaction_providing_no_tag_or_replacing_its_own_dependency():
    pool = make_tag_pool(TagChain())
    with pytest.raises(Invalid, match="no tags"):
        pool.submit(make_tagged("a", 1, "", ""), None, 0)
    pool.submit(make_tagged("r", 1, "", "xy"), None, 0)
    with pytest.raises(CycleDetected):
        pool.submit(make_tagged("t", 5, "y", "x"), None, 0)
    assert len(pool) == 1


def test_txpool_usurper_demotes_dependants_of_tags_it_does_not_provide():
    pool = make_tag_pool(TagChain())
    pool.submit(make_tagged("r", 1, "", "xz"), None, 0)
    dep, _ = pool.submit(make_tagged("d", 1, "z", "w"), None, 0)
    pool.submit(make_tagged("t", 5, "", "x"), None, 0)
    assert [tx.data for tx in pool.ready()] == [make_tagged("t", 5, "", "x")]
    assert pool.status()["future"] == 1 and pool.get(dep) is not None


def test_txpool_revalidation_settles_a_tag_race_by_priority(ledger, pool):
    high, _ = pool.submit(make_tx("alice", 1, 5), None, 0)
    low, _ = pool.submit(make_tx("alice", 1, 1), None, 0)
    result = import_block(pool, ledger, [make_tx("alice", 0, 0)])  # both now require nothing
    assert [h for h, _ in result.dropped] == [low] and "Priority is too low" in result.dropped[0][1]
    assert result.promoted == (high,)
    pool.submit(make_tx("bob", 1, 1), None, 1)
    later, _ = pool.submit(make_tx("bob", 1, 4), None, 1)
    result = import_block(pool, ledger, [make_tx("bob", 0, 0)])
    assert result.dropped[0][1] == f"usurped by 0x{later.hex()}"


def test_txpool_eviction_order_survives_many_promotions_and_demotions(ledger):
    pool = make_pool(ledger, max_count=101, ban_seconds=0)  # no bans: the head comes back
    pool.submit_many([make_tx("alice", n, 1) for n in range(1, 100)], None, 0)
    for _ in range(4):  # each round moves the whole chain ready and back, piling up heap entries
        head, _ = pool.submit(make_tx("alice", 0, 1), None, 0)
        assert pool.status()["ready"] == 100
        pool.remove_invalid([head])
    pool.submit_many([make_tx("bob", 0), make_tx("charlie", 0), make_tx("dave", 0)], None, 0)  # evicts 1
    assert pool.get(blake2_256(make_tx("alice", 1, 1))) is None and len(pool) == 101


def test_txpool_ban_list_is_bounded(monkeypatch):
    monkeypatch.setattr("gensyn_node.txpool.pool.MAX_BANNED", 3)
    pool = make_pool(Ledger())
    pool.remove_invalid([bytes([i]) * 32 for i in range(5)])
    assert [pool.is_banned(bytes([i]) * 32) for i in range(5)] == [False, False, True, True, True]


TAGS = st.text("abcdef", min_size=1, max_size=2)


class TagGraphMachine(RuleBasedStateMachine):
    """Random tag graphs: whatever ready() yields applies in order on a copy of the chain."""

    def __init__(self):
        super().__init__()
        self.chain = TagChain()
        self.pool = make_tag_pool(self.chain, max_count=8)
        self.counter = 0

    @rule(priority=st.integers(0, 5), requires=st.text("abcdef", max_size=2), provides=TAGS)
    def submit(self, priority, requires, provides):
        self.counter += 1
        try:
            self.pool.submit(make_tagged(str(self.counter), priority, requires, provides), None, 0)
        except PoolError:
            pass

    @rule(take=st.integers(0, 3))
    def author_block(self, take):
        body = [tx.data for tx in list(self.pool.ready())[:take]]
        for data in body:
            self.chain.apply(data)
        self.pool.on_block_imported([blake2_256(d) for d in body], None, 0)

    @rule(index=st.integers(0, 10))
    def report_invalid(self, index):
        pending = self.pool.pending()
        if pending:
            self.pool.report_invalid(pending[index % len(pending)].hash, "test")

    @invariant()
    def ready_applies_in_order_and_future_waits_for_something(self):
        chain = TagChain()
        chain.tags = set(self.chain.tags)
        yielded = list(self.pool.ready())
        for tx in yielded:
            chain.apply(tx.data)
        assert len(yielded) == self.pool.status()["ready"] <= 8 - self.pool.status()["future"]
        provided = {tag for tx in yielded for tag in tx.valid.provides}
        for tx in self.pool.pending()[len(yielded) :]:
            assert not set(tx.valid.requires) <= provided


TestTagGraphMachine = TagGraphMachine.TestCase
TestTagGraphMachine.settings = MACHINE_SETTINGS
