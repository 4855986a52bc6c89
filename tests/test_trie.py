"""The Merkle state trie against a plain dict model: values, roots, iteration, proofs, bad nodes."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.hashing import blake2_256
from runtime.trie import (
    EMPTY_NODE,
    EMPTY_ROOT,
    NodeCache,
    ProofError,
    Trie,
    TrieError,
    decode_node,
    encode_node,
    verify_proof,
)

# Short keys from a small alphabet so that keys share prefixes, end inside others and collide.
KEYS = st.binary(min_size=0, max_size=4).map(lambda b: bytes(x % 4 for x in b)) | st.binary(
    min_size=1, max_size=40
)
VALUES = st.binary(min_size=0, max_size=48)
BATCH = st.dictionaries(KEYS, st.none() | VALUES, max_size=24)


class Store:
    """A dict of nodes with the trie's get_node callable and a persist step."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def get(self, node_hash: bytes) -> bytes | None:
        return self.nodes.get(node_hash)

    def commit(self, trie: Trie, changes: dict) -> Trie:
        root, new_nodes = trie.apply(changes)
        for node_hash, data in new_nodes.items():
            assert blake2_256(data) == node_hash
        self.nodes.update(new_nodes)
        assert set(new_nodes) <= reachable(self, root), "apply returned a node the root does not use"
        return Trie(root, self.get)


def apply_model(model: dict[bytes, bytes], changes: dict) -> None:
    for key, value in changes.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value


def build(items: dict[bytes, bytes]) -> tuple[Store, Trie]:
    store = Store()
    return store, store.commit(Trie(EMPTY_ROOT, store.get), dict(items))


def reachable(store: Store, root: bytes) -> set[bytes]:
    seen: set[bytes] = set()
    todo = [] if root == EMPTY_ROOT else [root]
    while todo:
        node_hash = todo.pop()
        seen.add(node_hash)
        _partial, children, _value = decode_node(store.nodes[node_hash])
        todo.extend(c for c in children or () if c is not None)
    return seen


@settings(max_examples=150, deadline=None)
@given(st.lists(BATCH, min_size=1, max_size=8))
def test_trie_matches_dict_model(batches: list[dict]) -> None:
    store = Store()
    trie = Trie(EMPTY_ROOT, store.get)
    model: dict[bytes, bytes] = {}
    for changes in batches:
        old_root = trie.root
        new_trie = store.commit(trie, changes)
        assert trie.root == old_root
        apply_model(model, changes)
        trie = new_trie
        for key in set(model) | set(changes):
            assert trie.get(key) == model.get(key)
        assert trie.root == build(model)[1].root
    assert list(trie.iter_prefix(b"")) == sorted(model.items())
    for node_hash in reachable(store, trie.root):
        assert node_hash in store.nodes


# Substrate-like keys: a few 32-byte pallet/item prefixes, then a hashed or short suffix.
PREFIXES = [blake2_256(name) for name in (b"System.Account", b"Balances.Locks", b"Staking.Bonded")]
STORAGE_KEYS = st.builds(lambda i, tail: PREFIXES[i] + tail, st.integers(0, 2), st.binary(max_size=24))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(STORAGE_KEYS, st.none() | VALUES, max_size=30), min_size=1, max_size=5))
def test_trie_storage_keys_match_dict_model(batches: list[dict]) -> None:
    store = Store()
    trie = Trie(EMPTY_ROOT, store.get)
    model: dict[bytes, bytes] = {}
    for changes in batches:
        trie = store.commit(trie, changes)
        apply_model(model, changes)
    assert trie.root == build(model)[1].root
    for prefix in PREFIXES:
        assert list(trie.iter_prefix(prefix)) == sorted(i for i in model.items() if i[0].startswith(prefix))
    proof = trie.prove(list(model)[:3] + [PREFIXES[0]])
    for key in list(model)[:3] + [PREFIXES[0]]:
        assert verify_proof(trie.root, key, proof) == model.get(key)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=40), st.randoms(use_true_random=False))
