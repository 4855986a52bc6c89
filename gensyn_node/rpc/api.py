"""The registry of RPC methods and subscriptions, and the binding of JSON params to a handler's
Python parameters. The node registers its `system_*`, `chain_*`, `author_*` handlers here; the
server (server.py, websocket.py) only dispatches through it, so this file knows nothing of HTTP.

Binding is computed once per handler at registration: positional-or-keyword parameters in
order, which are required, whether `*args` takes the rest, and a cheap JSON type check for
plain annotations (`int`, `str`, `bool`, `float`, `list`, `dict`, their `| None`).
"""

from __future__ import annotations

import inspect
import logging
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gensyn_node.rpc.errors import InvalidParams, RpcRegistrationError

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]
SendResult = Callable[[Any], Awaitable[None]]
OnCall = Callable[[str, float], None]

# JSON value types each plain annotation accepts. bool is an int in Python but not in JSON.
_JSON_TYPES: dict[Any, tuple[type, ...]] = {
    int: (int,),
    float: (float, int),
    str: (str,),
    bool: (bool,),
    list: (list,),
    dict: (dict,),
    type(None): (type(None),),
}
_JSON_NAMES = {int: "int", float: "number", str: "str", bool: "bool", list: "list", dict: "object"}


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return _JSON_NAMES.get(type(value), type(value).__name__)


@dataclass(frozen=True, slots=True)
class _ParamCheck:
    """Which JSON types one parameter accepts; `None` accepts anything."""

    name: str
    accepts: tuple[type, ...] | None
    expected: str


def _check_for(name: str, annotation: Any) -> _ParamCheck:
    accepts: list[type] = []
    names: list[str] = []
    origin = typing.get_origin(annotation)
    members = typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else (annotation,)
    for member in members:
        member_origin = typing.get_origin(member) or member
        if member_origin not in _JSON_TYPES:
            return _ParamCheck(name, None, "any")
        accepts.extend(_JSON_TYPES[member_origin])
        names.append("null" if member_origin is type(None) else _JSON_NAMES[member_origin])
    return _ParamCheck(name, tuple(accepts), " or ".join(names))


@dataclass(frozen=True, slots=True)
class ParamBinding:
    """How JSON params (an array or an object) become a handler's positional arguments."""

    names: tuple[str, ...]
    required: int
    variadic: bool
    checks: tuple[_ParamCheck, ...]
    defaults: tuple[Any, ...]

    def bind(self, params: Any) -> list[Any]:
        """Return the positional arguments, or raise InvalidParams with the reason."""
        if params is None:
            args: list[Any] = []
        elif isinstance(params, list):
            args = params
        elif isinstance(params, dict):
            args = self._from_names(params)
        else:
            raise InvalidParams("params must be an array or an object")
        count = len(args)
        if count < self.required or (count > len(self.names) and not self.variadic):
            raise InvalidParams(self._arity_reason(count))
        for index, (check, value) in enumerate(zip(self.checks, args)):
            if check.accepts is not None and not (
                isinstance(value, check.accepts) and (bool in check.accepts or not isinstance(value, bool))
            ):
                raise InvalidParams(
                    f"param {index} ({check.name}): expected {check.expected}, got {_json_type_name(value)}"
                )
        return args

    def _from_names(self, params: dict[str, Any]) -> list[Any]:
        unknown = sorted(set(params) - set(self.names))
        if unknown:
            raise InvalidParams(f"unknown param name(s): {', '.join(unknown)}")
        args: list[Any] = []
        for index, name in enumerate(self.names):
            if name in params:
                args.append(params[name])
            elif index < self.required:
                raise InvalidParams(f"missing required param: {name}")
            else:
                args.append(self.defaults[index - self.required])
        return args

    def _arity_reason(self, count: int) -> str:
        if self.variadic:
            return f"expected at least {self.required} param(s), got {count}"
        if self.required == len(self.names):
            return f"expected {self.required} param(s), got {count}"
        return f"expected {self.required} to {len(self.names)} param(s), got {count}"


def compute_binding(handler: Callable[..., Any], *, skip: int = 0) -> ParamBinding:
    """Read the handler's signature once; `skip` leading parameters are supplied by the server
    (the `send` callback of a callback-style subscription)."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError) as exc:
        raise RpcRegistrationError(f"cannot read the signature of {handler!r}: {exc}") from exc
    try:
        hints = typing.get_type_hints(handler)
    except (NameError, TypeError, AttributeError):  # unresolvable annotations: no type check
        hints = {}
    params = list(signature.parameters.values())[skip:]
    names: list[str] = []
    checks: list[_ParamCheck] = []
    defaults: list[Any] = []
    required = 0
    variadic = False
    for param in params:
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            names.append(param.name)
            checks.append(_check_for(param.name, hints.get(param.name, Any)))
            if param.default is param.empty:
                if defaults:
                    raise RpcRegistrationError(f"{handler!r}: required param after an optional one")
                required += 1
            else:
                defaults.append(param.default)
        elif param.kind is param.VAR_POSITIONAL:
            variadic = True
        elif param.kind is param.KEYWORD_ONLY and param.default is param.empty:
            raise RpcRegistrationError(f"{handler!r}: keyword-only param {param.name} needs a default")
    return ParamBinding(tuple(names), required, variadic, tuple(checks), tuple(defaults))


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One request/response method."""

    name: str
    handler: Handler
    binding: ParamBinding
    unsafe: bool


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """One subscription: its three method names and how its handler produces results.

    `kind` is "generator" (an async generator function: `async def h(*params): yield result`),
    "stream" (a coroutine function returning an async iterable: it runs before the reply, so an
    RpcError it raises, e.g. 1010 for a rejected extrinsic, answers the subscribe call), or
    "callback" (`async def h(send, *params)`, awaiting `send(result)` per notification).
    """

    subscribe: str
    unsubscribe: str
    notification: str
    handler: Callable[..., Any]
    binding: ParamBinding
    kind: str
    unsafe: bool


