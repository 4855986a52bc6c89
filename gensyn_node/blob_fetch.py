"""A checkpoint blob the node lacks, fetched from its peers and kept: the node half of the p2p
blob fetch (the peer iteration and the hash check are p2p/blobs.py).

Data path step: `mlcompute_getCheckpoint` (and so a verifier's or the job CLI's read of a
checkpoint through this node) asks the store, then, for a blob the store lacks, its peers. The
bytes are only returned once they hash to the requested hash; they are stored as an orphan (no
job pins them), so the store's orphan retention bounds what fetching for callers can keep.
"""

from __future__ import annotations

import logging
from typing import Any

from gensyn_node.db.checkpoints import CheckpointStore, CheckpointStoreError

log = logging.getLogger(__name__)


async def fetch_and_store_blob(network: Any, store: CheckpointStore, blob_hash: bytes) -> bytes | None:
    """The blob from the first peer that serves its bytes, stored locally; None when the node
    has no network or no peer asked holds it."""
    if network is None:
        return None
    from p2p.blobs import fetch_blob_from_peers

    data = await fetch_blob_from_peers(network, blob_hash)
    if data is None:
        return None
    try:
        store.put(data, expected_hash=blob_hash)
    except CheckpointStoreError as exc:
        # Served all the same: the bytes hash to the request, keeping them is only a cache.
        log.warning("fetched blob not stored hash=0x%s reason=%s", blob_hash.hex()[:16], exc)
    return data
