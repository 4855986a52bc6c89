"""Substrate's JSON shapes for the node's RPC methods: bytes and hashes as 0x-hex, headers and
runtime versions as Substrate's RPC shows them. Shared by methods.py and substrate.py."""

from __future__ import annotations

from typing import Any

from gensyn_node.rpc.errors import RpcError
from runtime.block import Header
from runtime.types import DigestItem
from runtime.version import Runtime

INVALID_HEX = -32602


def encode_hex(data: bytes) -> str:
    return "0x" + data.hex()


def decode_hex(value: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RpcError(INVALID_HEX, "Invalid params", f"{what}: expected 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise RpcError(INVALID_HEX, "Invalid params", f"{what}: invalid hex") from None
    if length is not None and len(raw) != length:
        raise RpcError(INVALID_HEX, "Invalid params", f"{what}: expected {length} bytes")
    return raw


def header_json(header: Header) -> dict[str, Any]:
    return {
        "parentHash": encode_hex(header.parent_hash),
        "number": hex(header.number),
        "stateRoot": encode_hex(header.state_root),
        "extrinsicsRoot": encode_hex(header.extrinsics_root),
        "digest": {"logs": [encode_hex(DigestItem.encode((kind, (engine, data)))) for kind, engine, data in header.digest]},
    }


def runtime_version_json(runtime: Runtime) -> dict[str, Any]:
    """`RuntimeVersion` as Substrate's RPC shows it ."""
    version = runtime.version
    return {
        "specName": version["spec_name"].decode(),
        "implName": version["impl_name"].decode(),
        "authoringVersion": version["authoring_version"],
        "specVersion": version["spec_version"],
        "implVersion": version["impl_version"],
        "apis": [[encode_hex(api["id"]), api["version"]] for api in version["apis"]],
        "transactionVersion": version["transaction_version"],
        "stateVersion": version["state_version"],
    }
