"""RpcApi registration and the binding of JSON params to handler parameters (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from gensyn_node.rpc import InvalidParams, RpcApi, RpcRegistrationError
from gensyn_node.rpc.api import compute_binding


async def optional_hash(at: str | None = None, count: float = 1.0, *rest: Any) -> None:
    return None


def test_binding_accepts_json_types_and_fills_defaults() -> None:
    binding = compute_binding(optional_hash)
    assert binding.bind(None) == []
    assert binding.bind([None]) == [None]
    assert binding.bind(["0xab", 2]) == ["0xab", 2]  # an int is a JSON number
    assert binding.bind(["0xab", 2.5, "x", "y"]) == ["0xab", 2.5, "x", "y"]  # *rest takes the tail
    assert binding.bind({"count": 3}) == [None, 3]
    with pytest.raises(InvalidParams, match="expected str or null, got int"):
        binding.bind([5])
    with pytest.raises(InvalidParams, match="expected number, got bool"):
        binding.bind(["0xab", True])


def test_registration_rejects_unservable_handlers() -> None:
    api = RpcApi()

    def not_async() -> None:
        return None

    async def keyword_only(*, must: int) -> None:
        return None

    async def fine() -> None:
        return None

    with pytest.raises(RpcRegistrationError):
        api.method("x_sync", not_async)  # type: ignore[arg-type]
    with pytest.raises(RpcRegistrationError):
        api.method("x_kw", keyword_only)
    api.method("x_fine", fine)
    with pytest.raises(RpcRegistrationError):
        api.method("x_fine", fine)
    with pytest.raises(RpcRegistrationError):
        api.subscription("x_sub", "x_fine", "x_note", fine)  # unsubscribe name already taken
    with pytest.raises(RpcRegistrationError):
        api.subscription("x_sub2", "x_unsub2", "x_note", not_async)


def test_subscription_kinds_are_recognised() -> None:
    api = RpcApi()

    async def generator(n: int) -> AsyncIterator[int]:
        yield n

    async def stream(n: int) -> AsyncIterator[int]:
        return generator(n)

    async def callback(send: Any, n: int) -> None:
        await send(n)

    api.subscription("a_sub", "a_unsub", "a_note", generator)
    api.subscription("b_sub", "b_unsub", "b_note", stream)
    api.subscription("c_sub", "c_unsub", "c_note", callback, callback=True)
    kinds = {name: spec.kind for name, spec in api.subscriptions.items()}
    assert kinds == {"a_sub": "generator", "b_sub": "stream", "c_sub": "callback"}
    assert api.subscriptions["c_sub"].binding.names == ("n",)  # `send` is the server's
    names = trio.run(api.methods["rpc_methods"].handler)["methods"]
    assert names == sorted(["rpc_methods", "a_sub", "a_unsub", "b_sub", "b_unsub", "c_sub", "c_unsub"])
