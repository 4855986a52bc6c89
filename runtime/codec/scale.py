"""SCALE, Substrate's codec: what clients sign, what storage values hold, what metadata describes.

Every type is a small object with `encode(value) -> bytes` and `decode_from(data, pos) ->
(value, pos)`; `decode(data)` decodes one whole value and rejects trailing bytes. Decoders
are strict: compact integers must be in their canonical (shortest) mode, enum indices must
exist, lengths are bounded, booleans are 0 or 1. The same objects carry the type paths and
parameters that metadata V14 publishes, so the codec and the metadata cannot disagree.

Values: integers are `int`, byte strings `bytes`, `Vec`s lists, structs dicts by field name,
tuples tuples; an enum value is `(variant_name, payload)`, payload None for a unit variant,
the value for a single unnamed field, a dict for named fields, a tuple for several unnamed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.codec.errors import CodecError

MAX_VEC_LEN = 1 << 20
MAX_NESTING = 8
_U = {1: "u8", 2: "u16", 4: "u32", 8: "u64", 16: "u128", 32: "u256"}


class ScaleType:
    """Base of every SCALE type. `path` and `params` are for metadata V14."""

    path: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode_from(self, data: bytes, pos: int) -> tuple[Any, int]:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        """Decode exactly one value from `data`; trailing bytes are an error."""
        try:
            value, pos = self.decode_from(data, 0)
        except (IndexError, ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, CodecError):
                raise
            raise CodecError(f"{self.name()}: malformed: {exc}") from exc
        if pos != len(data):
            raise CodecError(f"{self.name()}: {len(data) - pos} trailing bytes")
        return value

    def name(self) -> str:
        return "::".join(self.path) if self.path else type(self).__name__


def _need(data: bytes, pos: int, n: int, what: str) -> None:
    if pos + n > len(data):
        raise CodecError(f"{what}: truncated (need {n} bytes at {pos}, have {len(data) - pos})")


class UInt(ScaleType):
    """Fixed-width little-endian unsigned integer (u8 .. u256)."""

    def __init__(self, size: int):
        self.size = size
        self.max = (1 << (8 * size)) - 1
        self.primitive = _U[size]

    def encode(self, value: int) -> bytes:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= self.max:
            raise CodecError(f"{self.primitive}: {value!r} out of range")
        return value.to_bytes(self.size, "little")

    def decode_from(self, data: bytes, pos: int) -> tuple[int, int]:
        end = pos + self.size
        if end > len(data):
            raise CodecError(f"{self.primitive}: truncated")
        return int.from_bytes(data[pos:end], "little"), end

    def name(self) -> str:
        return self.primitive


class BoolType(ScaleType):
    primitive = "bool"

    def encode(self, value: bool) -> bytes:
        if not isinstance(value, bool):
            raise CodecError(f"bool: {value!r} is not a bool")
        return b"\x01" if value else b"\x00"

    def decode_from(self, data: bytes, pos: int) -> tuple[bool, int]:
        _need(data, pos, 1, "bool")
        byte = data[pos]
        if byte > 1:
            raise CodecError(f"bool: invalid byte {byte}")
        return byte == 1, pos + 1


def encode_compact(value: int) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CodecError(f"compact: {value!r} is not a non-negative integer")
    if value < 1 << 6:
        return bytes((value << 2,))
    if value < 1 << 14:
        return ((value << 2) | 1).to_bytes(2, "little")
    if value < 1 << 30:
        return ((value << 2) | 2).to_bytes(4, "little")
    length = (value.bit_length() + 7) // 8
    if length > 67:
        raise CodecError("compact: value too large")
    return bytes((((length - 4) << 2) | 3,)) + value.to_bytes(length, "little")


def decode_compact(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a compact integer, rejecting every non-canonical (longer than needed) mode."""
    _need(data, pos, 1, "compact")
    first = data[pos]
    mode = first & 3
    if mode == 0:
        return first >> 2, pos + 1
    if mode == 1:
        _need(data, pos, 2, "compact")
        value = int.from_bytes(data[pos : pos + 2], "little") >> 2
        if value < 1 << 6:
            raise CodecError("compact: non-canonical two-byte encoding")
        return value, pos + 2
    if mode == 2:
        _need(data, pos, 4, "compact")
        value = int.from_bytes(data[pos : pos + 4], "little") >> 2
        if value < 1 << 14:
            raise CodecError("compact: non-canonical four-byte encoding")
        return value, pos + 4
    length = (first >> 2) + 4
    _need(data, pos + 1, length, "compact")
    value = int.from_bytes(data[pos + 1 : pos + 1 + length], "little")
    if value < 1 << 30 or (length > 4 and value < 1 << (8 * (length - 1))):
        raise CodecError("compact: non-canonical big-integer encoding")
    return value, pos + 1 + length


