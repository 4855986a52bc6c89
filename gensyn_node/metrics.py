"""Prometheus metrics of the node, on their own port (9615 by default): best and finalized
height, tx pool size, block import time, RPC calls by method, RPC connections (open, limits,
refused and closed by the server, by reason), peers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gensyn_node.rpc.limits import CLOSE_REASONS, REFUSAL_REASONS, ConnectionStats

log = logging.getLogger(__name__)


class MetricsPortBusy(OSError):
    """The metrics port is taken."""


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.best = Gauge("gensyn_block_height_best", "Best block number", registry=r)
        self.finalized = Gauge("gensyn_block_height_finalized", "Finalized block number", registry=r)
        self.pool_size = Gauge("gensyn_txpool_size", "Transactions in the pool", registry=r)
        self.peers = Gauge("gensyn_peers", "Connected peers", registry=r)
        self.gossip_received = Gauge("gensyn_gossip_received", "Gossip messages received from peers", registry=r)
        self.gossip_sent = Gauge("gensyn_gossip_sent", "Gossip messages this node published", registry=r)
        self.gossip_by_kind = Gauge("gensyn_gossip_messages", "Gossip messages received and published, by kind",
                                    ["kind"], registry=r)
        self.authored = Counter("gensyn_blocks_authored", "Blocks this node authored", registry=r)
        self.slots_skipped_syncing = Counter("gensyn_slots_skipped_syncing",
                                             "Slots a validator did not author because it was major-syncing", registry=r)
        self.import_seconds = Histogram("gensyn_block_import_seconds", "Time to import a block", registry=r,
                                        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        self.rpc_calls = Counter("gensyn_rpc_calls", "RPC calls by method", ["method"], registry=r)
        self.rpc_seconds = Histogram("gensyn_rpc_call_seconds", "RPC call time", registry=r,
                                     buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0))
        self._server: Any = None

    def watch_rpc_connections(self, stats: ConnectionStats) -> None:
        """Export the RPC server's connection counters (read at each scrape)."""
        self.registry.register(_RpcConnections(stats))

    def on_rpc_call(self, method: str, seconds: float) -> None:
        self.rpc_calls.labels(method=method).inc()
        self.rpc_seconds.observe(seconds)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        try:
            server = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsPortBusy(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
        self._server = server[0] if isinstance(server, tuple) else server
        log.info("metrics serving port=%d", port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _RpcConnections:
    """A collector over the RPC server's `ConnectionStats`: the server counts with plain
    integers on its hot path, and the numbers are turned into metrics only when scraped."""

    def __init__(self, stats: ConnectionStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        yield GaugeMetricFamily("gensyn_rpc_connections_open", "Open RPC connections (HTTP and WebSocket)",
                                value=stats.open)
        limit = GaugeMetricFamily("gensyn_rpc_connections_limit", "RPC connection limits", labels=["scope"])
        limit.add_metric(["server"], stats.max_connections)
        limit.add_metric(["per_ip"], stats.max_connections_per_ip)
        yield limit
        refused = CounterMetricFamily("gensyn_rpc_connections_refused", "RPC connections refused at accept",
                                      labels=["reason"])
        for reason in REFUSAL_REASONS:
            refused.add_metric([reason], stats.refused.get(reason, 0))
        yield refused
        closed = CounterMetricFamily("gensyn_rpc_connections_closed_by_server",
                                     "RPC connections the server closed, by timeout", labels=["reason"])
        for reason in CLOSE_REASONS:
            closed.add_metric([reason], stats.closed_by_server.get(reason, 0))
        yield closed