def test_trie_root_independent_of_order_and_batching(items: dict, rnd) -> None:
    reference = build(items)[1].root
    keys = list(items)
    rnd.shuffle(keys)
    store = Store()
    trie = Trie(EMPTY_ROOT, store.get)
    cut = rnd.randint(0, len(keys))
    for chunk in (keys[:cut], keys[cut:]):
        trie = store.commit(trie, {k: items[k] for k in chunk})
    assert trie.root == reference
    for key in keys:
        trie = store.commit(trie, {key: items[key]})
    assert trie.root == reference


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=40), st.randoms(use_true_random=False))
def test_trie_deleting_everything_returns_empty_root(items: dict, rnd) -> None:
    store, trie = build(items)
    keys = list(items)
    rnd.shuffle(keys)
    half = len(keys) // 2
    trie = store.commit(trie, {k: None for k in keys[:half]})
    trie = store.commit(trie, {k: None for k in keys[half:]})
    assert trie.root == EMPTY_ROOT
    assert trie.get(b"") is None


def test_trie_new_nodes_are_only_the_dirty_path() -> None:
    items = {bytes([i, j]): bytes([i, j]) * 3 for i in range(16) for j in range(16)}
    trie = build(items)[1]
    root, new_nodes = trie.apply({bytes([3, 7]): b"changed"})
    assert 1 <= len(new_nodes) <= 4
    assert root in new_nodes
    assert trie.apply({bytes([3, 7]): items[bytes([3, 7])]})[0] == trie.root
    assert trie.apply({}) == (trie.root, {})
    assert trie.apply({b"absent": None}) == (trie.root, {})


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=40), st.lists(KEYS, max_size=30))
def test_trie_get_many_matches_get_for_present_and_absent_keys(items: dict, extra: list[bytes]) -> None:
    store, trie = build(items)
    wanted = list(items)[::2] + extra + extra[:3]  # some present, some absent, some repeated
    cold = Trie(trie.root, store.get, NodeCache(capacity=4))  # the walk reads through the store
    assert cold.get_many(wanted) == {k: items.get(k) for k in wanted}


def test_trie_get_many_loads_each_node_once() -> None:
    items = {bytes([a, b]): bytes([a, b]) for a in range(16) for b in range(16)}
    store, trie = build(items)
    reads: Counter[bytes] = Counter()

    def counting_get(node_hash: bytes) -> bytes | None:
        reads[node_hash] += 1
        return store.get(node_hash)

    values = Trie(trie.root, counting_get, NodeCache(capacity=1)).get_many(list(items) + [b"\x00\x00\x00"])
    assert values == {**items, b"\x00\x00\x00": None}
    assert set(reads.values()) == {1} and set(reads) == reachable(store, trie.root)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(KEYS, VALUES, max_size=40),
    KEYS,
    st.none() | KEYS,
)
def test_trie_iter_prefix_matches_sorted_filter(items: dict, prefix: bytes, after: bytes | None) -> None:
    trie = build(items)[1]
    expected = sorted((k, v) for k, v in items.items() if k.startswith(prefix))
    if after is not None:
        expected = [(k, v) for k, v in expected if k > after]
    assert list(trie.iter_prefix(prefix, start_after=after)) == expected


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=40), st.lists(KEYS, min_size=1, max_size=5))
def test_trie_proofs_of_presence_and_absence_verify(items: dict, extra: list[bytes]) -> None:
    trie = build(items)[1]
    keys = list(items)[:5] + extra
    proof = trie.prove(keys)
    assert len(proof) == len(set(proof))
    for key in keys:
        assert verify_proof(trie.root, key, proof) == items.get(key)
        assert verify_proof(trie.root, key, trie.prove([key])) == items.get(key)


def proof_case() -> tuple[Trie, bytes, list[bytes]]:
    items = {bytes([i, j, 1]): bytes([j]) * 20 for i in range(8) for j in range(8)}
    trie = build(items)[1]
    key = bytes([5, 3, 1])
    return trie, key, trie.prove([key])


