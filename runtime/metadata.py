"""Runtime metadata V14: how the runtime describes itself to clients (`state_getMetadata`,
`Metadata_metadata`), generated from the pallets' own declarations, so the metadata, the codec
and the storage layout cannot disagree.

    RuntimeMetadataPrefixed( b"meta", RuntimeMetadata::V14 {
        types: PortableRegistry,         every type reached below (runtime/metadata_types.py)
        pallets: Vec<PalletMetadata>,    storage (prefix, entries, hashers, defaults), calls,
                                         event, constants (values from the chain parameters), error
        extrinsic: ExtrinsicMetadata,    UncheckedExtrinsic<Address, Call, Signature, Extra>, v4,
                                         the signed extensions in the order the payload is built
        ty: Runtime })

Metadata depends on the spec_version (the pallets) and on the chain parameters (constants):
`get_metadata` caches the bytes per (spec_version, params); `get_state_metadata` reads both
from a block's state, so every node serves the same bytes for the same block.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from runtime.codec.errors import CodecError
from runtime.codec.scale import (
    H256,
    ScaleType,
    byte_vec,
    compact_u32,
    compact_u128,
    encode_compact,
    u16,
    u32,
    unit,
)
from runtime.extrinsic import EXTRINSIC_VERSION
from runtime.frame import Pallet, StorageMap, StorageValue
from runtime.metadata_types import (
    MetadataError,
    TypeRegistry,
    encode_bytes,
    encode_option,
    encode_seq,
    encode_str,
    encode_strs,
)
from runtime.pallets.system import storage as system_storage
from runtime.params import ChainParameters
from runtime.storage import OverlayState
from runtime.types import Era, MultiAddress, MultiSignature
from runtime.version import Runtime, get_runtime

MAGIC = b"meta"
METADATA_VERSION = 14
SUPPORTED_METADATA_VERSIONS = (METADATA_VERSION,)

# scale-info's StorageHasher, by index.
STORAGE_HASHERS = ("Blake2_128", "Blake2_256", "Blake2_128Concat", "Twox128", "Twox256", "Twox64Concat", "Identity")
_MODIFIER_OPTIONAL = b"\x00"
_MODIFIER_DEFAULT = b"\x01"
_UNCHECKED_EXTRINSIC = ("sp_runtime", "generic", "unchecked_extrinsic", "UncheckedExtrinsic")


@dataclass(frozen=True, slots=True)
class SignedExtension:
    """One signed extension: what it adds to the extrinsic (`fields`) and to the signed payload
    only (`additional_signed`). Mirrors runtime/extrinsic.py: era, nonce and tip are in the
    extrinsic; spec version, transaction version, genesis hash and the era's block hash are
    signed but not sent."""

    identifier: str
    path: tuple[str, ...]
    fields: tuple[tuple[str | None, ScaleType], ...]
    additional_signed: ScaleType


def _frame_system(module: str, name: str) -> tuple[str, ...]:
    return ("frame_system", "extensions", module, name)


SIGNED_EXTENSIONS = (
    SignedExtension("CheckSpecVersion", _frame_system("check_spec_version", "CheckSpecVersion"), (), u32),
    SignedExtension("CheckTxVersion", _frame_system("check_tx_version", "CheckTxVersion"), (), u32),
    SignedExtension("CheckGenesis", _frame_system("check_genesis", "CheckGenesis"), (), H256),
    SignedExtension("CheckMortality", _frame_system("check_mortality", "CheckMortality"), ((None, Era),), H256),
    SignedExtension("CheckNonce", _frame_system("check_nonce", "CheckNonce"), ((None, compact_u32),), unit),
    SignedExtension("CheckWeight", _frame_system("check_weight", "CheckWeight"), (), unit),
    SignedExtension("ChargeTransactionPayment", ("pallet_transaction_payment", "ChargeTransactionPayment"),
                    ((None, compact_u128),), unit),
)


# --- storage ----------------------------------------------------------------------------------------


def _docs(text: str) -> tuple[str, ...]:
    return (text,) if text else ()


def _encode_storage_type(item: StorageValue, registry: TypeRegistry) -> bytes:
    value_id = registry.register(item.value_type)
    if not isinstance(item, StorageMap):
        return b"\x00" + encode_compact(value_id)
    key_types = [key_type for _, key_type in item.key_types]
    key_id = registry.register(key_types[0]) if len(key_types) == 1 else registry.register_tuple(key_types)
    hashers = [bytes((STORAGE_HASHERS.index(hasher),)) for hasher, _ in item.key_types]
    return b"\x01" + encode_seq(hashers) + encode_compact(key_id) + encode_compact(value_id)


def _encode_storage_default(item: StorageValue) -> bytes:
    """An Optional entry's default is `None` encoded; a Default entry's is its default value."""
    if item.default is None:
        return b"\x00"
    try:
        return item.value_type.encode(item.default)
    except CodecError as exc:
        raise MetadataError(f"{item.pallet_name}.{item.name}: default does not encode: {exc}") from None


def _encode_storage_entry(item: StorageValue, registry: TypeRegistry) -> bytes:
    modifier = _MODIFIER_OPTIONAL if item.default is None else _MODIFIER_DEFAULT
    return b"".join((
        encode_str(item.name),
        modifier,
        _encode_storage_type(item, registry),
        encode_bytes(_encode_storage_default(item)),
        encode_strs(_docs(item.docs)),
    ))


def _encode_storage(pallet: Pallet, registry: TypeRegistry) -> bytes | None:
    if not pallet.storage:
        return None
    return encode_str(pallet.name) + encode_seq([_encode_storage_entry(item, registry) for item in pallet.storage])


# --- pallets ----------------------------------------------------------------------------------------


def _encode_constants(pallet: Pallet, registry: TypeRegistry, params: ChainParameters) -> bytes:
    encoded = []
    for name, ty, value_of, docs in pallet.constants:
        try:
            value = ty.encode(value_of(params))
        except CodecError as exc:
            raise MetadataError(f"{pallet.name}.{name}: constant does not encode: {exc}") from None
        encoded.append(encode_str(name) + encode_compact(registry.register(ty)) + encode_bytes(value)
                       + encode_strs(_docs(docs)))
    return encode_seq(encoded)


def _optional_type(ty: ScaleType | None, registry: TypeRegistry) -> bytes:
    return encode_option(None if ty is None else encode_compact(registry.register(ty)))


def _encode_pallet(pallet: Pallet, registry: TypeRegistry, params: ChainParameters) -> bytes:
    """PalletMetadata V14; a pallet without calls, events or errors has `None` there, as
    Substrate's (TransactionPayment has no calls, Timestamp no events)."""
    storage = _encode_storage(pallet, registry)
    calls = _optional_type(pallet.call_enum if pallet.calls else None, registry)
    event = _optional_type(pallet.events if pallet.events is not None and pallet.events.variants else None, registry)
    constants = _encode_constants(pallet, registry, params)
    error = _optional_type(pallet.errors.enum if pallet.errors is not None and pallet.errors.names else None, registry)
    return b"".join((encode_str(pallet.name), encode_option(storage), calls, event, constants, error,
                     bytes((pallet.index,))))


