"""Per-connection accounting for the RPC server: the token bucket that limits calls per second
and the table of open TCP connections (HTTP keep-alive or WebSocket) that the accept gate
fills and the ASGI app reads by the client's address. First step of the RPC data path: a
connection is counted (or refused: server full, or its address over its share) here before
any byte of it is parsed, and uncounted the moment it closes.

Loopback: every address, loopback ones included, has the same per-address cap (127.0.0.1 and
127.0.0.2 are different addresses), so no one process holds every slot; and a tenth of the
slots is kept for loopback clients, so that floods from many remote addresses (with
`--rpc-external`) still leave the operator's own tools on the machine served.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

import trio

# Why a connection was refused at the gate, or closed by the server; the labels of the metrics.
REFUSED_FULL = "max_connections"
REFUSED_PER_IP = "per_ip"
CLOSED_HANDSHAKE = "handshake_timeout"  # no complete first request in time
CLOSED_KEEP_ALIVE = "keep_alive_timeout"  # idle between requests for the keep-alive timeout
CLOSED_LOW_SLOTS = "idle_low_slots"  # idle while slots run low
CLOSED_BODY = "body_timeout"  # a later request's body not received in time
REFUSAL_REASONS = (REFUSED_FULL, REFUSED_PER_IP)
CLOSE_REASONS = (CLOSED_HANDSHAKE, CLOSED_KEEP_ALIVE, CLOSED_LOW_SLOTS, CLOSED_BODY)


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; one token per call."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = trio.current_time()

    def try_take(self) -> bool:
        """Take one token if there is one."""
        if self._tokens < 1.0:
            now = trio.current_time()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1.0:
                return False
        self._tokens -= 1.0
        return True


@dataclass(slots=True)
class ConnectionState:
    """What the server knows about one open TCP connection."""

    client: tuple[str, int] | None
    bucket: TokenBucket | None
    opened_at: float = 0.0
    requests: int = 0  # complete requests received (a WebSocket upgrade counts as one)

    def try_take(self) -> bool:
        """Charge one call against this connection's rate limit."""
        return self.bucket is None or self.bucket.try_take()


@dataclass(slots=True)
class ConnectionStats:
    """Counters the node's metrics read: connections open now, refused and closed by reason."""

    open: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    closed_by_server: Counter[str] = field(default_factory=Counter)
    max_connections: int = 0
    max_connections_per_ip: int = 0


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConnectionRegistry:
    """Open connections keyed by the client's (host, port), as hypercorn reports it in the
    ASGI scope, so that every request on a keep-alive connection shares one bucket; and the
    count per host, for the per-address cap."""

    def __init__(self, max_connections: int, rate_per_second: float | None, burst: float | None,
                 max_per_ip: int | None = None, stats: ConnectionStats | None = None) -> None:
        self.max_connections = max_connections
        self.max_per_ip = max_connections if max_per_ip is None else max_per_ip
        # Slots remote addresses cannot take (see the module docstring).
        self.loopback_reserve = max_connections // 10
        # Slots run low when at most this many are free; idle connections then close sooner.
        self.low_water = max(1, max_connections // 4)
        self._rate = rate_per_second
        self._burst = burst if burst is not None else rate_per_second
        self._open: dict[tuple[str, int] | None, ConnectionState] = {}
        self._per_host: Counter[str] = Counter()
        self._low = trio.Event()
        self.stats = stats if stats is not None else ConnectionStats()
        self.stats.max_connections = max_connections
        self.stats.max_connections_per_ip = self.max_per_ip

    def __len__(self) -> int:
        return len(self._open)

    def is_full(self) -> bool:
        """Whether every slot is taken."""
        return len(self._open) >= self.max_connections

    def refusal(self, client: tuple[str, int] | None) -> str | None:
        """Why a new connection from `client` must be refused (counted as such), or None."""
        host = None if client is None else client[0]
        reason = None
        remote_full = (
            len(self._open) >= self.max_connections - self.loopback_reserve
            and host is not None and not is_loopback(host)
        )
        if self.is_full() or remote_full:
            reason = REFUSED_FULL
        elif host is not None and self._per_host[host] >= self.max_per_ip:
            reason = REFUSED_PER_IP
        if reason is not None:
            self.stats.refused[reason] += 1
        return reason

    @property
    def slots_low(self) -> bool:
        return self.max_connections - len(self._open) <= self.low_water

    async def wait_slots_low(self) -> None:
        """Return once slots run low (at once if they already do)."""
        await self._low.wait()

    def new_state(self, client: tuple[str, int] | None) -> ConnectionState:
        """A state not (yet) in the table."""
        bucket = None
        if self._rate is not None and self._burst is not None:
            bucket = TokenBucket(self._rate, self._burst)
        return ConnectionState(client, bucket, trio.current_time())

    def open(self, client: tuple[str, int] | None) -> ConnectionState:
        """Count a connection the gate accepted."""
        state = self.new_state(client)
        self._open[client] = state
        if client is not None:
            self._per_host[client[0]] += 1
        self._update()
        return state

    def close(self, client: tuple[str, int] | None) -> None:
        """Forget a closed connection."""
        if self._open.pop(client, None) is not None and client is not None:
            self._per_host[client[0]] -= 1
            if self._per_host[client[0]] <= 0:
                del self._per_host[client[0]]
        self._update()

    def on_closed_by_server(self, reason: str) -> None:
        self.stats.closed_by_server[reason] += 1

    def _update(self) -> None:
        self.stats.open = len(self._open)
        if self.slots_low:
            self._low.set()
        elif self._low.is_set():
            self._low = trio.Event()

    def get(self, client: tuple[str, int] | None) -> ConnectionState:
        """The state of the connection a request came on; a fresh, uncounted one for a client
        the gate never saw (unix sockets, a test driving the ASGI app directly)."""
        state = self._open.get(client)
        if state is None:
            state = self.new_state(client)
        return state
