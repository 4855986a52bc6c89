"""Metadata V14 as the clients read it, with scalecodec (py-substrate-interface's codec) as the
oracle: it decodes and re-encodes our bytes byte for byte, finds the type paths clients give
meaning to, and derives storage keys, constants and extrinsics exactly as our codec does."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset
from substrateinterface.storage import StorageKey

from gensyn_node.keyring import dev_account, keypair_from_seed
from runtime.codec.scale import ScaleType, Struct
from runtime.crypto import ED25519
from runtime.extrinsic import encode_signed, signing_payload
from runtime.frame import StorageMap
from runtime.metadata import SIGNED_EXTENSIONS, build_metadata, encode_opaque, get_metadata
from runtime.metadata_types import MetadataError, TypeRegistry
from runtime.params import ChainParameters
from runtime.types import Era, mortal_era
from runtime.version import LATEST_SPEC_VERSION, get_runtime

PARAMS = ChainParameters()
RUNTIME = get_runtime(LATEST_SPEC_VERSION)
ALICE, BOB = dev_account("alice"), dev_account("bob")


@dataclasses.dataclass
class Decoded:
    raw: bytes
    config: RuntimeConfigurationObject
    metadata: Any

    @property
    def v14(self) -> dict[str, Any]:
        return self.metadata.value[1]["V14"]

    def type(self, type_id: int) -> dict[str, Any]:
        return self.v14["types"]["types"][type_id]["type"]

    def pallet(self, name: str) -> dict[str, Any]:
        return next(p for p in self.v14["pallets"] if p["name"] == name)

    def by_path(self, *path: str) -> list[dict[str, Any]]:
        return [t for t in self.v14["types"]["types"] if tuple(t["type"]["path"]) == path]


def decode_metadata(raw: bytes) -> Decoded:
    config = RuntimeConfigurationObject()
    config.update_type_registry(load_type_registry_preset("core"))
    metadata = config.create_scale_object("MetadataVersioned", data=ScaleBytes(raw))
    metadata.decode()
    config.add_portable_registry(metadata)
    return Decoded(raw, config, metadata)


def as_bytes(value: str) -> bytes:
    """scalecodec shows a Vec<u8> as 0x-hex, or as text when the bytes are printable."""
    return bytes.fromhex(value[2:]) if value.startswith("0x") else value.encode()


@pytest.fixture(scope="module")
def md() -> Decoded:
    return decode_metadata(get_metadata(LATEST_SPEC_VERSION, PARAMS))


def test_metadata_scalecodec_decodes_and_reencodes_byte_for_byte(md):
    assert md.raw[:4] == b"meta" and md.raw[4] == 14
    again = md.config.create_scale_object("MetadataVersioned").encode(md.metadata.value)
    assert again.data == md.raw


def test_metadata_type_ids_contiguous_and_types_interned(md):
    types = md.v14["types"]["types"]
    assert [t["id"] for t in types] == list(range(len(types)))
    anonymous = [repr((t["type"]["def"], t["type"]["params"])) for t in types if not t["type"]["path"]]
    assert len(anonymous) == len(set(anonymous)), "an anonymous type (Vec<u8>, [u8; 32], ...) is listed twice"
    named = [repr((t["type"]["path"], t["type"]["params"])) for t in types if t["type"]["path"]]
    assert len(named) == len(set(named)), "two different types share a path and parameters"


def test_metadata_has_the_paths_clients_read(md):
    paths = {"::".join(t["type"]["path"]) for t in md.v14["types"]["types"]}
    for path in ("sp_core::crypto::AccountId32", "sp_runtime::multiaddress::MultiAddress", "sp_runtime::MultiSignature",
                 "sp_runtime::generic::era::Era", "sp_weights::weight_v2::Weight", "frame_system::EventRecord",
                 "sp_runtime::generic::unchecked_extrinsic::UncheckedExtrinsic", "sp_runtime::DispatchError"):
        assert path in paths
    runtime_event = [p for p in paths if p.endswith("::RuntimeEvent")]
    assert len(runtime_event) == 1 and len(runtime_event[0].split("::")) == 2


def test_metadata_extrinsic_type_carries_substrates_parameters(md):
    extrinsic = md.type(md.v14["extrinsic"]["ty"])
    names = [p["name"] for p in extrinsic["params"]]
    assert names == ["Address", "Call", "Signature", "Extra"]
    types = {p["name"]: md.type(p["type"]) for p in extrinsic["params"]}
    assert types["Address"]["path"] == ["sp_runtime", "multiaddress", "MultiAddress"]
    assert types["Call"]["path"] == ["gensyn_runtime", "RuntimeCall"]
    assert types["Signature"]["path"] == ["sp_runtime", "MultiSignature"]
    address_params = {p["name"]: md.type(p["type"])["path"] for p in types["Address"]["params"]}
    assert address_params["AccountId"] == ["sp_core", "crypto", "AccountId32"]
    record = md.by_path("frame_system", "EventRecord")[0]
    assert [p["name"] for p in record["type"]["params"]] == ["E", "T"]
    assert md.type(record["type"]["params"][0]["type"])["path"] == ["gensyn_runtime", "RuntimeEvent"]


def test_metadata_multisignature_variants_exactly_substrates(md):
    (signature,) = md.by_path("sp_runtime", "MultiSignature")
    variants = [(v["name"], v["index"]) for v in signature["type"]["def"]["variant"]["variants"]]
    assert variants == [("Ed25519", 0), ("Sr25519", 1), ("Ecdsa", 2)]


def test_metadata_errors_run_without_gaps_and_match_the_declarations(md):
    for pallet in RUNTIME.pallets:
        entry = md.pallet(pallet.name)
        if pallet.errors is None or not pallet.errors.names:
            assert entry["error"] is None
            continue
        variants = md.type(entry["error"]["ty"])["def"]["variant"]["variants"]
        assert [v["index"] for v in variants] == list(range(len(variants)))
        assert [v["name"] for v in variants] == pallet.errors.names


def test_metadata_system_events_have_substrates_fields(md):
    events = md.type(md.pallet("System")["event"]["ty"])["def"]["variant"]["variants"]
    fields = {v["name"]: [f["name"] for f in v["fields"]] for v in events}
    assert fields["ExtrinsicSuccess"] == ["dispatch_info"]
    assert fields["ExtrinsicFailed"] == ["dispatch_error", "dispatch_info"]
    (module_error,) = md.by_path("sp_runtime", "ModuleError")
    composite = module_error["type"]["def"]["composite"]["fields"]
    assert [f["name"] for f in composite] == ["index", "error"]
    assert md.type(composite[0]["type"])["def"] == {"primitive": "u8"}
    assert md.type(composite[1]["type"])["def"]["array"]["len"] == 4


def test_metadata_pallets_without_calls_or_events_say_none(md):
    assert md.pallet("TransactionPayment")["calls"] is None
    assert md.pallet("Timestamp")["event"] is None
    assert [p["index"] for p in md.v14["pallets"]] == [p.index for p in RUNTIME.pallets]


def test_metadata_era_is_substrates_enum(md):
    (era,) = md.by_path("sp_runtime", "generic", "era", "Era")
    variants = era["type"]["def"]["variant"]["variants"]
    assert len(variants) == 256
    assert (variants[0]["name"], variants[0]["index"], variants[0]["fields"]) == ("Immortal", 0, [])
    assert all(v["name"] == f"Mortal{v['index']}" and len(v["fields"]) == 1 for v in variants[1:])
    for era_value in [(64, 5), (4, 0), (65536, 4096 * 3)]:
        era_type = md.config.create_scale_object(f"scale_info::{era['id']}")
        assert era_type.encode(era_value).data == Era.encode(era_value)


def test_metadata_signed_extensions_in_substrates_order(md):
    identifiers = [ext["identifier"] for ext in md.v14["extrinsic"]["signed_extensions"]]
    assert identifiers == ["CheckSpecVersion", "CheckTxVersion", "CheckGenesis", "CheckMortality", "CheckNonce",
                           "CheckWeight", "ChargeTransactionPayment"]
    assert identifiers == [ext.identifier for ext in SIGNED_EXTENSIONS]
    assert md.v14["extrinsic"]["version"] == 4


@pytest.mark.parametrize("key", [ALICE, keypair_from_seed(bytes(range(32)), ED25519)], ids=["sr25519", "ed25519"])
def test_metadata_scalecodec_decodes_our_signed_extrinsic(md, key):
    call = RUNTIME.encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", BOB.public), "value": 12345})
    era = mortal_era(100, 64)
    payload = signing_payload(call, Era.encode(era), 7, 3, LATEST_SPEC_VERSION, 1, bytes(32), bytes(32))
    raw = encode_signed(call, key.public, key.scheme, key.sign(payload), era, 7, 3)
    extrinsic = md.config.create_scale_object("Extrinsic", data=ScaleBytes(raw), metadata=md.metadata)
    value = extrinsic.decode()
    assert value["address"] == "0x" + key.public.hex()
    assert value["nonce"] == 7 and value["tip"] == 3 and value["era"] == era
    assert value["call"]["call_module"] == "Balances" and value["call"]["call_function"] == "transfer_keep_alive"
    assert {a["name"]: a["value"] for a in value["call"]["call_args"]}["value"] == 12345


def test_metadata_storage_entries_match_the_declarations(md):
    for pallet in RUNTIME.pallets:
        entries = {e["name"]: e for e in md.pallet(pallet.name)["storage"]["entries"]}
        assert md.pallet(pallet.name)["storage"]["prefix"] == pallet.name
        assert list(entries) == [item.name for item in pallet.storage]
        for item in pallet.storage:
            entry = entries[item.name]
            assert entry["modifier"] == ("Optional" if item.default is None else "Default")
            if isinstance(item, StorageMap):
                assert entry["type"]["Map"]["hashers"] == [h for h, _ in item.key_types]
            else:
                assert "Plain" in entry["type"]
            if item.default is not None:
                assert as_bytes(entry["default"]) == item.value_type.encode(item.default)


@pytest.mark.parametrize("pallet, item, params, ours", [
    ("System", "Account", [ALICE.address], lambda r: r.pallets_by_name["System"].storage[0].key(ALICE.public)),
    ("System", "BlockHash", [5], lambda r: next(i for i in r.pallets_by_name["System"].storage if i.name == "BlockHash").key(5)),
    ("Balances", "TotalIssuance", [], lambda r: r.pallets_by_name["Balances"].storage[0].key()),
    ("Staking", "Ledger", [ALICE.address], lambda r: next(i for i in r.pallets_by_name["Staking"].storage if i.name == "Ledger").key(ALICE.public)),
])
def test_metadata_storage_keys_as_substrate_interface_derives_them(md, pallet, item, params, ours):
    key = StorageKey.create_from_storage_function(pallet, item, params, runtime_config=md.config, metadata=md.metadata)
    assert key.data == ours(RUNTIME)


def test_metadata_constants_carry_the_chain_parameters():
    params = dataclasses.replace(PARAMS, existential_deposit=777, bonding_duration=5)
    md = decode_metadata(get_metadata(LATEST_SPEC_VERSION, params))
    constants = {(p["name"], c["name"]): c for p in md.v14["pallets"] for c in p["constants"]}

    def value(pallet: str, name: str) -> Any:
        constant = constants[(pallet, name)]
        raw = as_bytes(constant["value"])
        return md.config.create_scale_object(f"scale_info::{constant['type']}", data=ScaleBytes(raw)).decode()

    assert value("Balances", "ExistentialDeposit") == 777
    assert value("Staking", "BondingDuration") == 5
    assert value("Timestamp", "MinimumPeriod") == params.slot_duration_ms // 2
    assert value("System", "BlockHashCount") == 2400


def test_metadata_cached_per_spec_version_and_params():
    first = get_metadata(LATEST_SPEC_VERSION, PARAMS)
    assert get_metadata(LATEST_SPEC_VERSION, ChainParameters()) is first
    other = get_metadata(LATEST_SPEC_VERSION, dataclasses.replace(PARAMS, base_fee=PARAMS.base_fee + 1))
    assert other != first
    assert build_metadata(RUNTIME, PARAMS) == first  # deterministic
    assert encode_opaque(first)[len(encode_opaque(first)) - len(first):] == first


def test_metadata_rejects_a_type_it_cannot_describe():
    class Opaque(ScaleType):
        pass

    with pytest.raises(MetadataError, match="Opaque"):
        TypeRegistry().register(Struct(("x", "Holder"), [("inner", Opaque())]))