def test_trie_tampered_proof_is_rejected() -> None:
    trie, key, proof = proof_case()
    assert verify_proof(trie.root, key, proof) == bytes([3]) * 20
    for index in range(len(proof)):
        for pos in (0, len(proof[index]) // 2, len(proof[index]) - 1):
            tampered = list(proof)
            node = bytearray(tampered[index])
            node[pos] ^= 0x01
            tampered[index] = bytes(node)
            with pytest.raises(ProofError):
                verify_proof(trie.root, key, tampered)


def test_trie_proof_against_wrong_root_is_rejected() -> None:
    _trie, key, proof = proof_case()
    with pytest.raises(ProofError):
        verify_proof(blake2_256(b"another root"), key, proof)
    with pytest.raises(ProofError):
        verify_proof(b"short", key, proof)


def test_trie_truncated_proof_is_rejected() -> None:
    trie, key, proof = proof_case()
    for cut in range(len(proof)):
        with pytest.raises(ProofError):
            verify_proof(trie.root, key, proof[:cut])
    absent = bytes([5, 3, 2])
    absence = trie.prove([absent])
    assert verify_proof(trie.root, absent, absence) is None
    with pytest.raises(ProofError):
        verify_proof(trie.root, absent, absence[:-1])


def test_trie_empty_root_proves_absence() -> None:
    assert EMPTY_ROOT == blake2_256(EMPTY_NODE)
    trie = Trie(EMPTY_ROOT, {}.get)
    assert trie.prove([b"k"]) == []
    assert verify_proof(EMPTY_ROOT, b"k", []) is None


def test_trie_missing_node_raises_trie_error() -> None:
    store, trie = build({b"a" * 8: b"1", b"b" * 8: b"2", b"c" * 8: b"3"})
    child = next(h for h in store.nodes if h != trie.root)
    del store.nodes[child]
    fresh = Trie(trie.root, store.get)
    with pytest.raises(TrieError, match="missing"):
        for key in (b"a" * 8, b"b" * 8, b"c" * 8):
            fresh.get(key)
    with pytest.raises(TrieError):
        list(fresh.iter_prefix(b""))
    with pytest.raises(TrieError):
        Trie(trie.root, store.get).apply({key: b"new" for key in (b"a" * 8, b"b" * 8, b"c" * 8)})
    with pytest.raises(TrieError):
        Trie(trie.root, store.get).prove([b"a" * 8, b"b" * 8, b"c" * 8])
    with pytest.raises(TrieError):
        Trie(blake2_256(b"nothing"), store.get).get(b"x")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\x07\x00\x00",
        b"\x01\x00\x05\xab",  # partial key truncated
        b"\x01\x00\x01\xa1",  # non-zero padding nibble
        b"\x02\x00\x00\x00",  # bitmap truncated
        b"\x02\x00\x00\x00\x03" + b"\x11" * 32,  # child hashes truncated
        b"\x02\x00\x00\x00\x01" + b"\x11" * 32,  # branch without value and one child
        b"\x02\x00\x00\x00\x03" + b"\x11" * 64 + b"x",  # trailing bytes
        b"\x03\x00\x00\x00\x00value",  # branch with a value and no child
    ],
)
def test_trie_decode_rejects_corrupt_nodes(data: bytes) -> None:
    with pytest.raises(TrieError):
        decode_node(data)


def test_trie_corrupt_stored_node_raises_trie_error() -> None:
    store, trie = build({b"a" * 8: b"1", b"b" * 8: b"2"})
    store.nodes[trie.root] = b"\x02\xff"
    with pytest.raises(TrieError):
        Trie(trie.root, store.get).get(b"a" * 8)
    good = encode_node(("0a", None, b"v"))
    store.nodes[trie.root] = good  # decodes, but is not the node with that hash
    with pytest.raises(TrieError, match="hash"):
        Trie(trie.root, store.get).get(b"a" * 8)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=120))
