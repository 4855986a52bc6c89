"""The client-facing RPC of a real node process, method by method, as Substrate answers it:
metadata and runtime calls, batched and paged storage, runtime version and storage
subscriptions, and bad input (unknown blocks and keys, malformed or foreign extrinsics), which
gets Substrate's error codes and never a crash."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websocket

from gensyn_node.chain_spec import dev_spec
from gensyn_node.keyring import dev_account
from runtime.codec.scale import decode_compact, encode_compact
from runtime.extrinsic import encode_signed, encode_unsigned, signing_payload
from runtime.metadata import get_metadata
from runtime.pallets.balances.storage import TotalIssuance
from runtime.pallets.system import storage as system_storage
from runtime.pallets.system.account import account_key
from runtime.types import Era, MultiAddress, MultiSignature, RuntimeVersion
from runtime.version import get_runtime
from tests.integration.nodeproc import NodeProcess

ALICE, BOB = dev_account("alice"), dev_account("bob")
UNKNOWN_BLOCK = "0x" + "ab" * 32
DEV_PARAMS = dev_spec().params


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    proc = NodeProcess(tmp_path_factory.mktemp("compat") / "alice").start()
    yield proc
    proc.stop()


def call(node: NodeProcess, method: str, *params: Any) -> dict[str, Any]:
    """The whole JSON-RPC reply (result or error)."""
    reply = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=30)
    return reply.json()


def result(node: NodeProcess, method: str, *params: Any) -> Any:
    reply = call(node, method, *params)
    assert "error" not in reply, reply
    return reply["result"]


def error(node: NodeProcess, method: str, *params: Any) -> dict[str, Any]:
    reply = call(node, method, *params)
    assert "error" in reply, reply
    return reply["error"]


def unhex(value: str) -> bytes:
    return bytes.fromhex(value[2:])


# --- metadata and runtime calls ----------------------------------------------------------------------


def test_rpc_metadata_at_best_and_genesis_is_the_runtimes(node):
    genesis = result(node, "chain_getBlockHash", 0)
    metadata = unhex(result(node, "state_getMetadata"))
    assert metadata == unhex(result(node, "state_getMetadata", genesis))
    assert metadata[:5] == b"meta\x0e"
    version = result(node, "state_getRuntimeVersion")
    assert metadata == get_metadata(version["specVersion"], DEV_PARAMS)


def test_rpc_state_call_metadata_is_opaque_vec(node):
    metadata = unhex(result(node, "state_getMetadata"))
    assert unhex(result(node, "state_call", "Metadata_metadata", "0x")) == encode_compact(len(metadata)) + metadata
    assert unhex(result(node, "state_call", "Metadata_metadata_versions", "0x")) == encode_compact(1) + (14).to_bytes(4, "little")
    at_14 = unhex(result(node, "state_call", "Metadata_metadata_at_version", "0x0e000000"))
    assert at_14 == b"\x01" + encode_compact(len(metadata)) + metadata
    assert result(node, "state_call", "Metadata_metadata_at_version", "0x0f000000") == "0x00"


def test_rpc_state_call_core_version_and_nonce(node):
    version = RuntimeVersion.decode(unhex(result(node, "state_call", "Core_version", "0x")))
    assert version["spec_name"] == b"gensyn-node"
    assert version["spec_version"] == result(node, "state_getRuntimeVersion")["specVersion"]
    nonce = unhex(result(node, "state_call", "AccountNonceApi_account_nonce", "0x" + BOB.public.hex()))
    assert int.from_bytes(nonce, "little") == result(node, "system_accountNextIndex", BOB.address)


def test_rpc_state_call_query_info_prices_the_extrinsic(node):
    runtime = get_runtime(1)
    call_bytes = runtime.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", BOB.public), "value": 10**12})
    xt = encode_signed(call_bytes, ALICE.public, "Sr25519", bytes(64), None, 0, 0)
    info = unhex(result(node, "state_call", "TransactionPaymentApi_query_info", "0x" + (xt + len(xt).to_bytes(4, "little")).hex()))
    params = DEV_PARAMS
    weight = runtime.get_call((2, "transfer_keep_alive", {})).weight
    expected_fee = params.base_fee + len(xt) * params.length_fee + weight * params.weight_fee_per_million // 10**6
    assert info == encode_compact(weight) + encode_compact(0) + b"\x00" + expected_fee.to_bytes(16, "little")
    details = unhex(result(node, "state_call", "TransactionPaymentApi_query_fee_details",
                           "0x" + (xt + len(xt).to_bytes(4, "little")).hex()))
    parts = [int.from_bytes(details[1 + 16 * i:17 + 16 * i], "little") for i in range(4)]
    assert details[0] == 1 and sum(parts[:3]) == expected_fee and parts[3] == 0


def test_rpc_state_call_unsigned_extrinsic_pays_nothing(node):
    xt = encode_unsigned(get_runtime(1).encode_call("System", "remark", {"remark": b"x"}))
    data = "0x" + (xt + len(xt).to_bytes(4, "little")).hex()
    assert unhex(result(node, "state_call", "TransactionPaymentApi_query_info", data))[-16:] == bytes(16)
    details = unhex(result(node, "state_call", "TransactionPaymentApi_query_fee_details", data))
    assert details == b"\x00" + bytes(16)


@pytest.mark.parametrize("method, data, needle", [
    ("Foo_bar", "0x", "Exported method Foo_bar is not found"),
    ("AccountNonceApi_account_nonce", "0x0102", "Bad input data provided to account_nonce"),
    ("TransactionPaymentApi_query_info", "0xfd", "Bad input data provided to query_info"),
    ("TransactionPaymentApi_query_info", "0x0801020304", "Bad input data provided to query_info"),
    ("Metadata_metadata_at_version", "0x0e", "Bad input data provided to metadata_at_version"),
])
def test_rpc_state_call_bad_method_or_input_is_a_client_error(node, method, data, needle):
    err = error(node, "state_call", method, data)
    assert err["code"] == 4003 and needle in err["message"]


# --- storage -------------------------------------------------------------------------------------------


def test_rpc_query_storage_at_reads_values_and_nulls(node):
    best = result(node, "chain_getBlockHash")
    alice_key = "0x" + account_key(ALICE.public).hex()
    missing = "0x" + account_key(bytes(range(32))).hex()
    issuance = "0x" + TotalIssuance.key().hex()
    (change_set,) = result(node, "state_queryStorageAt", [alice_key, missing, issuance], best)
    assert change_set["block"] == best
    changes = dict(change_set["changes"])
    assert changes[missing] is None
    assert changes[alice_key] == result(node, "state_getStorage", alice_key, best)
    assert changes[issuance] == result(node, "state_getStorage", issuance, best)


def test_rpc_keys_paged_walks_a_prefix_in_order(node):
    prefix = "0x" + system_storage.Account.prefix.hex()
    every = result(node, "state_getKeysPaged", prefix, 1000)
    assert len(every) >= 6 and every == sorted(every) and all(k.startswith(prefix) for k in every)
    pages, start = [], None
    while True:
        page = result(node, "state_getKeysPaged", prefix, 2, start)
        if not page:
            break
        pages.extend(page)
        start = page[-1]
    assert pages == every
    assert result(node, "state_getKeysPaged", prefix, 0) == []
    assert "0x" + account_key(ALICE.public).hex() in every


def test_rpc_keys_paged_count_over_the_limit_is_4002(node):
    assert error(node, "state_getKeysPaged", "0x", 1001)["code"] == 4002


@pytest.mark.parametrize("method, params", [
    ("state_getMetadata", [UNKNOWN_BLOCK]),
    ("state_getStorage", ["0x00", UNKNOWN_BLOCK]),
    ("state_queryStorageAt", [["0x00"], UNKNOWN_BLOCK]),
    ("state_getKeysPaged", ["0x", 10, None, UNKNOWN_BLOCK]),
    ("state_call", ["Core_version", "0x", UNKNOWN_BLOCK]),
    ("chain_getRuntimeVersion", [UNKNOWN_BLOCK]),
])
def test_rpc_unknown_block_is_a_client_error(node, method, params):
    assert error(node, method, *params)["code"] == 4003
    assert result(node, "system_name") == "gensyn-node"


@pytest.mark.parametrize("method, params", [
    ("state_getMetadata", ["0x1234"]),
    ("state_queryStorageAt", ["0x00"]),
    ("state_queryStorageAt", [["nothex"]]),
    ("state_getKeysPaged", ["0x", "ten"]),
    ("state_call", ["Core_version", "zz"]),
])
def test_rpc_malformed_params_are_invalid_params(node, method, params):
    assert error(node, method, *params)["code"] == -32602


def test_rpc_unknown_key_is_null(node):
    assert result(node, "state_getStorage", "0x" + "00" * 40) is None


def test_rpc_runtime_version_alias_and_methods_list(node):
    assert result(node, "chain_getRuntimeVersion") == result(node, "state_getRuntimeVersion")
    methods = result(node, "rpc_methods")["methods"]
    for name in ("state_getMetadata", "state_call", "state_queryStorageAt", "state_getKeysPaged",
                 "state_subscribeRuntimeVersion", "state_subscribeStorage", "chain_getRuntimeVersion"):
        assert name in methods
    assert result(node, "system_properties") == {"ss58Format": 42, "tokenDecimals": 12, "tokenSymbol": "GSYN"}


# --- subscriptions -------------------------------------------------------------------------------------


def ws_request(ws: websocket.WebSocket, method: str, params: list[Any], request_id: int) -> dict[str, Any]:
    ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
    while True:
        message = json.loads(ws.recv())
        if message.get("id") == request_id:
            return message


def ws_notification(ws: websocket.WebSocket, subscription: str) -> dict[str, Any]:
    while True:
        message = json.loads(ws.recv())
        if message.get("params", {}).get("subscription") == subscription:
            return message


def test_rpc_subscribe_runtime_version_and_storage(node):
    ws = websocket.create_connection(f"ws://127.0.0.1:{node.rpc_port}", timeout=20)
    try:
        version_sub = ws_request(ws, "state_subscribeRuntimeVersion", [], 1)["result"]
        notification = ws_notification(ws, version_sub)
        assert notification["method"] == "state_runtimeVersion"
        assert notification["params"]["result"] == result(node, "state_getRuntimeVersion")
        number_key = "0x" + system_storage.Number.key().hex()
        storage_sub = ws_request(ws, "state_subscribeStorage", [[number_key]], 2)["result"]
        first = ws_notification(ws, storage_sub)["params"]["result"]
        second = ws_notification(ws, storage_sub)["params"]["result"]  # the next block changes System.Number
        assert first["changes"][0][0] == number_key and second["block"] != first["block"]
        assert int.from_bytes(unhex(second["changes"][0][1]), "little") > int.from_bytes(unhex(first["changes"][0][1]), "little")
        assert ws_request(ws, "state_unsubscribeStorage", [storage_sub], 3)["result"] is True
        assert ws_request(ws, "state_unsubscribeRuntimeVersion", [version_sub], 4)["result"] is True
        assert ws_request(ws, "state_subscribeStorage", [], 5)["error"]["code"] == -32602
    finally:
        ws.close()


# --- bad extrinsics: 1010 with a reason -----------------------------------------------------------------


def signed_transfer(node: NodeProcess, *, genesis: bytes | None = None, spec_version: int | None = None,
                    tx_version: int | None = None) -> bytes:
    version = result(node, "state_getRuntimeVersion")
    genesis = genesis or unhex(result(node, "chain_getBlockHash", 0))
    call_bytes = get_runtime(version["specVersion"]).encode_call(
        "Balances", "transfer_keep_alive", {"dest": ("Id", BOB.public), "value": 10**12})
    nonce = result(node, "system_accountNextIndex", ALICE.address)
    payload = signing_payload(call_bytes, Era.encode(None), nonce, 0, spec_version or version["specVersion"],
                              tx_version or version["transactionVersion"], genesis, genesis)
    return encode_signed(call_bytes, ALICE.public, ALICE.scheme, ALICE.sign(payload), None, nonce, 0)


def submit_error(node: NodeProcess, extrinsic: bytes) -> dict[str, Any]:
    return error(node, "author_submitExtrinsic", "0x" + extrinsic.hex())


def body_of(extrinsic: bytes) -> bytes:
    """The extrinsic without its compact length prefix."""
    _length, pos = decode_compact(extrinsic, 0)
    return extrinsic[pos:]


def test_rpc_extrinsic_truncated_body_is_1010(node):
    short = body_of(signed_transfer(node))[:-1]  # a consistent length prefix, the call cut short
    err = submit_error(node, encode_compact(len(short)) + short)
    assert err["code"] == 1010 and "decode" in err["data"]


def test_rpc_extrinsic_non_canonical_length_prefix_is_1010(node):
    body = body_of(signed_transfer(node))
    padded_prefix = ((len(body) << 2) | 2).to_bytes(4, "little")  # four-byte mode for a small length
    err = submit_error(node, padded_prefix + body)
    assert err["code"] == 1010 and "non-canonical" in err["data"]


def test_rpc_extrinsic_non_canonical_nonce_is_1010(node):
    call_bytes = get_runtime(1).encode_call("System", "remark", {"remark": b"x"})
    body = b"".join((b"\x84", MultiAddress.encode(("Id", ALICE.public)), MultiSignature.encode(("Sr25519", bytes(64))),
                     b"\x00", b"\x01\x00", b"\x00", call_bytes))  # nonce 0 in the two-byte mode
    err = submit_error(node, encode_compact(len(body)) + body)
    assert err["code"] == 1010 and "non-canonical" in err["data"]


@pytest.mark.parametrize("change", [{"genesis": b"\x01" * 32}, {"spec_version": 99}, {"tx_version": 7}],
                         ids=["other-chain", "other-spec-version", "other-tx-version"])
def test_rpc_extrinsic_signed_for_another_chain_or_version_is_1010(node, change):
    err = submit_error(node, signed_transfer(node, **change))
    assert err["code"] == 1010 and "BadProof" in err["data"]


def test_rpc_unsigned_transfer_is_1010(node):
    call_bytes = get_runtime(1).encode_call("System", "remark", {"remark": b"x"})
    err = submit_error(node, encode_unsigned(call_bytes))
    assert err["code"] == 1010 and "unsigned" in err["data"]