class Compact(ScaleType):
    """Compact<T>: the variable-length integer encoding; `inner` bounds the value."""

    def __init__(self, inner: UInt):
        self.inner = inner

    def encode(self, value: int) -> bytes:
        if isinstance(value, int) and value > self.inner.max:
            raise CodecError(f"Compact<{self.inner.primitive}>: {value} out of range")
        return encode_compact(value)

    def decode_from(self, data: bytes, pos: int) -> tuple[int, int]:
        value, pos = decode_compact(data, pos)
        if value > self.inner.max:
            raise CodecError(f"Compact<{self.inner.primitive}>: {value} out of range")
        return value, pos

    def name(self) -> str:
        return f"Compact<{self.inner.primitive}>"


class Bytes(ScaleType):
    """Vec<u8>: compact length then the bytes."""

    def __init__(self, max_len: int = MAX_VEC_LEN):
        self.max_len = max_len

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, (bytes, bytearray)):
            raise CodecError(f"Vec<u8>: {type(value).__name__} is not bytes")
        if len(value) > self.max_len:
            raise CodecError(f"Vec<u8>: length {len(value)} over the limit {self.max_len}")
        return encode_compact(len(value)) + bytes(value)

    def decode_from(self, data: bytes, pos: int) -> tuple[bytes, int]:
        length, pos = decode_compact(data, pos)
        if length > self.max_len:
            raise CodecError(f"Vec<u8>: length {length} over the limit {self.max_len}")
        _need(data, pos, length, "Vec<u8>")
        return bytes(data[pos : pos + length]), pos + length

    def name(self) -> str:
        return "Vec<u8>"


class FixedBytes(ScaleType):
    """[u8; N]."""

    def __init__(self, size: int, path: tuple[str, ...] = ()):
        self.size = size
        self.path = path

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, (bytes, bytearray)) or len(value) != self.size:
            raise CodecError(f"[u8; {self.size}]: wrong length or type")
        return bytes(value)

    def decode_from(self, data: bytes, pos: int) -> tuple[bytes, int]:
        end = pos + self.size
        if end > len(data):
            raise CodecError(f"[u8; {self.size}]: truncated")
        return bytes(data[pos:end]), end

    def name(self) -> str:
        return "::".join(self.path) if self.path else f"[u8; {self.size}]"


class Vec(ScaleType):
    def __init__(self, inner: ScaleType, max_len: int = MAX_VEC_LEN):
        self.inner = inner
        self.max_len = max_len

    def encode(self, value: Sequence[Any]) -> bytes:
        if isinstance(value, (bytes, str, dict)) or not isinstance(value, Sequence):
            raise CodecError(f"Vec<{self.inner.name()}>: {type(value).__name__} is not a list")
        if len(value) > self.max_len:
            raise CodecError(f"Vec<{self.inner.name()}>: length {len(value)} over the limit")
        enc = self.inner.encode
        return encode_compact(len(value)) + b"".join(enc(v) for v in value)

    def decode_from(self, data: bytes, pos: int) -> tuple[list[Any], int]:
        length, pos = decode_compact(data, pos)
        if length > self.max_len or length > len(data) - pos + 1:
            raise CodecError(f"Vec<{self.inner.name()}>: length {length} over the limit")
        out = []
        dec = self.inner.decode_from
        for _ in range(length):
            item, pos = dec(data, pos)
            out.append(item)
        return out, pos

    def name(self) -> str:
        return f"Vec<{self.inner.name()}>"


