"""A process that imports blocks into a LevelDB chain store forever, printing each block it
committed; the crash test kills it with SIGKILL at random moments (not a test module)."""

from __future__ import annotations

import sys

from gensyn_node.block_import import import_block
from gensyn_node.chain_db import ChainStore
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


def main(path: str) -> None:
    header, _storage, nodes = genesis()
    store = ChainStore.open(path)
    store.initialize(header, nodes)
    runtime = get_runtime(1)
    while True:
        parent = store.best_header()
        state = store.state_at(parent.hash)
        builder = BlockBuilder(state, parent, slot=parent.number + 1, author=KEYS[0].public,
                               timestamp_ms=(parent.number + 1) * 2000)
        overlay = OverlayState(state.get)
        for i, key in enumerate(KEYS):
            nonce = get_account(overlay, key.public).nonce
            call = runtime.encode_call("Balances", "transfer_keep_alive",
                                       {"dest": ("Id", KEYS[(i + 1) % len(KEYS)].public), "value": 10**12 + parent.number})
            payload = signing_payload(call, Era.encode(None), nonce, 0, 1, 1, header.hash, header.hash)
            builder.push(encode_signed(call, key.public, ED25519, key.sign(payload), None, nonce, 0))
        block, executed = builder.build()
        import_block(store, block, executed=executed)
        print(f"committed {block.header.number} 0x{block.header.hash.hex()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
