"""Fixtures of the runtime tests: a dev chain's genesis (alice..ferdie endowed, alice sudo), an
in-memory trie store, and helpers that sign extrinsics, build blocks and read events.

The helpers are handed out by session-scoped fixtures so that hypothesis tests can use them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from gensyn_node.keyring import DEV_NAMES, Keypair, dev_account
from runtime.block import Block, Header
from runtime.codec.scale import H256, Struct, Vec
from runtime.executive import ApplyOutcome, BlockBuilder, ExecutedBlock
from runtime.extrinsic import encode_signed, signing_payload
from runtime.genesis import build_genesis
from runtime.pallets.balances.storage import TotalIssuance
from runtime.pallets.system import storage as system
from runtime.pallets.system.account import AccountRecord, get_account
from runtime.params import ChainParameters
from runtime.storage import OverlayState
from runtime.trie import Trie
from runtime.types import Era, Phase
from runtime.version import Runtime, get_runtime

SPEC_VERSION = 1
TX_VERSION = 1
ENDOWMENT = 10**18
PARAMS = ChainParameters()
ED = PARAMS.existential_deposit
SLOT_MS = PARAMS.slot_duration_ms


@dataclass(frozen=True)
class Chain:
    """Block 0 of the dev chain the tests run on."""

    header: Header
    storage: dict[bytes, bytes]
    nodes: dict[bytes, bytes]
    runtime: Runtime
    keys: dict[str, Keypair]

    @property
    def hash(self) -> bytes:
        return self.header.hash


def dev_genesis_config(extra: Sequence[tuple[bytes, int]] = ()) -> dict[str, Any]:
    alice = dev_account("alice")
    balances = [(dev_account(n).public, ENDOWMENT) for n in DEV_NAMES] + list(extra)
    return {"balances": balances, "sudo": alice.public, "spec_version": SPEC_VERSION, "params": PARAMS}


@pytest.fixture(scope="session")
def chain() -> Chain:
    header, storage, nodes = build_genesis(dev_genesis_config())
    return Chain(header, storage, nodes, get_runtime(SPEC_VERSION), {n: dev_account(n) for n in DEV_NAMES})


@pytest.fixture(scope="session")
def keys(chain: Chain) -> dict[str, Keypair]:
    return chain.keys


@pytest.fixture(scope="session")
def rt(chain: Chain) -> Runtime:
    return chain.runtime


@pytest.fixture
def store(chain: Chain) -> dict[bytes, bytes]:
    """A fresh in-memory trie node store holding the genesis state."""
    return dict(chain.nodes)


@pytest.fixture
def trie(chain: Chain, store: dict[bytes, bytes]) -> Trie:
    return Trie(chain.header.state_root, store.get)


def _sign(chain: Chain, keypair: Any, call_bytes: bytes, nonce: int, tip: int = 0,
          era: tuple[int, int] | None = None, *, era_hash: bytes | None = None,
          genesis_hash: bytes | None = None, spec_version: int = SPEC_VERSION,
          tx_version: int = TX_VERSION) -> bytes:
    genesis_hash = chain.hash if genesis_hash is None else genesis_hash
    era_hash = genesis_hash if era_hash is None else era_hash
    payload = signing_payload(call_bytes, Era.encode(era), nonce, tip, spec_version, tx_version,
                              genesis_hash, era_hash)
    return encode_signed(call_bytes, keypair.public, keypair.scheme, keypair.sign(payload), era, nonce, tip)


@pytest.fixture(scope="session")
def sign(chain: Chain) -> Callable[..., bytes]:
    """sign(keypair, call_bytes, nonce, tip=0, era=None, *, era_hash=, genesis_hash=,
    spec_version=, tx_version=) -> signed extrinsic bytes; the era's block defaults to genesis."""

    def sign(keypair: Any, call_bytes: bytes, nonce: int, tip: int = 0, era: tuple[int, int] | None = None,
             **kw: Any) -> bytes:
        return _sign(chain, keypair, call_bytes, nonce, tip, era, **kw)

    return sign


@dataclass(frozen=True)
class BuiltBlock:
    block: Block
    executed: ExecutedBlock
    outcomes: tuple[ApplyOutcome, ...]  # of the pushed transactions (the inherent excluded)

    @property
    def header(self) -> Header:
        return self.block.header


def _make_block(trie: Trie, parent: Header, xts: Sequence[bytes], *, author: bytes | None = None,
                slot: int | None = None, timestamp_ms: int | None = None) -> BuiltBlock:
    slot = parent.number + 1 if slot is None else slot
    timestamp_ms = slot * SLOT_MS if timestamp_ms is None else timestamp_ms
    builder = BlockBuilder(trie, parent, slot=slot, author=author or dev_account("ferdie").public,
                           timestamp_ms=timestamp_ms)
    outcomes = tuple(builder.push(xt) for xt in xts)
    block, executed = builder.build()
    return BuiltBlock(block, executed, outcomes)


@pytest.fixture(scope="session")
def make_block() -> Callable[..., BuiltBlock]:
    """make_block(trie, parent, xts, *, author=ferdie, slot=parent+1, timestamp_ms=slot time):
    builds a block with BlockBuilder; a transaction that is invalid raises."""
    return _make_block


def _commit(store: dict[bytes, bytes], built: BuiltBlock | ExecutedBlock) -> Trie:
    executed = built.executed if isinstance(built, BuiltBlock) else built
    store.update(executed.new_nodes)
    return Trie(executed.state_root, store.get)


@pytest.fixture(scope="session")
def commit() -> Callable[..., Trie]:
    """commit(store, built) -> the trie at the built block's state, its nodes now in `store`."""
    return _commit


def event_record_type(runtime: Runtime) -> Struct:
    return Struct(("frame_system", "EventRecord"),
                  [("phase", Phase), ("event", runtime.event_enum), ("topics", Vec(H256))])


def _read_events(runtime: Runtime, state_get: Callable[[bytes], bytes | None]) -> list[dict[str, Any]]:
    raw = state_get(system.Events.key())
    if raw is None:
        return []
    return Vec(event_record_type(runtime)).decode(raw)


@pytest.fixture(scope="session")
def read_events(rt: Runtime) -> Callable[[Trie | OverlayState], list[dict[str, Any]]]:
    """read_events(trie) -> System.Events decoded as Vec<EventRecord{phase, event, topics}>."""
    return lambda view: _read_events(rt, view.get)


def _account(view: Trie | OverlayState, who: bytes) -> AccountRecord:
    return get_account(OverlayState(view.get), who)


@pytest.fixture(scope="session")
def account() -> Callable[[Trie | OverlayState, bytes], AccountRecord]:
    """account(trie, who) -> the AccountRecord (all zero when absent)."""
    return _account


def _total_issuance(view: Trie | OverlayState) -> int:
    return TotalIssuance.get(OverlayState(view.get))


@pytest.fixture(scope="session")
def total_issuance() -> Callable[[Trie | OverlayState], int]:
    return _total_issuance


@pytest.fixture(scope="session")
def transfer(rt: Runtime) -> Callable[..., bytes]:
    """transfer(dest_public, value, kind="transfer_keep_alive") -> call bytes."""

    def transfer(dest: bytes, value: int, kind: str = "transfer_keep_alive") -> bytes:
        return rt.encode_call("Balances", kind, {"dest": ("Id", dest), "value": value})

    return transfer


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
