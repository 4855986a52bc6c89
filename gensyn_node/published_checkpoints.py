"""Checkpoints a solver had to publish on chain (`MlCompute.publish_checkpoint`, after a verifier
reported them unavailable) go into this node's checkpoint store when their block is imported,
so that `mlcompute_getCheckpoint` (and the p2p blob protocol) serves them like any upload.

Only what the runtime accepted is kept: the bytes must hash to an entry of the job's
`PublishedCheckpoints` list in the block's post-state (a failed publication is still included
in its block). They are stored without a job reference, as an orphan upload is: the reporter
needs them within the attest window, and the store drops orphans after a day.
"""

from __future__ import annotations

import logging

from gensyn_node.chain_db import ChainStore, StateDiscarded
from gensyn_node.db.checkpoints import CheckpointStore, CheckpointStoreError
from runtime.block import Block
from runtime.codec.errors import CodecError
from runtime.executive import get_state_runtime
from runtime.extrinsic import decode_extrinsic
from runtime.hashing import blake2_256
from runtime.pallets.indices import ML_COMPUTE
from runtime.pallets.ml_compute import storage as ml
from runtime.pallets.ml_compute.registry import ARCHITECTURE_FACTS
from runtime.storage import OverlayState

log = logging.getLogger(__name__)
# A publication carries a whole model state: nothing shorter needs decoding.
MIN_PUBLICATION_BYTES = min(f.state_bytes for f in ARCHITECTURE_FACTS.values())


def keep_published_checkpoints(store: ChainStore, checkpoints: CheckpointStore, block: Block) -> int:
    """Store the checkpoints `block` published; how many."""
    candidates = [xt for xt in block.extrinsics if len(xt) >= MIN_PUBLICATION_BYTES]
    if not candidates:
        return 0
    try:
        trie = store.state_at(block.header.hash)
    except StateDiscarded:
        return 0
    state = OverlayState(trie.get, trie.iter_prefix)
    runtime = get_state_runtime(state)
    kept = 0
    for raw in candidates:
        try:
            pallet, name, args = decode_extrinsic(raw, runtime).call
        except CodecError:
            continue
        if pallet != ML_COMPUTE or name != "publish_checkpoint":
            continue
        data = bytes(args["state"])
        published = ml.PublishedCheckpoints.get(state, args["job"]) or []
        if blake2_256(data) not in published:
            continue  # the publication failed in its block
        try:
            checkpoints.put(data)
        except CheckpointStoreError as exc:
            log.warning("published checkpoint not stored job=%d index=%d reason=%s", args["job"], args["index"], exc)
            continue
        kept += 1
        log.info("published checkpoint stored job=%d index=%d hash=0x%s", args["job"], args["index"],
                 blake2_256(data).hex()[:16])
    return kept