class Tuple(ScaleType):
    def __init__(self, *items: ScaleType):
        self.items = items

    def encode(self, value: Sequence[Any]) -> bytes:
        if not isinstance(value, (tuple, list)) or len(value) != len(self.items):
            raise CodecError(f"{self.name()}: expected a tuple of {len(self.items)}")
        return b"".join(t.encode(v) for t, v in zip(self.items, value))

    def decode_from(self, data: bytes, pos: int) -> tuple[tuple[Any, ...], int]:
        out = []
        for t in self.items:
            item, pos = t.decode_from(data, pos)
            out.append(item)
        return tuple(out), pos

    def name(self) -> str:
        return "(" + ", ".join(t.name() for t in self.items) + ")"


class Option(ScaleType):
    def __init__(self, inner: ScaleType):
        self.inner = inner
        self.path = ("Option",)

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        return b"\x01" + self.inner.encode(value)

    def decode_from(self, data: bytes, pos: int) -> tuple[Any, int]:
        _need(data, pos, 1, "Option")
        tag = data[pos]
        if tag == 0:
            return None, pos + 1
        if tag == 1:
            return self.inner.decode_from(data, pos + 1)
        raise CodecError(f"Option<{self.inner.name()}>: invalid tag {tag}")

    def name(self) -> str:
        return f"Option<{self.inner.name()}>"


class Struct(ScaleType):
    """A struct with named fields (or a newtype with one unnamed field when `fields` has one
    entry named None, whose value is then the inner value itself)."""

    def __init__(
        self,
        path: tuple[str, ...],
        fields: list[tuple[str | None, ScaleType]],
        docs: tuple[str, ...] = (),
        params: tuple[tuple[str, ScaleType | None], ...] = (),
    ):
        self.path, self.fields, self.docs, self.params = tuple(path), fields, docs, params
        self._newtype = len(self.fields) == 1 and self.fields[0][0] is None

    def encode(self, value: Any) -> bytes:
        if self._newtype:
            return self.fields[0][1].encode(value)
        if not isinstance(value, dict):
            raise CodecError(f"{self.name()}: expected a dict, got {type(value).__name__}")
        try:
            return b"".join(t.encode(value[n]) for n, t in self.fields)
        except KeyError as exc:
            raise CodecError(f"{self.name()}: missing field {exc}") from None

    def decode_from(self, data: bytes, pos: int) -> tuple[Any, int]:
        if self._newtype:
            return self.fields[0][1].decode_from(data, pos)
        out = {}
        for n, t in self.fields:
            out[n], pos = t.decode_from(data, pos)
        return out, pos


@dataclass
class Variant:
    name: str
    index: int
    fields: list[tuple[str | None, ScaleType]] = field(default_factory=list)
    docs: tuple[str, ...] = ()


class Enum(ScaleType):
    def __init__(
        self,
        path: tuple[str, ...],
        variants: list[Variant],
        docs: tuple[str, ...] = (),
        params: tuple[tuple[str, ScaleType | None], ...] = (),
    ):
        self.path, self.variants, self.docs, self.params = tuple(path), variants, docs, params
        self.by_index = {v.index: v for v in self.variants}
        self.by_name = {v.name: v for v in self.variants}
        if len(self.by_index) != len(self.variants) or len(self.by_name) != len(self.variants):
            raise ValueError(f"{self.name()}: duplicate variant index or name")

    def encode(self, value: Any) -> bytes:
        if isinstance(value, str):
            value = (value, None)
        if not isinstance(value, tuple) or len(value) != 2:
            raise CodecError(f"{self.name()}: expected (variant, payload)")
        variant = self.by_name.get(value[0])
        if variant is None:
            raise CodecError(f"{self.name()}: unknown variant {value[0]!r}")
        return bytes((variant.index,)) + _encode_fields(self, variant, value[1])

    def decode_from(self, data: bytes, pos: int) -> tuple[Any, int]:
        if pos >= len(data):
            raise CodecError(f"{self.name()}: truncated")
        variant = self.by_index.get(data[pos])
        if variant is None:
            raise CodecError(f"{self.name()}: unknown variant index {data[pos]}")
        payload, pos = _decode_fields(variant, data, pos + 1)
        return (variant.name, payload), pos