def test_trie_decode_is_strict_and_canonical(data: bytes) -> None:
    try:
        node = decode_node(data)
    except TrieError:
        return
    assert encode_node(node) == data


def test_trie_shared_cache_serves_reads_without_the_store() -> None:
    store = Store()
    cache = NodeCache(capacity=1000)
    root, new_nodes = Trie(EMPTY_ROOT, store.get, cache).apply({b"k%d" % i: b"v" for i in range(50)})
    store.nodes.update(new_nodes)
    reads: list[bytes] = []

    def counting_get(node_hash: bytes) -> bytes | None:
        reads.append(node_hash)
        return store.get(node_hash)

    trie = Trie(root, counting_get, cache)
    assert all(trie.get(b"k%d" % i) == b"v" for i in range(50))
    assert reads == []


def test_trie_node_cache_is_bounded() -> None:
    cache = NodeCache(capacity=2)
    for i in range(5):
        cache.put(bytes([i]) * 32, ("", None, b"v"))
    assert 1 <= len(cache) <= 2
    assert bytes([4]) * 32 in cache
    assert bytes([0]) * 32 not in cache
    with pytest.raises(ValueError):
        NodeCache(capacity=0)


def test_trie_node_cache_bounded_in_bytes_follows_node_size() -> None:
    small, large = NodeCache(max_bytes=1_000_000), NodeCache(max_bytes=1_000_000)
    for i in range(20_000):
        node_hash = i.to_bytes(32, "big")
        small.put(node_hash, ("", None, b"v"), 50)
        large.put(node_hash, ("", None, b"v"), 500)
    # ~275 and ~1,850 bytes a node: the cache of big nodes holds far fewer of them.
    assert 1_000_000 // 275 // 2 <= len(small) <= 1_000_000 // 275 + 10
    assert len(large) <= 1_000_000 // 1850 + 10
    assert (20_000 - 1).to_bytes(32, "big") in large
    with pytest.raises(ValueError):
        NodeCache(max_bytes=0)


def test_trie_rejects_bad_inputs() -> None:
    trie = Trie(EMPTY_ROOT, {}.get)
    with pytest.raises(TypeError):
        trie.apply({"text": b"v"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        trie.apply({b"k": 5})  # type: ignore[dict-item]
    with pytest.raises(TrieError):
        Trie(b"\x00" * 5, {}.get)


def positions(store: Store, root: bytes) -> Counter:
    """How many positions of the trie at `root` hold each node (a node can repeat)."""
    counts: Counter = Counter()
    if root == EMPTY_ROOT:
        return counts
    stack = [root]
    while stack:
        node_hash = stack.pop()
        counts[node_hash] += 1
        _partial, children, _value = decode_node(store.nodes[node_hash])
        stack.extend(child for child in children or () if child is not None)
    return counts


# Keys that end in the same suffixes under different prefixes, with few values: identical
# subtrees at several positions, the case a reference count must not get wrong.
SUFFIXES = st.binary(min_size=1, max_size=3)
TWIN_BATCH = st.dictionaries(
    st.tuples(st.sampled_from([b"\x10", b"\x20", b"\x30\x01"]), SUFFIXES).map(lambda t: t[0] + t[1]),
    st.none() | st.sampled_from([b"a", b"b", b""]),
    max_size=24,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(BATCH | TWIN_BATCH, min_size=1, max_size=6))
def test_trie_update_accounts_for_every_position(batches: list[dict]) -> None:
    store = Store()
    trie = Trie(EMPTY_ROOT, store.get)
    for changes in batches:
        before = positions(store, trie.root)
        diff = trie.update(changes)
        store.nodes.update(diff.new_nodes)
        after = positions(store, diff.root)
        inserted = Counter(diff.new_nodes.keys()) + Counter(diff.inserted_again)
        assert before + inserted == after + Counter(diff.removed)
        assert not (Counter(diff.removed) - before), "removed a node the old trie did not hold"
        trie = Trie(diff.root, store.get)
