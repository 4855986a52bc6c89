"""The JSON-RPC server: HTTP POST and WebSocket on one port, inside the caller's trio nursery.

Data path: our own listening socket (bound without SO_REUSEPORT, so a busy port is an error,
not a silent second listener) -> the accept gate (connection limit and per-address cap, HTTP
503 beyond them, the per-connection state in limits.py) -> hypercorn's trio connection handler
(HTTP/1.1 and WebSocket parsing, keep-alive), with our timeouts -> the raw ASGI app below ->
dispatch.py.

We drive hypercorn's `TCPServer` ourselves instead of `hypercorn.trio.serve`, because `serve`
binds its own SO_REUSEPORT sockets and gives no hook where a connection opens and closes, which
the connection limits and the per-connection rate limit need. The ASGI app is a plain function
rather than Starlette: one endpoint, and no middleware on a path measured in microseconds.

A connection holds its slot from accept until its socket closes, whoever closes it:
- the peer: the slot is free at once (hypercorn alone would hold it until its keep-alive timer);
- the server, when no complete first request came within `handshake_timeout_s` (slowloris, an
  idle flood), when an HTTP keep-alive connection idled for `keep_alive_timeout_s`, or for only
  `low_slots_idle_s` while slots run low. A WebSocket is never idle in this sense: it stays open,
  and its subscriptions live, until the client or the server's shutdown closes it.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import time
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import parse_socket_addr, wrap_app

from gensyn_node.rpc import errors as E
from gensyn_node.rpc.api import BulkRoute, RpcApi
from gensyn_node.rpc.dispatch import Dispatcher, encode_error
from gensyn_node.rpc.errors import RpcError, RpcPortBusy
from gensyn_node.rpc.limits import (
    CLOSED_BODY,
    CLOSED_HANDSHAKE,
    CLOSED_KEEP_ALIVE,
    CLOSED_LOW_SLOTS,
    REFUSED_PER_IP,
    ConnectionRegistry,
    ConnectionState,
    ConnectionStats,
)
from gensyn_node.rpc.websocket import ASGIReceive, ASGISend, WsSession

log = logging.getLogger(__name__)

RPC_METHODS_MODES = ("safe", "unsafe", "auto")

# A refused connection gets this long to send its request head and to read our 503.
_REFUSE_TIMEOUT_S = 1.0
_REFUSE_READ_LIMIT = 16 * 1024

_JSON_HEADERS = [(b"content-type", b"application/json; charset=utf-8")]
# The unread rest of a refused body makes the connection unusable: tell the client so.
_CLOSE_HEADERS = _JSON_HEADERS + [(b"connection", b"close")]
_BYTES_HEADERS = [(b"content-type", b"application/octet-stream")]


@dataclass(frozen=True, slots=True)
class RpcConfig:
    """Where and under which limits the RPC server listens.

    `rpc_methods_mode`: "safe" refuses methods registered `unsafe=True` (Substrate's -32601
    "RPC call is unsafe to be called externally"), "unsafe" allows them, "auto" allows them only
    while bound to a loopback address. Rate limit: `rate_limit_per_second` calls per connection,
    `rate_limit_burst` saved up (defaults to the rate); None switches it off. Connections: at
    most `max_connections` open, `max_connections_per_ip` of them from one address (see
    limits.py for loopback); the timeouts are described in the module docstring.
    """

    host: str = "127.0.0.1"
    port: int = 9944
    external: bool = False
    max_request_bytes: int = 10 * 1024 * 1024
    max_connections: int = 100
    max_connections_per_ip: int = 16
    max_subscriptions_per_connection: int = 1024
    rate_limit_per_second: float | None = 10_000.0
    rate_limit_burst: float | None = None
    max_batch_len: int = 1000
    max_in_flight_per_connection: int = 64
    rpc_methods_mode: str = "safe"
    keep_alive_timeout_s: float = 15.0
    request_body_timeout_s: float = 30.0
    handshake_timeout_s: float = 5.0
    low_slots_idle_s: float = 1.0
    backlog: int = 128

    def __post_init__(self) -> None:
        if self.rpc_methods_mode not in RPC_METHODS_MODES:
            raise ValueError(f"rpc_methods_mode must be one of {RPC_METHODS_MODES}, not {self.rpc_methods_mode!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        for name in (
            "max_request_bytes", "max_connections", "max_connections_per_ip", "max_subscriptions_per_connection",
            "max_batch_len", "max_in_flight_per_connection", "backlog",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if min(self.keep_alive_timeout_s, self.request_body_timeout_s, self.handshake_timeout_s,
               self.low_slots_idle_s) <= 0:
            raise ValueError("timeouts must be positive")
        if self.rate_limit_per_second is not None and self.rate_limit_per_second <= 0:
            raise ValueError("rate_limit_per_second must be positive or None")

    @property
    def bind_host(self) -> str:
        """The address to bind: everything when `external`, else `host`."""
        return "0.0.0.0" if self.external else self.host

    @property
    def allows_unsafe(self) -> bool:
        """Whether methods registered `unsafe=True` may be called."""
        if self.rpc_methods_mode == "auto":
            return not self.external and self.host in ("127.0.0.1", "localhost", "::1")
        return self.rpc_methods_mode == "unsafe"


def bind_rpc_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening, non-blocking socket; RpcPortBusy if the port is taken. SO_REUSEADDR only
    lets us rebind over TIME_WAIT; without SO_REUSEPORT a live listener makes bind fail."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise RpcPortBusy(host, port, exc.strerror or str(exc)) from exc
        raise
    return sock


def _hypercorn_config(config: RpcConfig) -> HypercornConfig:
    hc = HypercornConfig()
    hc.keep_alive_timeout = config.keep_alive_timeout_s
    # One keep-alive connection may carry any number of requests (the rate limit bounds them).
    hc.keep_alive_max_requests = 2**62
    # Hypercorn closes the socket (1009) above its own limit; below it we answer -32007 ourselves.
    hc.websocket_max_message_size = 2 * config.max_request_bytes + 64 * 1024
    hc.include_server_header = False
    hc.accesslog = None
    return hc


def _enable_keepalive(stream: trio.SocketStream) -> None:
    """TCP keepalive (~2 min on Linux) so that a peer that vanished without a FIN (a crashed
    host, a dropped NAT entry) does not hold a connection slot and its subscriptions forever."""
    try:
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
            if hasattr(socket, name):
                stream.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        log.debug("rpc could not enable tcp keepalive", exc_info=True)


async def _send_http(send: ASGISend, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": headers + [(b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


class _Connection(TCPServer):
    """hypercorn's handler of one connection, with the slot released when the peer closes and
    with our idle timeouts (see the module docstring)."""

    def __init__(self, server: RpcServer, state: ConnectionState, stream: trio.SocketStream) -> None:
        super().__init__(server._asgi, server._hypercorn, server._context, {}, stream)  # type: ignore[arg-type]
        self.rpc = server
        self.conn = state

    async def _read_data(self) -> None:
        await super()._read_data()
        # The peer is gone: stop the idle timer, which would otherwise hold the connection's
        # task group, and so its slot, open until it fired.
        await self.idle_task.stop()

    async def _idle_timeout(self) -> None:
        """Runs while the connection has no request in progress (hypercorn starts it at accept
        and after each response, and stops it when a request head arrives); closes the
        connection when its allowance is spent."""
        config = self.rpc.config
        registry = self.rpc.registry
        idle_since = trio.current_time()
        if self.conn.requests == 0:
            deadline, reason = self.conn.opened_at + config.handshake_timeout_s, CLOSED_HANDSHAKE
        else:
            deadline, reason = idle_since + config.keep_alive_timeout_s, CLOSED_KEEP_ALIVE
        with trio.move_on_at(deadline) as timer:
            await registry.wait_slots_low()
        if not timer.cancelled_caught and idle_since + config.low_slots_idle_s < deadline:
            reason = CLOSED_LOW_SLOTS
            await trio.sleep_until(idle_since + config.low_slots_idle_s)
        else:
            await trio.sleep_until(deadline)
        registry.on_closed_by_server(reason)
        log.debug("rpc connection closed by server reason=%s client=%s", reason, self.conn.client)
        with trio.CancelScope(shield=True):
            await self._initiate_server_close()


class RpcServer:
    """The ASGI app and the accept gate of one serve_rpc call."""

    def __init__(self, api: RpcApi, config: RpcConfig, stats: ConnectionStats | None = None) -> None:
        self.config = config
        self.api = api
        self.registry = ConnectionRegistry(
            config.max_connections, config.rate_limit_per_second, config.rate_limit_burst,
            config.max_connections_per_ip, stats,
        )
        self.dispatcher = Dispatcher(api, allow_unsafe=config.allows_unsafe, max_batch_len=config.max_batch_len)
        self._hypercorn = _hypercorn_config(config)
        self._asgi = wrap_app(self.app, self._hypercorn.wsgi_max_body_size, "asgi")
        self._context = WorkerContext(None)
        self._streams: set[trio.SocketStream] = set()
        self._refusing = 0
        self._oversize_reply = encode_error(
            None, E.OVERSIZED_REQUEST, E.OVERSIZED_REQUEST_MSG, f"Exceeded max limit of {config.max_request_bytes}"
        ).encode()
        self._timeout_reply = encode_error(
            None, E.INVALID_REQUEST, E.INVALID_REQUEST_MSG,
            f"request not received in time (the first within {config.handshake_timeout_s} s of connecting, "
            f"a body within {config.request_body_timeout_s} s)",
        ).encode()

    async def handle_connection(self, stream: trio.SocketStream) -> None:
        """The accept gate: count the connection, or refuse it with 503 when the server is full
        or the client's address holds its share."""
        try:
            sock = stream.socket
            client = parse_socket_addr(sock.family, sock.getpeername())
        except OSError:
            await stream.aclose()
            return
        refusal = self.registry.refusal(client)
        if refusal is not None:
            log.debug("rpc connection refused reason=%s client=%s open=%d", refusal, client, len(self.registry))
            await self._refuse(stream, refusal)
            return
        _enable_keepalive(stream)
        state = self.registry.open(client)
        self._streams.add(stream)
        try:
            await _Connection(self, state, stream).run()
        except Exception:  # the edge: one connection must not end the server
            log.warning("rpc connection failed client=%s", client, exc_info=True)
        finally:
            self._streams.discard(stream)
            self.registry.close(client)

    async def abort_connections_on_cancel(self) -> None:
        """Wait; once cancelled, close every socket. Hypercorn shields its writes, so without
        this a client that stopped reading would hold up the server's shutdown forever."""
        try:
            await trio.sleep_forever()
        finally:
            for stream in list(self._streams):
                stream.socket.close()

    async def _refuse(self, stream: trio.SocketStream, reason: str) -> None:
        if self._refusing >= self.config.max_connections:  # a flood: do not even answer
            await stream.aclose()
            return
        self._refusing += 1
        try:
            detail = "Too many connections from this address" if reason == REFUSED_PER_IP else "Too many connections"
            body = encode_error(None, E.SERVER_IS_BUSY, E.SERVER_IS_BUSY_MSG, detail).encode()
            head = (
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
            )
            with trio.move_on_after(_REFUSE_TIMEOUT_S):
                # Read the request head first, so that closing does not reset the connection
                # before the client has read our answer.
                seen = b""
                while b"\r\n\r\n" not in seen and len(seen) < _REFUSE_READ_LIMIT:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    seen += chunk
                await stream.send_all(head + body)
                await stream.send_eof()
                while await stream.receive_some(4096):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self._refusing -= 1
            await stream.aclose()

    async def app(self, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        """The ASGI entry point for every request and WebSocket on the port."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        state = self.registry.get(scope.get("client"))
        path = scope.get("path", "/")
        for route in self.api.bulk_routes:
            if path.startswith(route.prefix):
                await self._bulk(route, path[len(route.prefix):], scope, receive, send, state)
                return
        if scope["method"] != "POST":
            state.requests += 1
            body = encode_error(None, E.INVALID_REQUEST, E.INVALID_REQUEST_MSG, "use POST").encode()
            await _send_http(send, 405, body, _JSON_HEADERS + [(b"allow", b"POST")])
            return
        payload = await self._read_body(scope, receive, state)
        if isinstance(payload, int):
            if payload == 408:
                reason = CLOSED_HANDSHAKE if state.requests == 0 else CLOSED_BODY
                self.registry.on_closed_by_server(reason)
                log.debug("rpc connection closed by server reason=%s client=%s", reason, state.client)
            if payload:
                reply = self._oversize_reply if payload == 413 else self._timeout_reply
                await _send_http(send, payload, reply, _CLOSE_HEADERS)
            return
        state.requests += 1
        reply, _ = await self.dispatcher.handle(payload, state, None)
        await _send_http(send, 200, b"" if reply is None else reply.encode(), _JSON_HEADERS)

    async def _bulk(self, route: BulkRoute, key: str, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend,
                    state: ConnectionState) -> None:
        """GET or PUT of raw bytes on a bulk route (see api.BulkRoute), under the connection's
        rate limit and body bounds as a JSON-RPC call is; errors answer as JSON-RPC error objects
        with a 4xx status."""
        method = scope["method"]
        allowed = b"GET, PUT" if route.put is not None else b"GET"
        body = b""
        if method == "PUT" and route.put is not None:
            payload = await self._read_body(scope, receive, state)
            if isinstance(payload, int):
                if payload:
                    reply = self._oversize_reply if payload == 413 else self._timeout_reply
                    await _send_http(send, payload, reply, _CLOSE_HEADERS)
                return
            body = payload
        state.requests += 1
        if method not in ("GET", "PUT") or (method == "PUT" and route.put is None):
            reply = encode_error(None, E.INVALID_REQUEST, E.INVALID_REQUEST_MSG, f"use {allowed.decode()}").encode()
            await _send_http(send, 405, reply, _JSON_HEADERS + [(b"allow", allowed)])
            return
        if not state.try_take():
            await _send_http(send, 429, encode_error(None, E.RATE_LIMITED, E.RATE_LIMITED_MSG).encode(), _JSON_HEADERS)
            return
        if method == "PUT" and route.put_unsafe and not self.config.allows_unsafe:
            reply = encode_error(None, E.METHOD_NOT_FOUND, E.UNSAFE_METHOD_MSG).encode()
            await _send_http(send, 403, reply, _JSON_HEADERS)
            return
        started = time.perf_counter()
        try:
            if method == "GET":
                data = await route.get(key)
                if data is None:
                    reply = encode_error(None, E.NOT_FOUND, E.NOT_FOUND_MSG, f"{route.name}: no {key}").encode()
                    await _send_http(send, 404, reply, _JSON_HEADERS)
                else:
                    await _send_http(send, 200, data, _BYTES_HEADERS)
                return
            query = _parse_query(scope.get("query_string", b""))
            result = await route.put(key, query, body)  # type: ignore[misc]
            reply = '{"jsonrpc":"2.0","result":' + json.dumps(result) + ',"id":null}'
            await _send_http(send, 200, reply.encode(), _JSON_HEADERS)
        except RpcError as exc:
            await _send_http(send, 400, encode_error(None, exc.code, exc.message, exc.data).encode(), _JSON_HEADERS)
        except Exception:  # the edge: one request must not end the server
            log.warning("rpc bulk route failed route=%s method=%s", route.name, method, exc_info=True)
            reply = encode_error(None, E.INTERNAL_ERROR, E.INTERNAL_ERROR_MSG).encode()
            await _send_http(send, 500, reply, _JSON_HEADERS)
        finally:
            self.dispatcher.report_call(route.name, started)

    async def _read_body(self, scope: dict[str, Any], receive: ASGIReceive, state: ConnectionState) -> bytes | int:
        """The request body, or the status to refuse it with (413 too big, 408 too slow: a
        client trickling a body would otherwise hold a connection slot forever; the first
        request must be complete within the handshake timeout of the accept), or 0 when the
        client went away."""
        deadline = trio.current_time() + self.config.request_body_timeout_s
        if state.requests == 0:
            deadline = min(deadline, state.opened_at + self.config.handshake_timeout_s)
        limit = self.config.max_request_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    return 413
                break
        parts: list[bytes] = []
        size = 0
        with trio.move_on_at(deadline):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return 0
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return 413
                parts.append(chunk)
                if not message.get("more_body"):
                    return parts[0] if len(parts) == 1 else b"".join(parts)
        return 408

    async def _websocket(self, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        state = self.registry.get(scope.get("client"))
        state.requests += 1
        config = self.config
        session = WsSession(
            self.dispatcher,
            state,
            send,
            max_request_bytes=config.max_request_bytes,
            max_subscriptions=config.max_subscriptions_per_connection,
            max_in_flight=config.max_in_flight_per_connection,
        )
        try:
            await session.run(receive)
        except Exception:  # the edge: log, close this socket, keep serving
            log.warning("rpc websocket session failed client=%s", scope.get("client"), exc_info=True)


def _parse_query(raw: bytes) -> dict[str, str]:
    """`a=1&b=0x..` as a dict; RpcError on a repeated or undecodable key."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise RpcError(E.INVALID_PARAMS, E.INVALID_PARAMS_MSG, "malformed query string") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise RpcError(E.INVALID_PARAMS, E.INVALID_PARAMS_MSG, f"query parameter {name!r} given twice")
        out[name] = value
    return out


async def _lifespan(receive: ASGIReceive, send: ASGISend) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def serve_rpc(
    api: RpcApi, config: RpcConfig, *, stats: ConnectionStats | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `api` until cancelled; `task_status.started(port)` once listening (the real port
    when `config.port` is 0). Raises RpcPortBusy, before starting, if the port is taken.
    `stats`, when given, is kept up to date with the connections (the node's metrics read it)."""
    host = config.bind_host
    sock = bind_rpc_socket(host, config.port, config.backlog)
    try:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    server = RpcServer(api, config, stats)
    log.info(
        "rpc listening host=%s port=%d unsafe=%s max_connections=%d max_connections_per_ip=%d",
        host, port, config.allows_unsafe, config.max_connections, config.max_connections_per_ip,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.abort_connections_on_cancel)
        await nursery.start(partial(trio.serve_listeners, server.handle_connection, [listener], handler_nursery=nursery))
        task_status.started(port)