BulkGet = Callable[[str], Awaitable["bytes | None"]]
BulkPut = Callable[[str, dict[str, str], bytes], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class BulkRoute:
    """Raw bytes over plain HTTP beside JSON-RPC, for payloads that 0x-hex in JSON would double
    and slow (checkpoint blobs, megabytes each): `GET {prefix}{key}` answers `get(key)`'s bytes
    (404 when None), `PUT {prefix}{key}?a=b` stores the body through `put(key, query, body)` and
    answers its result as a JSON-RPC response. Handlers raise RpcError as methods do; `name` is
    what the latency histogram and the logs call the route; a PUT obeys `put_unsafe` as an
    unsafe method does."""

    prefix: str
    name: str
    get: BulkGet
    put: BulkPut | None = None
    put_unsafe: bool = True


class RpcApi:
    """The methods and subscriptions one server serves. `on_call(method, seconds)` is called
    after every call of a registered method (errors included) to feed a latency histogram."""

    def __init__(self, *, on_call: OnCall | None = None) -> None:
        self.on_call = on_call
        self.methods: dict[str, MethodSpec] = {}
        self.subscriptions: dict[str, SubscriptionSpec] = {}
        self.unsubscriptions: dict[str, SubscriptionSpec] = {}
        self.bulk_routes: list[BulkRoute] = []
        self._names: set[str] = set()
        self.method("rpc_methods", self._rpc_methods)

    def method(self, name: str, handler: Handler, *, unsafe: bool = False) -> None:
        """Register `async def handler(*params) -> result` under `name`."""
        if not inspect.iscoroutinefunction(handler):
            raise RpcRegistrationError(f"{name}: handler must be an async function")
        self._claim(name)
        self.methods[name] = MethodSpec(name, handler, compute_binding(handler), unsafe)

    def subscription(
        self,
        subscribe_name: str,
        unsubscribe_name: str,
        notification_name: str,
        handler: Callable[..., Any],
        *,
        callback: bool = False,
        unsafe: bool = False,
    ) -> None:
        """Register a subscription (see SubscriptionSpec for the three handler forms; pass
        `callback=True` for `async def handler(send, *params)`). The server awaits each
        notification's send, so a slow client slows only its own stream; a source shared by
        many subscribers should give each a bounded channel and drop it on overflow."""
        if callback:
            if not inspect.iscoroutinefunction(handler):
                raise RpcRegistrationError(f"{subscribe_name}: callback handler must be an async function")
            kind, skip = "callback", 1
        elif inspect.isasyncgenfunction(handler):
            kind, skip = "generator", 0
        elif inspect.iscoroutinefunction(handler):
            kind, skip = "stream", 0
        else:
            raise RpcRegistrationError(
                f"{subscribe_name}: handler must be an async generator or an async function"
            )
        binding = compute_binding(handler, skip=skip)
        spec = SubscriptionSpec(
            subscribe_name, unsubscribe_name, notification_name, handler, binding, kind, unsafe
        )
        self._claim(subscribe_name)
        self._claim(unsubscribe_name)
        self.subscriptions[subscribe_name] = spec
        self.unsubscriptions[unsubscribe_name] = spec

    def bulk_route(self, route: BulkRoute) -> None:
        """Serve `route` over HTTP beside the JSON-RPC endpoint (see BulkRoute)."""
        if not route.prefix.startswith("/") or not route.prefix.endswith("/") or route.prefix == "/":
            raise RpcRegistrationError(f"bulk route prefix {route.prefix!r} must be /name/")
        if any(r.prefix == route.prefix for r in self.bulk_routes):
            raise RpcRegistrationError(f"bulk route {route.prefix!r} is already registered")
        self.bulk_routes.append(route)

    def method_names(self) -> list[str]:
        """Every callable name, sorted (what `rpc_methods` lists, as Substrate does)."""
        return sorted(self._names)

    def _claim(self, name: str) -> None:
        if not name or name in self._names:
            raise RpcRegistrationError(f"method name {name!r} is empty or already registered")
        self._names.add(name)

    async def _rpc_methods(self) -> dict[str, list[str]]:
        return {"methods": self.method_names()}
