"""The SCALE codec and canonical msgpack: round trips, strict decoding of bad input, and a
cross-check of every shared type against `scalecodec` (what Python Substrate clients run)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scalecodec.base import RuntimeConfiguration, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from runtime.block import Block, Header, pre_runtime_digest
from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.codec.scale import (
    Bytes,
    Compact,
    Option,
    Tuple,
    Vec,
    boolean,
    byte_vec,
    compact_u32,
    compact_u64,
    compact_u128,
    decode_compact,
    encode_compact,
    u8,
    u16,
    u32,
    u64,
    u128,
)
from runtime.types import (
    AccountInfo,
    DispatchError,
    Era,
    MultiAddress,
    MultiSignature,
    era_birth,
    era_death,
    mortal_era,
)

U128_MAX = (1 << 128) - 1


@pytest.fixture(scope="module")
def oracle() -> RuntimeConfiguration:
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("legacy"))
    return config


def oracle_encode(oracle: RuntimeConfiguration, type_string: str, value: object) -> bytes:
    return bytes(oracle.create_scale_object(type_string).encode(value).data)


def oracle_decode(oracle: RuntimeConfiguration, type_string: str, data: bytes) -> object:
    obj = oracle.create_scale_object(type_string, ScaleBytes(data))
    value = obj.decode(check_remaining=True)
    return value


# --- compact integers ------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=U128_MAX))
@example(0)
@example((1 << 6) - 1)
@example(1 << 6)
@example((1 << 14) - 1)
@example(1 << 14)
@example((1 << 30) - 1)
@example(1 << 30)
@example((1 << 32) - 1)
@example(1 << 32)
@example(U128_MAX)
def test_compact_round_trip_matches_scalecodec(oracle, value):
    encoded = compact_u128.encode(value)
    assert compact_u128.decode(encoded) == value
    assert encoded == oracle_encode(oracle, "Compact<u128>", value)
    assert oracle_decode(oracle, "Compact<u128>", encoded) == value


@pytest.mark.parametrize("data, why", [
    (b"\x01\x00", "0 in two-byte mode"),
    (b"\xfd\x00", "63 in two-byte mode"),
    (b"\x02\x00\x00\x00", "0 in four-byte mode"),
    (b"\xfe\xff\x00\x00", "2^14-1 in four-byte mode"),
    (b"\x03\x00\x00\x00\x00", "0 in big-integer mode"),
    (b"\x03\xff\xff\xff\x3f", "2^30-1 in big-integer mode"),
    (b"\x07\xff\xff\xff\xff\x00", "2^32-1 in five bytes"),
    (b"\x0b" + (1 << 40).to_bytes(6, "little") + b"\x00", "a 6-byte value in seven bytes"),
])
def test_compact_non_canonical_rejected(data, why):
    with pytest.raises(CodecError):
        compact_u128.decode(data)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=U128_MAX), st.integers(min_value=0, max_value=3))
def test_compact_every_longer_mode_rejected(value, extra):
    """Any encoding of `value` in more bytes than needed is refused, whichever mode it uses."""
    canonical_len = len(encode_compact(value))
    candidates = []
    if value < 1 << 14:
        candidates.append(((value << 2) | 1).to_bytes(2, "little"))
    if value < 1 << 30:
        candidates.append(((value << 2) | 2).to_bytes(4, "little"))
    length = max(4, (value.bit_length() + 7) // 8) + extra
    if length <= 67:
        candidates.append(bytes((((length - 4) << 2) | 3,)) + value.to_bytes(length, "little"))
    for data in candidates:
        if len(data) == canonical_len:
            assert data == encode_compact(value)
            continue
        with pytest.raises(CodecError):
            decode_compact(data, 0)


@pytest.mark.parametrize("compact_type, too_big", [
    (compact_u32, 1 << 32), (compact_u64, 1 << 64), (compact_u128, 1 << 128),
])
def test_compact_out_of_range_rejected(compact_type, too_big):
    with pytest.raises(CodecError):
        compact_type.encode(too_big)
    with pytest.raises(CodecError):
        compact_type.decode(encode_compact(too_big))
    assert compact_type.decode(compact_type.encode(too_big - 1)) == too_big - 1


@pytest.mark.parametrize("value", [-1, True, 1.5, "1", None])
def test_compact_encode_rejects_non_integers(value):
    with pytest.raises(CodecError):
        encode_compact(value)


def test_compact_larger_than_67_bytes_rejected():
    with pytest.raises(CodecError):
        encode_compact(1 << (8 * 67))
    assert decode_compact(encode_compact((1 << (8 * 67)) - 1), 0)[0] == (1 << (8 * 67)) - 1


# --- fixed-width integers, bool, option, vectors ------------------------------------------------------


@pytest.mark.parametrize("int_type, name", [(u8, "u8"), (u16, "u16"), (u32, "u32"), (u64, "u64"), (u128, "u128")])
@settings(deadline=None)
@given(data=st.data())
def test_uint_round_trip_matches_scalecodec(oracle, int_type, name, data):
    value = data.draw(st.integers(min_value=0, max_value=int_type.max))
    encoded = int_type.encode(value)
    assert encoded == oracle_encode(oracle, name, value)
    assert int_type.decode(encoded) == value == oracle_decode(oracle, name, encoded)


@pytest.mark.parametrize("int_type", [u8, u16, u32, u64, u128])
def test_uint_out_of_range_and_truncated_rejected(int_type):
    for bad in (-1, int_type.max + 1, True):
        with pytest.raises(CodecError):
            int_type.encode(bad)
    with pytest.raises(CodecError):
        int_type.decode(bytes(int_type.size - 1))
    with pytest.raises(CodecError):
        int_type.decode(bytes(int_type.size + 1))


def test_bool_byte_two_rejected():
    assert boolean.decode(b"\x00") is False
    assert boolean.decode(b"\x01") is True
    for byte in (2, 0x80, 0xFF):
        with pytest.raises(CodecError):
            boolean.decode(bytes((byte,)))
    with pytest.raises(CodecError):
        boolean.encode(1)


def test_option_tag_two_rejected(oracle):
    opt = Option(u32)
    assert opt.decode(b"\x00") is None
    assert opt.decode(b"\x01\x05\x00\x00\x00") == 5
    assert opt.encode(5) == oracle_encode(oracle, "Option<u32>", 5)
    assert opt.encode(None) == oracle_encode(oracle, "Option<u32>", None)
    with pytest.raises(CodecError):
        opt.decode(b"\x02\x05\x00\x00\x00")
    with pytest.raises(CodecError):
        opt.decode(b"\x01\x05\x00")


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_bytes_round_trip_matches_scalecodec(oracle, value):
    encoded = byte_vec.encode(value)
    assert byte_vec.decode(encoded) == value
    assert encoded == oracle_encode(oracle, "Vec<u8>", "0x" + value.hex())


def test_bytes_over_limit_rejected_both_ways():
    small = Bytes(max_len=4)
    assert small.decode(small.encode(b"abcd")) == b"abcd"
    with pytest.raises(CodecError):
        small.encode(b"abcde")
    with pytest.raises(CodecError):
        small.decode(encode_compact(5) + b"abcde")


def test_bytes_length_bomb_rejected():
    """A length prefix far beyond the data is refused without allocating."""
    with pytest.raises(CodecError):
        byte_vec.decode(encode_compact((1 << 30) + 5) + b"xx")
    with pytest.raises(CodecError):
        byte_vec.decode(encode_compact(10) + b"short")


def test_vec_length_bomb_rejected():
    vec = Vec(u32)
    with pytest.raises(CodecError):
        vec.decode(encode_compact(1 << 20) + bytes(8))
    with pytest.raises(CodecError):
        vec.decode(encode_compact((1 << 64) - 1) + bytes(8))
    with pytest.raises(CodecError):
        Vec(u8, max_len=3).decode(encode_compact(4) + bytes(4))
    with pytest.raises(CodecError):
        Vec(u8, max_len=3).encode([1, 2, 3, 4])


@settings(deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=(1 << 64) - 1), max_size=40))
def test_vec_round_trip_matches_scalecodec(oracle, values):
    vec = Vec(u64)
    encoded = vec.encode(values)
    assert vec.decode(encoded) == values
    assert encoded == oracle_encode(oracle, "Vec<u64>", values)
    assert oracle_decode(oracle, "Vec<u64>", encoded) == values


@pytest.mark.parametrize("bad", [b"\x00\x01", "text", {"a": 1}, 5])
def test_vec_encode_rejects_non_lists(bad):
    with pytest.raises(CodecError):
        Vec(u8).encode(bad)


@pytest.mark.parametrize("scale_type, value", [
    (compact_u128, 1 << 100),
    (byte_vec, b"hello world"),
    (Vec(u32), [1, 2, 3]),
    (Tuple(u8, compact_u32, boolean), (7, 1 << 20, True)),
    (MultiAddress, ("Id", bytes(range(32)))),
    (MultiSignature, ("Sr25519", bytes(64))),
    (DispatchError, ("Module", {"index": 2, "error": b"\x02\x00\x00\x00"})),
    (Era, (64, 5)),
])
def test_decode_truncated_and_trailing_rejected(scale_type, value):
    encoded = scale_type.encode(value)
    assert scale_type.decode(encoded) == value
    for cut in range(len(encoded)):
        with pytest.raises(CodecError):
            scale_type.decode(encoded[:cut])
    for tail in (b"\x00", b"\xff\xff"):
        with pytest.raises(CodecError):
            scale_type.decode(encoded + tail)


# --- enums and structs ------------------------------------------------------------------------------


@pytest.mark.parametrize("enum_type, index", [
    (MultiAddress, 5), (MultiAddress, 0xFF), (MultiSignature, 3), (DispatchError, 14), (DispatchError, 0xFF),
])
def test_enum_unknown_index_rejected(enum_type, index):
    with pytest.raises(CodecError):
        enum_type.decode(bytes((index,)) + bytes(70))


def test_enum_encode_rejects_unknown_variant_and_bad_payload():
    with pytest.raises(CodecError):
        MultiAddress.encode(("Nope", bytes(32)))
    with pytest.raises(CodecError):
        MultiAddress.encode(("Id", bytes(31)))
    with pytest.raises(CodecError):
        DispatchError.encode(("BadOrigin", 5))


ADDRESSES = st.one_of(
    st.tuples(st.just("Id"), st.binary(min_size=32, max_size=32)),
    st.tuples(st.just("Index"), st.integers(min_value=0, max_value=(1 << 32) - 1)),
    st.tuples(st.just("Raw"), st.binary(max_size=40)),
    st.tuples(st.just("Address32"), st.binary(min_size=32, max_size=32)),
    st.tuples(st.just("Address20"), st.binary(min_size=20, max_size=20)),
)


def _oracle_value(value: object) -> object:
    return "0x" + value.hex() if isinstance(value, bytes) else value


@settings(deadline=None)
@given(ADDRESSES)
def test_multiaddress_matches_scalecodec(oracle, address):
    kind, value = address
    encoded = MultiAddress.encode(address)
    assert MultiAddress.decode(encoded) == address
    assert encoded == oracle_encode(oracle, "MultiAddress", {kind: _oracle_value(value)})
    decoded = oracle_decode(oracle, "MultiAddress", encoded)
    if kind == "Id":  # scalecodec shows an Id as the bare account
        assert decoded == "0x" + value.hex()
    elif kind == "Index":
        assert decoded == value
    else:
        assert decoded == {kind: "0x" + value.hex()}


@settings(deadline=None)
@given(st.sampled_from([("Ed25519", 64), ("Sr25519", 64), ("Ecdsa", 65)]), st.data())
def test_multisignature_matches_scalecodec(oracle, scheme, data):
    name, size = scheme
    signature = data.draw(st.binary(min_size=size, max_size=size))
    encoded = MultiSignature.encode((name, signature))
    assert MultiSignature.decode(encoded) == (name, signature)
    assert encoded == oracle_encode(oracle, "MultiSignature", {name: "0x" + signature.hex()})
    assert oracle_decode(oracle, "MultiSignature", encoded) == {name: "0x" + signature.hex()}


BALANCE = st.integers(min_value=0, max_value=U128_MAX)
U32 = st.integers(min_value=0, max_value=(1 << 32) - 1)


@settings(deadline=None)
@given(U32, U32, U32, U32, BALANCE, BALANCE, BALANCE, BALANCE)
def test_account_info_round_trip(nonce, consumers, providers, sufficients, free, reserved, frozen, flags):
    value = {"nonce": nonce, "consumers": consumers, "providers": providers, "sufficients": sufficients,
             "data": {"free": free, "reserved": reserved, "frozen": frozen, "flags": flags}}
    encoded = AccountInfo.encode(value)
    assert len(encoded) == 80
    assert AccountInfo.decode(encoded) == value


# --- eras ---------------------------------------------------------------------------------------


PERIODS = st.sampled_from([1 << k for k in range(2, 17)])


@settings(deadline=None)
@given(PERIODS, st.data())
def test_era_round_trip_matches_scalecodec(oracle, period, data):
    quantize = max(period >> 12, 1)
    phase = data.draw(st.integers(min_value=0, max_value=period // quantize - 1)) * quantize
    encoded = Era.encode((period, phase))
    assert len(encoded) == 2
    assert Era.decode(encoded) == (period, phase)
    assert encoded == oracle_encode(oracle, "Era", (period, phase))
    assert oracle_decode(oracle, "Era", encoded) == (period, phase)


def test_era_immortal_is_one_zero_byte(oracle):
    assert Era.encode(None) == b"\x00" == oracle_encode(oracle, "Era", "00")
    assert Era.decode(b"\x00") is None


def test_era_every_two_byte_value_agrees_with_scalecodec(oracle):
    """All 65536 two-byte values: we accept exactly what Substrate accepts, as the same era,
    and every accepted encoding is the canonical one."""
    era_obj = oracle.create_scale_object("Era")
    accepted = 0
    for word in range(1 << 16):
        data = word.to_bytes(2, "little")
        if data[0] == 0:
            continue  # immortal: one byte, the second would be trailing
        try:
            ours = Era.decode(data)
        except CodecError:
            ours = None
        era_obj.data = ScaleBytes(data)
        era_obj.data.reset()
        try:
            theirs = era_obj.process()
        except ValueError:
            theirs = None
        assert ours == theirs, data.hex()
        if ours is not None:
            accepted += 1
            assert Era.encode(ours) == data
    assert accepted > 0


@pytest.mark.parametrize("bad", [(2, 0), (3, 0), (6, 1), (1 << 17, 0), (64, 64), (64, -1)])
def test_era_invalid_mortal_rejected(bad):
    with pytest.raises(CodecError):
        Era.encode(bad)


def test_era_truncated_rejected():
    with pytest.raises(CodecError):
        Era.decode(b"")
    with pytest.raises(CodecError):
        Era.decode(b"\x35")


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=1 << 17), st.integers(min_value=0, max_value=1 << 32))
def test_mortal_era_matches_scalecodec(oracle, period, current):
    era = mortal_era(current, period)
    assert era == oracle.create_scale_object("Era")._tuple_from_dict({"period": period, "current": current})


@settings(deadline=None)
@given(PERIODS, st.integers(min_value=0, max_value=1 << 32), st.integers(min_value=0, max_value=1 << 16))
def test_era_birth_and_death_match_scalecodec(oracle, period, current, later):
    era = mortal_era(current, period)
    obj = oracle.create_scale_object("Era", ScaleBytes(Era.encode(era)))
    obj.decode()
    for block in (current, current + later):
        assert era_birth(era, block) == obj.birth(block)
        assert era_death(era, block) == obj.death(block)
    assert era_birth(era, current) <= current < era_death(era, current)
    assert era_birth(None, current) == 0 and era_death(None, current) == 2**64 - 1


# --- compound types against the oracle ---------------------------------------------------------------


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 32) - 1), st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_tuple_matches_scalecodec(oracle, a, b):
    tup = Tuple(u32, Compact(u64))
    encoded = tup.encode((a, b))
    assert encoded == oracle_encode(oracle, "(u32, Compact<u64>)", (a, b))
    assert tuple(oracle_decode(oracle, "(u32, Compact<u64>)", encoded)) == (a, b) == tup.decode(encoded)


# --- headers and canonical msgpack --------------------------------------------------------------------


HASH = st.binary(min_size=32, max_size=32)


@settings(deadline=None)
@given(HASH, st.integers(min_value=0, max_value=(1 << 32) - 1), HASH, HASH, st.integers(min_value=0, max_value=1 << 63))
def test_header_and_block_round_trip(parent, number, state_root, xt_root, slot):
    header = Header(parent, number, state_root, xt_root, (pre_runtime_digest(slot, bytes(32)),))
    assert Header.decode(header.encode()) == header
    sealed = header.with_seal(bytes(64))
    assert Header.decode(sealed.encode()) == sealed
    assert sealed.pre_seal() == header and sealed.seal() == bytes(64)
    block = Block(sealed, (b"\x01\x02", b""))
    assert Block.decode(block.encode()) == block


def test_header_trailing_and_truncated_rejected():
    encoded = Header(bytes(32), 5, bytes(32), bytes(32), (pre_runtime_digest(1, bytes(32)),)).encode()
    with pytest.raises(CodecError):
        Header.decode(encoded + b"\x00")
    with pytest.raises(CodecError):
        Header.decode(encoded[:-1])


CANONICAL = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1) | st.binary(max_size=20)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=20,
)


@settings(deadline=None)
@given(CANONICAL)
def test_canonical_round_trip(value):
    assert canonical.decode(canonical.encode(value)) == value


@pytest.mark.parametrize("value", [1.5, {"a": 1}, [1, {2: 3}], [[1.0]], object()])
def test_canonical_encode_rejects_floats_maps_and_objects(value):
    with pytest.raises(CodecError):
        canonical.encode(value)


@pytest.mark.parametrize("data, why", [
    (b"\x93\x01\x02", "truncated array"),
    (b"\x01\x02", "trailing bytes"),
    (b"\xcb" + bytes(8), "float64"),
    (b"\x81\x01\x02", "map"),
    (b"\xcc\x05", "5 as uint8 instead of a fixint"),
    (b"\xd4\x01\x00", "ext type"),
    (b"\xc1", "reserved byte"),
])
def test_canonical_decode_rejects_bad_input(data, why):
    with pytest.raises(CodecError):
        canonical.decode(data)


def test_canonical_decode_size_limit():
    data = canonical.encode([b"x" * 100])
    assert canonical.decode(data, max_bytes=len(data)) == [b"x" * 100]
    with pytest.raises(CodecError):
        canonical.decode(data, max_bytes=len(data) - 1)
    with pytest.raises(CodecError):
        canonical.decode("not bytes")  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_scale_decoders_raise_only_codec_errors_on_garbage(data):
    for scale_type in (compact_u128, byte_vec, Vec(u32), MultiAddress, MultiSignature, DispatchError,
                       Era, AccountInfo, Option(u32)):
        try:
            scale_type.decode(data)
        except CodecError:
            pass


@pytest.mark.parametrize("value", [
    [],
    [b"header"],
    [b"header", [b"xt"], b"extra"],
    [b"header", b"not a list"],
    [b"header", [b"xt", 5]],
    ["header", []],
])
def test_block_envelope_shape_rejected(value):
    with pytest.raises(CodecError):
        Block.decode(canonical.encode(value))


def test_header_unknown_digest_kind_rejected():
    from runtime.types import Header as HeaderType

    encoded = HeaderType.encode({"parent_hash": bytes(32), "number": 1, "state_root": bytes(32),
                                 "extrinsics_root": bytes(32), "digest": {"logs": [("Other", b"x")]}})
    with pytest.raises(CodecError):
        Header.decode(encoded)


@pytest.mark.parametrize("value", [1 << 64, -(1 << 63) - 1, [1, 1 << 100]])
def test_canonical_encode_out_of_range_int_rejected(value):
    with pytest.raises(CodecError):
        canonical.encode(value)


@settings(deadline=None)
@given(HASH, st.integers(min_value=0, max_value=(1 << 32) - 1), st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_header_decodes_in_scalecodec(oracle, parent, number, slot):
    """Substrate clients hash headers themselves (mortal eras): they must read ours field by field."""
    header = Header(parent, number, bytes(32), bytes(range(32)), (pre_runtime_digest(slot, bytes([7]) * 32),))
    sealed = header.with_seal(bytes([9]) * 64)
    value = oracle_decode(oracle, "Header", sealed.encode())
    assert value["parent_hash"] == "0x" + parent.hex() and value["number"] == number
    assert value["extrinsics_root"] == "0x" + bytes(range(32)).hex()
    pre, seal = value["digest"]["logs"]
    assert pre == {"PreRuntime": {"engine": "gsyn", "data": "0x" + header.digest[0][2].hex()}}
    assert seal == {"Seal": {"engine": "gsyn", "data": "0x" + (bytes([9]) * 64).hex()}}


@pytest.mark.parametrize("phase", [("ApplyExtrinsic", 7), ("Finalization", None), ("Initialization", None)])
def test_phase_matches_scalecodec(oracle, phase):
    from runtime.types import Phase

    expected = {phase[0]: phase[1]} if phase[1] is not None else phase[0]
    assert oracle_decode(oracle, "Phase", Phase.encode(phase)) == expected