# --- extrinsic and runtime --------------------------------------------------------------------------


def _encode_extrinsic(runtime: Runtime, registry: TypeRegistry) -> bytes:
    """ExtrinsicMetadata: the UncheckedExtrinsic type with Substrate's four type parameters
    (clients read Address and Signature from them), version 4, the signed extensions."""
    extension_ids = [registry.register_composite(ext.path, ext.fields) for ext in SIGNED_EXTENSIONS]
    extra_id = registry.register_tuple_ids(extension_ids)
    params = (("Address", registry.register(MultiAddress)), ("Call", registry.register(runtime.call_enum)),
              ("Signature", registry.register(MultiSignature)), ("Extra", extra_id))
    extrinsic_id = registry.register_composite(_UNCHECKED_EXTRINSIC, [(None, byte_vec)], params)
    extensions = [encode_str(ext.identifier) + encode_compact(ty) + encode_compact(registry.register(ext.additional_signed))
                  for ext, ty in zip(SIGNED_EXTENSIONS, extension_ids)]
    return encode_compact(extrinsic_id) + bytes((EXTRINSIC_VERSION,)) + encode_seq(extensions)


def build_metadata(runtime: Runtime, params: ChainParameters) -> bytes:
    """The SCALE bytes of `RuntimeMetadataPrefixed` (V14) for `runtime` under `params`."""
    registry = TypeRegistry(substitutions={id(system_storage.EventRecord): runtime.event_record})
    registry.register(runtime.event_record)
    # polkadot.js gives every pallet a `palletVersion` storage entry typed u16 and looks u16 up
    # in the registry (warning when it is missing, as no declaration of ours uses it).
    registry.register(u16)
    pallets = [_encode_pallet(pallet, registry, params) for pallet in runtime.pallets]
    extrinsic = _encode_extrinsic(runtime, registry)
    runtime_id = registry.register_composite((runtime.call_enum.path[0], "Runtime"), [])
    return b"".join((MAGIC, bytes((METADATA_VERSION,)), registry.encode(), encode_seq(pallets), extrinsic,
                     encode_compact(runtime_id)))


@lru_cache(maxsize=16)
def get_metadata(spec_version: int, params: ChainParameters) -> bytes:
    """Metadata of runtime `spec_version` under `params`, built once per pair."""
    return build_metadata(get_runtime(spec_version), params)


def get_state_metadata(state: OverlayState) -> bytes:
    """The metadata of the runtime in force in `state`, with the chain parameters stored there."""
    raw = state.get(system_storage.ChainParameters.key())
    if raw is None:
        raise MetadataError("state has no chain parameters (not a genesis-built state)")
    return get_metadata(system_storage.SpecVersion.get(state), ChainParameters.from_scale(raw))


def encode_opaque(metadata: bytes) -> bytes:
    """`OpaqueMetadata` (a Vec<u8>), what the `Metadata_metadata` runtime call returns."""
    return encode_compact(len(metadata)) + metadata
