"""Storage keys and values as any Substrate tool computes and reads them: twox128(pallet) ++
twox128(item) ++ hasher(key), values in SCALE (checked against well-known keys and scalecodec)."""

from __future__ import annotations

import pytest
from scalecodec.base import RuntimeConfiguration, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset
from substrateinterface.utils.hasher import blake2_128_concat, two_x64_concat, xxh128

from gensyn_node.keyring import dev_account
from runtime.pallets.balances.storage import TotalIssuance
from runtime.pallets.sudo.storage import Key as SudoKey
from runtime.pallets.system import storage as system
from runtime.pallets.system.account import account_key
from runtime.pallets.timestamp.storage import Now
from runtime.storage import OverlayState
from runtime.version import get_runtime

ALICE = dev_account("alice").public

# Keys every Substrate developer has seen in polkadot.js's storage explorer.
WELL_KNOWN = [
    (system.Account.key(ALICE), ("26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9"
                                "de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")),
    (system.Number.key(), "26aa394eea5630e07c48ae0c9558cef702a5c1b19ab7a04f536c519aca4983ac"),
    (system.Events.key(), "26aa394eea5630e07c48ae0c9558cef780d41e5e16056765bc8461851072c9d7"),
    (TotalIssuance.key(), "c2261276cc9d1f8598ea4b6a74b15c2f57c875e4cff74148e4628f264b974c80"),
    (Now.key(), "f0c365c3cf59d671eb72da0e7a4113c49f1f0515f462cdcf84e0f1d6045dfcbb"),
    (SudoKey.key(), "5c0d1176a568c1f92944340dbfed9e9c530ebca703c85910e7164cb7d1c9e47b"),
]


@pytest.fixture(scope="module")
def oracle() -> RuntimeConfiguration:
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("legacy"))
    config.update_type_registry({"types": {"RuntimeVersionV4": {"type": "struct", "type_mapping": [
        ["spec_name", "Text"], ["impl_name", "Text"], ["authoring_version", "u32"], ["spec_version", "u32"],
        ["impl_version", "u32"], ["apis", "Vec<([u8; 8], u32)>"], ["transaction_version", "u32"],
        ["state_version", "u8"]]}}})
    return config


@pytest.mark.parametrize("key, expected", WELL_KNOWN)
def test_well_known_storage_keys(key, expected):
    assert key.hex() == expected


def test_account_key_fast_path_equals_storage_map_key():
    for name in ("alice", "bob", "ferdie"):
        who = dev_account(name).public
        assert account_key(who) == system.Account.key(who)


def test_every_storage_prefix_matches_substrate_interface():
    for pallet in get_runtime(1).pallets:
        for item in pallet.storage:
            assert item.prefix == bytes(xxh128(pallet.name.encode()) + xxh128(item.name.encode())), item.name


def test_map_hashers_match_substrate_interface():
    assert system.Account.key(ALICE) == system.Account.prefix + bytes(blake2_128_concat(ALICE))
    number = (1234).to_bytes(4, "little")
    assert system.BlockHash.key(1234) == system.BlockHash.prefix + bytes(two_x64_concat(number))
    assert system.BlockHash.decode_last_key(system.BlockHash.key(1234)) == 1234
    assert system.Account.decode_last_key(system.Account.key(ALICE)) == ALICE


def test_genesis_values_decode_in_scalecodec(oracle, trie):
    account = oracle.create_scale_object("AccountInfo", ScaleBytes(trie.get(system.Account.key(ALICE))))
    value = account.decode()
    assert (value["nonce"], value["providers"], value["consumers"]) == (0, 1, 0)
    assert value["data"]["free"] == 10**18 and value["data"]["reserved"] == 0
    issuance = oracle.create_scale_object("u128", ScaleBytes(trie.get(TotalIssuance.key()))).decode()
    assert issuance == TotalIssuance.get(OverlayState(trie.get))
    sudo = oracle.create_scale_object("[u8; 32]", ScaleBytes(trie.get(SudoKey.key()))).decode()
    assert sudo == "0x" + ALICE.hex()


def test_runtime_version_decodes_in_scalecodec(oracle):
    runtime = get_runtime(1)
    value = oracle.create_scale_object("RuntimeVersionV4", ScaleBytes(runtime.version_bytes)).decode()
    assert value["spec_name"] == "gensyn-node" and value["spec_version"] == 1
    assert value["transaction_version"] == runtime.version["transaction_version"]
    assert len(value["apis"]) == len(runtime.version["apis"])
