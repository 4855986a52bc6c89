"""A process that imports blocks into a LevelDB chain store forever, printing each block it
committed; the crash test kills it with SIGKILL at random moments (not a test module).

With `W` as second argument the store keeps the states of W finalized blocks, every fourth block also gets
a fork (which the next finality discards), finality comes every four blocks, and pruning runs one
block per atomic step, so that kills land in the middle of pruning too; `W K` kills itself right after the K-th
atomic write of a finalization, between two steps of pruning."""

from __future__ import annotations

import os
import signal
import sys

from gensyn_node import chain_db
from gensyn_node.block_import import import_block
from gensyn_node.chain_db import ChainStore
from gensyn_node.db.pruning import StatePruning
from gensyn_node.keyring import keypair_from_seed
from runtime.crypto import ED25519
from runtime.executive import BlockBuilder
from runtime.extrinsic import encode_signed, signing_payload
from runtime.genesis import build_genesis
from runtime.pallets.system.account import get_account
from runtime.storage import OverlayState
from runtime.types import Era
from runtime.version import get_runtime

KEYS = [keypair_from_seed(i.to_bytes(32, "little"), ED25519) for i in range(1, 41)]


def genesis():
    return build_genesis({"balances": [(k.public, 10**18) for k in KEYS], "spec_version": 1})


def build_block(store, parent, genesis_hash, runtime, author: int = 0, senders: int = len(KEYS)):
    state = store.state_at(parent.hash)
    builder = BlockBuilder(state, parent, slot=parent.number + 1 + author, author=KEYS[author].public,
                           timestamp_ms=(parent.number + 1 + author) * 2000)
    overlay = OverlayState(state.get)
    for i, key in enumerate(KEYS[:senders]):
        nonce = get_account(overlay, key.public).nonce
        call = runtime.encode_call("Balances", "transfer_keep_alive",
                                   {"dest": ("Id", KEYS[(i + 1) % len(KEYS)].public), "value": 10**12 + parent.number})
        payload = signing_payload(call, Era.encode(None), nonce, 0, 1, 1, genesis_hash, genesis_hash)
        builder.push(encode_signed(call, key.public, ED25519, key.sign(payload), None, nonce, 0))
    block, executed = builder.build()
    return block, executed


def _die_after_writes(store: ChainStore, writes: int) -> list[bool]:
    """SIGKILL this process right after the `writes`-th atomic write made while finalizing."""
    finalizing = [False]
    write = store.kv.write

    def counted(puts, deletes=()):  # type: ignore[no-untyped-def]
        nonlocal writes
        write(puts, deletes)
        if finalizing[0]:
            writes -= 1
            if writes == 0:
                os.kill(os.getpid(), signal.SIGKILL)

    store.kv.write = counted  # type: ignore[method-assign]
    return finalizing


def main(path: str, prune: int | None, die_after: int | None) -> None:
    header, _storage, nodes = genesis()
    mode = None if prune is None else StatePruning(prune)
    store = ChainStore.open(path, state_pruning=mode)
    store.initialize(header, nodes)
    if prune is not None:
        chain_db.BLOCKS_PER_PRUNE_STEP = 1
    finalizing = _die_after_writes(store, die_after) if die_after else [False]
    runtime = get_runtime(1)
    while True:
        parent = store.best_header()
        block, executed = build_block(store, parent, header.hash, runtime)
        import_block(store, block, executed=executed)
        print(f"committed {block.header.number} 0x{block.header.hash.hex()}", flush=True)
        if prune is None:
            continue
        number = block.header.number
        if number % 4 == 1:
            fork, fork_executed = build_block(store, parent, header.hash, runtime, author=1, senders=20)
            import_block(store, fork, executed=fork_executed)
        if number % 4 == 0:
            print(f"finalizing {number}", flush=True)
            finalizing[0] = True
            store.set_finalized(block.hash)
            finalizing[0] = False


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None, int(sys.argv[3]) if len(sys.argv) > 3 else None)