def _encode_fields(owner: ScaleType, variant: Variant, payload: Any) -> bytes:
    fields = variant.fields
    if not fields:
        if payload not in (None, (), {}):
            raise CodecError(f"{owner.name()}::{variant.name} takes no payload")
        return b""
    if len(fields) == 1 and fields[0][0] is None:
        return fields[0][1].encode(payload)
    if fields[0][0] is None:
        if not isinstance(payload, (tuple, list)) or len(payload) != len(fields):
            raise CodecError(f"{owner.name()}::{variant.name}: expected {len(fields)} values")
        return b"".join(t.encode(v) for (_, t), v in zip(fields, payload))
    if not isinstance(payload, dict):
        raise CodecError(f"{owner.name()}::{variant.name}: expected a dict of fields")
    extra = set(payload) - {n for n, _ in fields}
    if extra:
        raise CodecError(f"{owner.name()}::{variant.name}: unknown fields {sorted(extra)}")
    try:
        return b"".join(t.encode(payload[n]) for n, t in fields)
    except KeyError as exc:
        raise CodecError(f"{owner.name()}::{variant.name}: missing field {exc}") from None


def _decode_fields(variant: Variant, data: bytes, pos: int) -> tuple[Any, int]:
    fields = variant.fields
    if not fields:
        return None, pos
    if len(fields) == 1 and fields[0][0] is None:
        return fields[0][1].decode_from(data, pos)
    if fields[0][0] is None:
        values = []
        for _, t in fields:
            v, pos = t.decode_from(data, pos)
            values.append(v)
        return tuple(values), pos
    out = {}
    for n, t in fields:
        out[n], pos = t.decode_from(data, pos)
    return out, pos


class Unit(ScaleType):
    """()."""

    def encode(self, value: Any) -> bytes:
        return b""

    def decode_from(self, data: bytes, pos: int) -> tuple[None, int]:
        return None, pos

    def name(self) -> str:
        return "()"


# The primitives, one instance each: metadata gives each type object one id.
u8, u16, u32, u64, u128, u256 = UInt(1), UInt(2), UInt(4), UInt(8), UInt(16), UInt(32)
boolean = BoolType()
unit = Unit()
compact_u32 = Compact(u32)
compact_u64 = Compact(u64)
compact_u128 = Compact(u128)
byte_vec = Bytes()
text = Bytes()  # `String` in metadata; kept as bytes in this codec
H256 = FixedBytes(32, ("primitive_types", "H256"))


class Lazy(ScaleType):
    """A forward reference (a `RuntimeCall` argument inside a pallet's own calls): encodes and
    decodes as `target`, which is set once the referenced type exists."""

    def __init__(self) -> None:
        self.target: ScaleType | None = None
        self._depth = 0

    def encode(self, value: Any) -> bytes:
        return self.target.encode(value)  # type: ignore[union-attr]

    def decode_from(self, data: bytes, pos: int) -> tuple[Any, int]:
        # A call may hold a call (Sudo.sudo): bound the nesting so hostile bytes cannot
        # exhaust the stack.
        if self._depth >= MAX_NESTING:
            raise CodecError(f"{self.name()}: nested more than {MAX_NESTING} levels")
        self._depth += 1
        try:
            return self.target.decode_from(data, pos)  # type: ignore[union-attr]
        finally:
            self._depth -= 1

    def name(self) -> str:
        return self.target.name() if self.target is not None else "Lazy"
