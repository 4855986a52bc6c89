"""The client-facing state RPC that Substrate clients need beyond the basics (methods.py):
metadata, runtime API calls, batched and paged storage reads, runtime version and storage
subscriptions. Registered by `build_api` with `register_substrate_api(api, node)`.

Data path: a client (py-substrate-interface, polkadot.js) asks for `state_getMetadata` at
connect, reads storage with `state_getStorage` / `state_queryStorageAt`, asks the runtime
through `state_call` (`AccountNonceApi_account_nonce`, `TransactionPaymentApi_query_info`,
`Metadata_metadata_at_version`), and follows upgrades with `state_subscribeRuntimeVersion`.

Every answer is computed against the state of one block (`at`, or the best block). Unknown
blocks and malformed input answer with Substrate's error codes (4003 for a client error, 4002
for a page over the limit, -32602 for bad params), never with a crash.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gensyn_node.rpc.api import RpcApi
from gensyn_node.rpc.errors import InvalidParams, RpcError
from gensyn_node.rpc.node import RpcNode
from gensyn_node.rpc.shapes import decode_hex, encode_hex, runtime_version_json
from runtime.block import Header
from runtime.codec.errors import CodecError
from runtime.codec.scale import Vec, decode_compact, u32
from runtime.executive import get_params, get_state_runtime
from runtime.extrinsic import decode_extrinsic
from runtime.metadata import SUPPORTED_METADATA_VERSIONS, encode_opaque, get_state_metadata
from runtime.pallets.system.account import get_account
from runtime.pallets.transaction_payment.fees import compute_fee
from runtime.storage import OverlayState
from runtime.types import DispatchClass, Weight
from runtime.version import Runtime, UnknownRuntime

log = logging.getLogger(__name__)

CLIENT_ERROR = 4003  # Substrate's state errors: BASE_ERROR (4000) + 3
INVALID_COUNT = 4002  # BASE_ERROR + 2
MAX_KEYS_PAGED = 1000  # Substrate's STORAGE_KEYS_PAGED_MAX_COUNT
MAX_QUERY_KEYS = 1000
_U32_VEC = Vec(u32)


def client_error(reason: str) -> RpcError:
    """Substrate's "Client error: ..." (code 4003), the answer to anything the state cannot serve."""
    return RpcError(CLIENT_ERROR, f"Client error: {reason}")


def execution_failed(reason: str) -> RpcError:
    return client_error(f"Execution failed: {reason}")


# --- runtime API calls (state_call) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a runtime API call sees: the state of one block and the runtime in force there."""

    state: OverlayState
    runtime: Runtime
    header: Header


def _expect_len(data: bytes, length: int, what: str) -> None:
    """Verify that the call's input is exactly `length` bytes."""
    if len(data) != length:
        raise execution_failed(f"Bad input data provided to {what}: expected {length} bytes, got {len(data)}")


def call_core_version(ctx: CallContext, data: bytes) -> bytes:
    return ctx.runtime.version_bytes


def _metadata(ctx: CallContext) -> bytes:
    return get_state_metadata(ctx.state)


def call_metadata(ctx: CallContext, data: bytes) -> bytes:
    """`Metadata_metadata`: OpaqueMetadata, i.e. the metadata bytes behind a compact length."""
    return encode_opaque(_metadata(ctx))


def call_metadata_versions(ctx: CallContext, data: bytes) -> bytes:
    return _U32_VEC.encode(list(SUPPORTED_METADATA_VERSIONS))


def call_metadata_at_version(ctx: CallContext, data: bytes) -> bytes:
    """`Metadata_metadata_at_version(u32)`: Option<OpaqueMetadata>, None for a version we lack."""
    _expect_len(data, 4, "metadata_at_version")
    version = int.from_bytes(data, "little")
    if version not in SUPPORTED_METADATA_VERSIONS:
        return b"\x00"
    return b"\x01" + encode_opaque(_metadata(ctx))


def call_account_nonce(ctx: CallContext, data: bytes) -> bytes:
    """`AccountNonceApi_account_nonce(AccountId) -> u32`: the nonce in state (not the pool's)."""
    _expect_len(data, 32, "account_nonce")
    return get_account(ctx.state, data).nonce.to_bytes(4, "little")


def _split_extrinsic(data: bytes, what: str) -> tuple[bytes, bytes]:
    """An encoded extrinsic (compact length prefix and body) and what follows it."""
    try:
        length, pos = decode_compact(data, 0)
    except CodecError as exc:
        raise execution_failed(f"Bad input data provided to {what}: {exc}") from None
    end = pos + length
    if end > len(data):
        raise execution_failed(f"Bad input data provided to {what}: the extrinsic is truncated")
    return data[:end], data[end:]


