"""Per-connection accounting for the RPC server: the token bucket that limits calls per second
and the table of open TCP connections (HTTP keep-alive or WebSocket) that the accept gate
fills and the ASGI app reads by the client's address. First step of the RPC data path: a
connection is counted here before any byte of it is parsed."""

from __future__ import annotations

from dataclasses import dataclass

import trio


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

    def try_take(self) -> bool:
        """Charge one call against this connection's rate limit."""
        return self.bucket is None or self.bucket.try_take()


class ConnectionRegistry:
    """Open connections keyed by the client's (host, port), as hypercorn reports it in the
    ASGI scope, so that every request on a keep-alive connection shares one bucket."""

    def __init__(self, max_connections: int, rate_per_second: float | None, burst: float | None) -> None:
        self.max_connections = max_connections
        self._rate = rate_per_second
        self._burst = burst if burst is not None else rate_per_second
        self._open: dict[tuple[str, int] | None, ConnectionState] = {}

    def __len__(self) -> int:
        return len(self._open)

    def is_full(self) -> bool:
        """Whether a new connection must be refused."""
        return len(self._open) >= self.max_connections

    def new_state(self, client: tuple[str, int] | None) -> ConnectionState:
        """A state not (yet) in the table."""
        bucket = None
        if self._rate is not None and self._burst is not None:
            bucket = TokenBucket(self._rate, self._burst)
        return ConnectionState(client, bucket)

    def open(self, client: tuple[str, int] | None) -> ConnectionState:
        """Count a connection the gate accepted."""
        state = self.new_state(client)
        self._open[client] = state
        return state

    def close(self, client: tuple[str, int] | None) -> None:
        """Forget a closed connection."""
        self._open.pop(client, None)

    def get(self, client: tuple[str, int] | None) -> ConnectionState:
        """The state of the connection a request came on; a fresh, uncounted one for a client
        the gate never saw (unix sockets, a test driving the ASGI app directly)."""
        state = self._open.get(client)
        if state is None:
            state = self.new_state(client)
        return state
