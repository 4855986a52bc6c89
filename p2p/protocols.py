"""Every protocol id and gossip topic of the network, in one place. Each carries the genesis
hash, as Substrate's do, so two chains never mix: a node of another chain neither answers our
requests nor sees our gossip."""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOL_PREFIX = "gsyn"


@dataclass(frozen=True, slots=True)
class Protocols:
    """The ids of one chain, derived from its genesis hash."""

    genesis_hash: bytes

    @property
    def _base(self) -> str:
        return f"/{PROTOCOL_PREFIX}/{self.genesis_hash.hex()}"

    # --- request/response on streams -------------------------------------------------------
    @property
    def status(self) -> str:
        """Our best and finalized heads, asked on connect and before sync."""
        return f"{self._base}/status/1"

    @property
    def blocks_by_range(self) -> str:
        """Canonical blocks from a number, each with its justification (sync)."""
        return f"{self._base}/sync/blocks/1"

    @property
    def blobs_by_hash(self) -> str:
        """Content-addressed blobs (ML checkpoints)."""
        return f"{self._base}/blobs/1"

    # --- gossip topics ---------------------------------------------------------------------
    @property
    def block_topic(self) -> str:
        return f"{self._base}/block-announces/1"

    @property
    def transactions_topic(self) -> str:
        return f"{self._base}/transactions/1"

    @property
    def votes_topic(self) -> str:
        return f"{self._base}/votes/1"

    @property
    def topics(self) -> tuple[str, str, str]:
        return (self.block_topic, self.transactions_topic, self.votes_topic)

    @property
    def request_protocols(self) -> tuple[str, str, str]:
        return (self.status, self.blocks_by_range, self.blobs_by_hash)
