"""The key-value store: both backends alike, atomic batches, locks, and kill -9 in mid-write."""

from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gensyn_node.db import keys
from gensyn_node.db.kv import (
    KVStore,
    LevelKV,
    MemoryKV,
    StoreClosedError,
    StoreCorruptError,
    StoreLockedError,
    open_kv,
    prefix_upper_bound,
)
from gensyn_node.db.trie_store import open_state, trie_node_puts
from runtime.trie import EMPTY_ROOT, NodeCache

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["memory", "leveldb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    store = open_kv(None) if request.param == "memory" else open_kv(str(tmp_path / "db"))
    yield store
    store.close()


def test_kv_get_put_delete(kv: KVStore) -> None:
    assert kv.get(b"a") is None
    kv.write({b"a": b"1", b"b": b"2"})
    kv.write([(b"c", b"3")], deletes=[b"a", b"missing"])
    assert kv.get(b"a") is None
    assert kv.get(b"b") == b"2"
    assert kv.get(b"c") == b"3"
    kv.write({b"b": b""})
    assert kv.get(b"b") == b""


def test_kv_keys_are_bytes_and_values_bytes_like(kv: KVStore) -> None:
    kv.write([(b"k", memoryview(b"v")), (b"l", bytearray(b"w"))])
    assert kv.get(b"k") == b"v"
    assert type(kv.get(b"l")) is bytes
    with pytest.raises(TypeError):
        kv.write([(bytearray(b"m"), b"v")])  # type: ignore[list-item]
    assert kv.get(b"m") is None


def test_kv_deletes_apply_after_puts(kv: KVStore) -> None:
    kv.write({b"k": b"v"}, deletes=[b"k"])
    assert kv.get(b"k") is None


def test_kv_iterate_prefix_start_and_reverse(kv: KVStore) -> None:
    data = {b"p" + bytes([i]): bytes([i]) for i in (0, 1, 5, 9, 0xFF)}
    kv.write({**data, b"o": b"x", b"q": b"x", b"p": b"bare"})
    expected = sorted({**data, b"p": b"bare"}.items())
    assert list(kv.iterate(b"p")) == expected
    assert list(kv.iterate(b"p", reverse=True)) == expected[::-1]
    assert list(kv.iterate(b"p", start=b"p\x05")) == [e for e in expected if e[0] >= b"p\x05"]
    assert list(kv.iterate(b"p", start=b"p\x05", reverse=True)) == [
        e for e in expected[::-1] if e[0] <= b"p\x05"
    ]
    assert list(kv.iterate(b"p", start=b"a")) == expected
    assert list(kv.iterate(b"p", start=b"z", reverse=True)) == expected[::-1]
    assert len(list(kv.iterate(b""))) == len(expected) + 2
    assert list(kv.iterate(b"zz")) == []


def test_kv_iterate_after_mixed_writes_matches_a_sorted_dict(kv: KVStore) -> None:
    rng = random.Random(5)
    model: dict[bytes, bytes] = {}
    for _ in range(30):
        puts = {bytes([rng.randrange(8), rng.randrange(8)]): bytes([rng.randrange(256)]) for _ in range(6)}
        deletes = [bytes([rng.randrange(8), rng.randrange(8)]) for _ in range(4)]
        kv.write(puts, deletes)
        model.update(puts)
        for key in deletes:
            model.pop(key, None)
        if rng.random() < 0.5:
            assert list(kv.iterate(b"")) == sorted(model.items())
    assert list(kv.iterate(b"", reverse=True)) == sorted(model.items(), reverse=True)


def test_kv_iterate_all_ff_prefix(kv: KVStore) -> None:
    kv.write({b"\xff\xff": b"1", b"\xff\xff\x00": b"2", b"\xff\xfe": b"3"})
    assert [k for k, _ in kv.iterate(b"\xff\xff")] == [b"\xff\xff", b"\xff\xff\x00"]
    assert prefix_upper_bound(b"\xff") is None
    assert prefix_upper_bound(b"a\xff") == b"b"


def test_kv_iterate_is_a_snapshot(kv: KVStore) -> None:
    kv.write({b"k1": b"1", b"k2": b"2"})
    items = kv.iterate(b"k")
    kv.write({b"k3": b"3"}, deletes=[b"k1"])
    assert list(items) == [(b"k1", b"1"), (b"k2", b"2")]


def failing_puts() -> Iterator[tuple[bytes, bytes]]:
    yield b"x1", b"1"
    yield b"x2", b"2"
    raise RuntimeError("the caller failed while composing the batch")


def test_kv_batch_is_all_or_nothing(kv: KVStore) -> None:
    kv.write({b"x0": b"0"})
    with pytest.raises(RuntimeError):
        kv.write(failing_puts(), deletes=[b"x0"])
    with pytest.raises(TypeError):
        kv.write([(b"x1", b"1"), (b"x2", "not bytes")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        kv.write({b"x1": b"1"}, deletes=[b"x0", 5])  # type: ignore[list-item]
    assert kv.get(b"x0") == b"0"
    assert kv.get(b"x1") is None
    assert kv.get(b"x2") is None


def test_kv_closed_store_raises(kv: KVStore) -> None:
    kv.close()
    with pytest.raises(StoreClosedError):
        kv.get(b"a")
    kv.close()


def test_kv_open_kv_none_is_memory() -> None:
    assert isinstance(open_kv(None), MemoryKV)


def test_kv_leveldb_reopen_returns_data(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    with LevelKV(path) as kv:
        kv.write({b"meta:best": b"h" * 32, b"t" + b"n" * 32: b"node"})
    with LevelKV(path) as kv:
        assert kv.get(b"meta:best") == b"h" * 32
        assert list(kv.iterate(b"t")) == [(b"t" + b"n" * 32, b"node")]


def test_kv_leveldb_second_opener_in_process_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    with LevelKV(path) as kv:
        with pytest.raises(StoreLockedError, match="already open"):
            LevelKV(path)
        # The refusal must not have dropped the LevelDB lock: another process is still refused.
        assert "StoreLockedError" in open_in_child(path)
        kv.write({b"still": b"works"})
    with LevelKV(path) as kv:
        assert kv.get(b"still") == b"works"


def test_kv_leveldb_dropped_handle_frees_the_path(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    kv = LevelKV(path)
    kv.write({b"k": b"v"})
    del kv
    gc.collect()
    with LevelKV(path) as again:
        assert again.get(b"k") == b"v"


def open_in_child(path: str) -> str:
    code = textwrap.dedent(
        f"""
        from gensyn_node.db.kv import LevelKV, StoreLockedError
        try:
            LevelKV({path!r})
        except StoreLockedError as exc:
            print("StoreLockedError", exc)
        else:
            print("opened")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def test_kv_leveldb_second_process_gets_store_locked_error(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    with LevelKV(path):
        out = open_in_child(path)
    assert out.startswith("StoreLockedError")
    assert "locked by another process" in out
    assert "opened" in open_in_child(path)


def test_kv_leveldb_corruption_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LevelKV(str(path)) as kv:
        kv.write({b"k%d" % i: b"v" * 100 for i in range(100)})
    manifest = next(path.glob("MANIFEST-*"))
    manifest.write_bytes(b"\xff" * 64)
    with pytest.raises(StoreCorruptError, match="corrupt"):
        LevelKV(str(path))


WRITER = """
import sys
from gensyn_node.db.kv import LevelKV

path, width = sys.argv[1], int(sys.argv[2])
kv = LevelKV(path)
meta = kv.get(b"meta")
counter = 0 if meta is None else int.from_bytes(meta, "big")
while True:
    counter += 1
    value = counter.to_bytes(8, "big")
    puts = {b"k%04d" % i: value + bytes(64) for i in range(width)}
    puts[b"x%016d" % counter] = value
    puts[b"meta"] = value
    kv.write(puts, deletes=[b"x%016d" % (counter - 1)])
    print(counter, flush=True)
"""


def check_consistent(path: str, width: int, acknowledged: int) -> int:
    with LevelKV(path) as kv:
        meta = kv.get(b"meta")
        assert meta is not None
        counter = int.from_bytes(meta, "big")
        assert counter >= acknowledged, "a batch the writer saw written was lost"
        for i in range(width):
            assert kv.get(b"k%04d" % i) == meta + bytes(64)
        assert list(kv.iterate(b"x")) == [(b"x%016d" % counter, meta)]
    return counter


def test_kv_leveldb_kill_9_never_leaves_half_a_batch(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    width = 200
    rng = random.Random(20261126)
    acknowledged = 0
    for _round in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, path, str(width)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        # Let it write a random number of batches past its first, then kill it mid-stream.
        for _ in range(rng.randint(1, 40)):
            line = child.stdout.readline()
            assert line, "the writer died before it was killed"
            acknowledged = int(line)
        time.sleep(rng.random() * 0.02)  # not a synchronisation: a random moment to kill at
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
        acknowledged = max(acknowledged, check_consistent(path, width, acknowledged))
    assert acknowledged > 8


def test_kv_keys_prefixes_never_overlap() -> None:
    prefixes = list(keys.ALL_PREFIXES.values())
    assert len(set(prefixes)) == len(prefixes)
    for a in prefixes:
        for b in prefixes:
            assert a == b or not b.startswith(a)
    for name in (keys.META_BEST, keys.META_FINALIZED, keys.META_GENESIS):
        assert name.startswith(keys.META)


def test_kv_keys_helpers() -> None:
    block = bytes(range(32))
    assert keys.header_key(block) == b"h" + block
    assert keys.body_key(block) == b"b" + block
    assert keys.justification_key(block) == b"j" + block
    assert keys.trie_node_key(block) == b"t" + block
    assert keys.checkpoint_key(block) == b"c" + block
    assert keys.number_from_key(keys.number_key(258)) == 258
    assert keys.number_key(1) < keys.number_key(256)
    assert keys.meta_key("best") == keys.META_BEST
    assert keys.signing_state_key(b"\x01" * 32).startswith(keys.SIGNING_STATE)
    for bad in (lambda: keys.header_key(b"short"), lambda: keys.number_key(-1), lambda: keys.meta_key("a:b")):
        with pytest.raises(keys.InvalidKeyError):
            bad()


def test_kv_trie_nodes_commit_with_the_block(kv: KVStore) -> None:
    cache = NodeCache()
    state = open_state(kv, EMPTY_ROOT, cache)
    root, new_nodes = state.apply({b"alice": b"100", b"bob": b"50"})
    block = b"\x07" * 32
    kv.write({**trie_node_puts(new_nodes), keys.header_key(block): root, keys.META_BEST: block})
    reopened = open_state(kv, kv.get(keys.header_key(block)) or b"", NodeCache())
    assert reopened.get(b"alice") == b"100"
    assert {k[1:] for k, _ in kv.iterate(keys.TRIE_NODE)} == set(new_nodes)