@dataclass(frozen=True, slots=True)
class Priced:
    """What TransactionPaymentApi prices: the extrinsic's call, weight, declared length, and
    whether it pays at all (unsigned extrinsics and fee-free calls pay nothing, as Substrate's)."""

    call: Any
    weight: int
    length: int
    pays: bool


def _priced(ctx: CallContext, data: bytes, what: str) -> Priced:
    """Decode a TransactionPaymentApi call's input `(extrinsic, len: u32)`; the signature is not
    checked (clients ask with a dummy one)."""
    raw, rest = _split_extrinsic(data, what)
    _expect_len(rest, 4, what)
    try:
        xt = decode_extrinsic(raw, ctx.runtime)
    except CodecError as exc:
        raise execution_failed(f"Bad input data provided to {what}: {exc}") from None
    call = ctx.runtime.get_call(xt.call)
    return Priced(call, call.get_weight(xt.call[2]), int.from_bytes(rest, "little"), xt.is_signed and call.pays_fee)


def call_query_info(ctx: CallContext, data: bytes) -> bytes:
    """`TransactionPaymentApi_query_info(extrinsic, len)`: RuntimeDispatchInfo {weight, class,
    partial_fee}; the fee without tip, as Substrate's."""
    priced = _priced(ctx, data, "query_info")
    fee = compute_fee(get_params(ctx.state), priced.length, priced.weight, 0) if priced.pays else 0
    return b"".join((Weight.encode({"ref_time": priced.weight, "proof_size": 0}),
                     DispatchClass.encode(priced.call.dispatch_class), fee.to_bytes(16, "little")))


def call_query_fee_details(ctx: CallContext, data: bytes) -> bytes:
    """`TransactionPaymentApi_query_fee_details(extrinsic, len)`: FeeDetails {inclusion_fee:
    Option<{base_fee, len_fee, adjusted_weight_fee}>, tip}."""
    priced = _priced(ctx, data, "query_fee_details")
    if not priced.pays:
        return b"\x00" + bytes(16)
    params = get_params(ctx.state)
    parts = (params.base_fee, priced.length * params.length_fee,
             priced.weight * params.weight_fee_per_million // 1_000_000)
    return b"\x01" + b"".join(p.to_bytes(16, "little") for p in parts) + bytes(16)


RUNTIME_CALLS: dict[str, Callable[[CallContext, bytes], bytes]] = {
    "Core_version": call_core_version,
    "Metadata_metadata": call_metadata,
    "Metadata_metadata_versions": call_metadata_versions,
    "Metadata_metadata_at_version": call_metadata_at_version,
    "AccountNonceApi_account_nonce": call_account_nonce,
    "TransactionPaymentApi_query_info": call_query_info,
    "TransactionPaymentApi_query_fee_details": call_query_fee_details,
}


# --- the handlers -------------------------------------------------------------------------------------


def _hex_list(value: Any, what: str, limit: int) -> list[bytes]:
    if not isinstance(value, list):
        raise InvalidParams(f"{what}: expected a list of 0x-hex keys")
    if len(value) > limit:
        raise InvalidParams(f"{what}: at most {limit} keys")
    return [decode_hex(item, what) for item in value]


class SubstrateRpc:
    """Handlers bound to one node."""

    def __init__(self, node: RpcNode):
        self.node = node

    # helpers ------------------------------------------------------------------------------------

    def _header(self, at: str | None) -> Header:
        """The header of block `at` (the best block when None); 4003 for an unknown block."""
        if at is None:
            return self.node.store.best_header()
        header = self.node.store.get_header(decode_hex(at, "block hash", 32))
        if header is None:
            raise client_error(f"UnknownBlock: header not found for {at}")
        return header

    def _state(self, header: Header) -> OverlayState:
        trie = self.node.store.state_at(header.hash)
        return OverlayState(trie.get, trie.iter_prefix)

    def _context(self, header: Header) -> CallContext:
        state = self._state(header)
        try:
            runtime = get_state_runtime(state)
        except UnknownRuntime as exc:
            raise execution_failed(str(exc)) from None
        return CallContext(state, runtime, header)

    # state --------------------------------------------------------------------------------------

    async def state_getMetadata(self, at: str | None = None) -> str:
        return encode_hex(_metadata(self._context(self._header(at))))

    async def state_call(self, method: str, data: str, at: str | None = None) -> str:
        handler = RUNTIME_CALLS.get(method)
        raw = decode_hex(data, "call data")
        ctx = self._context(self._header(at))
        if handler is None:
            raise execution_failed(f"Other: Exported method {method} is not found")
        return encode_hex(handler(ctx, raw))

    async def state_queryStorageAt(self, keys: list, at: str | None = None) -> list[dict[str, Any]]:
        raw_keys = _hex_list(keys, "storage keys", MAX_QUERY_KEYS)
        header = self._header(at)
        state = self._state(header)
        return [_storage_set(header, ((key, state.get(key)) for key in raw_keys))]

    async def state_getKeysPaged(self, prefix: str | None, count: int, start_key: str | None = None,
                                 at: str | None = None) -> list[str]:
        """Up to `count` keys under `prefix`, in order, strictly after `start_key`."""
        if count < 0 or count > MAX_KEYS_PAGED:
            raise RpcError(INVALID_COUNT, f"count exceeds maximum value. value: {count}, max: {MAX_KEYS_PAGED}")
        raw_prefix = b"" if prefix is None else decode_hex(prefix, "prefix")
        start = None if start_key is None else decode_hex(start_key, "start key")
        trie = self.node.store.state_at(self._header(at).hash)
        keys: list[str] = []
        if count == 0:
            return keys
        for key, _value in trie.iter_prefix(raw_prefix, start_after=start):
            if start is not None and key <= start:
                continue
            keys.append(encode_hex(key))
            if len(keys) >= count:
                break
        return keys

    async def chain_getRuntimeVersion(self, at: str | None = None) -> dict[str, Any]:
        return runtime_version_json(self._context(self._header(at)).runtime)

    # subscriptions --------------------------------------------------------------------------------

    async def state_subscribeRuntimeVersion(self) -> AsyncIterator[dict[str, Any]]:
        """The version in force now, then again whenever a new best block changes it."""
        return self._follow_runtime_version()

    async def state_subscribeStorage(self, keys: list | None = None) -> AsyncIterator[dict[str, Any]]:
        """The keys' values now, then the keys whose value changed in each new best block.
        (A "stream" handler: bad params answer the subscribe call itself.)"""
        if keys is None:
            raise InvalidParams("subscribing to every storage key is not supported: pass a list of keys")
        return self._follow_storage(_hex_list(keys, "storage keys", MAX_QUERY_KEYS))

    async def _follow_runtime_version(self) -> AsyncIterator[dict[str, Any]]:
        receive = self.node.new_head.subscribe()
        async with receive:
            current = self._context(self.node.store.best_header()).runtime
            yield runtime_version_json(current)
            async for header in receive:
                runtime = self._context(header).runtime
                if runtime.spec_version != current.spec_version:
                    current = runtime
                    yield runtime_version_json(runtime)

    async def _follow_storage(self, keys: list[bytes]) -> AsyncIterator[dict[str, Any]]:
        receive = self.node.new_head.subscribe()
        async with receive:
            header = self.node.store.best_header()
            values = self._read_keys(header, keys)
            yield _storage_set(header, values.items())
            async for header in receive:
                new = self._read_keys(header, keys)
                changed = [(key, value) for key, value in new.items() if values.get(key) != value]
                values = new
                if changed:
                    yield _storage_set(header, changed)

    def _read_keys(self, header: Header, keys: list[bytes]) -> dict[bytes, bytes | None]:
        state = self._state(header)
        return {key: state.get(key) for key in keys}


def _storage_set(header: Header, changes: Iterable[tuple[bytes, bytes | None]]) -> dict[str, Any]:
    """Substrate's StorageChangeSet {block, changes: [[key, value or null]]}."""
    return {"block": encode_hex(header.hash),
            "changes": [[encode_hex(key), None if value is None else encode_hex(value)] for key, value in changes]}


def register_substrate_api(api: RpcApi, node: RpcNode) -> None:
    """Add the methods and subscriptions above to `api` (called once from `build_api`)."""
    rpc = SubstrateRpc(node)
    for name in ("state_getMetadata", "state_call", "state_queryStorageAt", "state_getKeysPaged",
                 "chain_getRuntimeVersion"):
        api.method(name, getattr(rpc, name))
    api.method("state_callAt", rpc.state_call)
    api.method("state_getKeysPagedAt", rpc.state_getKeysPaged)
    api.subscription("state_subscribeRuntimeVersion", "state_unsubscribeRuntimeVersion", "state_runtimeVersion",
                     rpc.state_subscribeRuntimeVersion)
    api.subscription("chain_subscribeRuntimeVersion", "chain_unsubscribeRuntimeVersion", "state_runtimeVersion",
                     rpc.state_subscribeRuntimeVersion)
    api.subscription("state_subscribeStorage", "state_unsubscribeStorage", "state_storage", rpc.state_subscribeStorage)
