"""The portable type registry of metadata V14 (scale-info's `PortableRegistry`), built from the
codec's own type objects: the step of the data path where the runtime describes its SCALE
types to clients, so that a client encodes calls and decodes storage and events exactly as the
codec does.

`TypeRegistry.register(t)` walks a `ScaleType` and everything it reaches and returns its type
id; ids are contiguous from 0 in registration order. Named types (structs, enums) are keyed by
object identity and get their id before their fields are walked, so recursive types (a
`RuntimeCall` inside `Sudo.sudo`) close on themselves; anonymous types (sequences, arrays,
tuples, compacts, primitives, `Option<T>`) are keyed by their shape, so `Vec<u8>` is one type
however many `Bytes` objects the pallets hold, as scale-info interns them.

Substrate's conventions clients rely on, kept here: `Option<T>` and `Result<T, E>` carry their
type parameters; a fixed byte array with a path (`AccountId32`, `H256`) is a composite around
`[u8; N]`; `Era` is an enum of `Immortal` and `Mortal1(u8)` .. `Mortal255(u8)`; `#[codec(compact)]`
of a newtype (`Compact<Perbill>`) is a compact of the composite.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from runtime.codec.scale import (
    BoolType,
    Bytes,
    Compact,
    Enum,
    FixedBytes,
    Lazy,
    Option,
    ScaleType,
    Struct,
    Tuple,
    UInt,
    Unit,
    Variant,
    Vec,
    encode_compact,
    text,
    u8,
)
from runtime.types import EraType

# scale-info's TypeDefPrimitive, by index.
PRIMITIVES = ("bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "u256",
              "i8", "i16", "i32", "i64", "i128", "i256")
_MAX_VARIANT_INDEX = 255


class MetadataError(TypeError):
    """A type the metadata cannot describe (a ScaleType subclass with no V14 description)."""


# --- the registry's entries -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    name: str | None
    ty: int
    type_name: str | None = None
    docs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VariantDef:
    name: str
    fields: tuple[Field, ...]
    index: int
    docs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TypeDef:
    """One scale-info TypeDef: `kind` is composite, variant, sequence, array, tuple, primitive or
    compact; the other attributes are those its kind uses."""

    kind: str
    fields: tuple[Field, ...] = ()
    variants: tuple[VariantDef, ...] = ()
    inner: int = 0  # sequence, array and compact element type
    length: int = 0  # array
    items: tuple[int, ...] = ()  # tuple members
    primitive: str = ""


@dataclass(frozen=True, slots=True)
class PortableType:
    id: int
    path: tuple[str, ...]
    params: tuple[tuple[str, int | None], ...]
    definition: TypeDef
    docs: tuple[str, ...] = ()


# --- encoding ----------------------------------------------------------------------------------------


def encode_str(value: str) -> bytes:
    raw = value.encode()
    return encode_compact(len(raw)) + raw


def encode_seq(items: Sequence[bytes]) -> bytes:
    return encode_compact(len(items)) + b"".join(items)


def encode_bytes(value: bytes) -> bytes:
    return encode_compact(len(value)) + value


def encode_strs(values: Sequence[str]) -> bytes:
    return encode_seq([encode_str(v) for v in values])


def encode_option(value: bytes | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + value


def _encode_field(f: Field) -> bytes:
    return b"".join((
        encode_option(None if f.name is None else encode_str(f.name)),
        encode_compact(f.ty),
        encode_option(None if f.type_name is None else encode_str(f.type_name)),
        encode_strs(f.docs),
    ))


def _encode_variant(v: VariantDef) -> bytes:
    return encode_str(v.name) + encode_seq([_encode_field(f) for f in v.fields]) + bytes((v.index,)) + encode_strs(v.docs)


def _encode_def(d: TypeDef) -> bytes:
    if d.kind == "composite":
        return b"\x00" + encode_seq([_encode_field(f) for f in d.fields])
    if d.kind == "variant":
        return b"\x01" + encode_seq([_encode_variant(v) for v in d.variants])
    if d.kind == "sequence":
        return b"\x02" + encode_compact(d.inner)
    if d.kind == "array":
        return b"\x03" + d.length.to_bytes(4, "little") + encode_compact(d.inner)
    if d.kind == "tuple":
        return b"\x04" + encode_seq([encode_compact(i) for i in d.items])
    if d.kind == "primitive":
        return b"\x05" + bytes((PRIMITIVES.index(d.primitive),))
    if d.kind == "compact":
        return b"\x06" + encode_compact(d.inner)
    raise MetadataError(f"unknown type definition kind {d.kind!r}")


def encode_portable_type(t: PortableType) -> bytes:
    params = [encode_str(name) + encode_option(None if ty is None else encode_compact(ty)) for name, ty in t.params]
    return b"".join((encode_compact(t.id), encode_strs(t.path), encode_seq(params), _encode_def(t.definition),
                     encode_strs(t.docs)))


# --- Rust-like type names (a field's `type_name`, shown by clients) -----------------------------------


def type_name(t: ScaleType) -> str:
    """The name a field's type is shown by: the last path segment, or the Rust spelling."""
    t = resolve(t)
    if isinstance(t, Option):
        return f"Option<{type_name(t.inner)}>"
    if isinstance(t, Compact):
        return f"Compact<{t.path[-1] if t.path else t.inner.primitive}>"
    if isinstance(t, Vec):
        return f"Vec<{type_name(t.inner)}>"
    if isinstance(t, Tuple):
        return "(" + ", ".join(type_name(i) for i in t.items) + ")"
    if isinstance(t, FixedBytes) and not t.path:
        return f"[u8; {t.size}]"
    if t is text:
        return "String"
    if t.path:
        return t.path[-1]
    return t.name()


def resolve(t: ScaleType, substitutions: dict[int, ScaleType] | None = None) -> ScaleType:
    """Follow forward references (`Lazy`) to the type they stand for."""
    seen = 0
    while isinstance(t, Lazy):
        if substitutions and id(t) in substitutions:
            t = substitutions[id(t)]
            continue
        if t.target is None or seen > 16:
            raise MetadataError("a forward reference (Lazy) has no target")
        t = t.target
        seen += 1
    return t


def derived_params(t: Struct | Enum) -> tuple[tuple[str, ScaleType], ...]:
    """The type parameters of Substrate's generic types that clients read, when the codec
    object does not declare them: `Result<T, E>` and `EventRecord<E, T>` (polkadot.js finds the
    runtime's event type as EventRecord's first parameter)."""
    if isinstance(t, Enum) and t.path == ("Result",):
        return (("T", _sole_field(t.by_name["Ok"].fields, "Result::Ok")),
                ("E", _sole_field(t.by_name["Err"].fields, "Result::Err")))
    if isinstance(t, Struct) and t.path[-1:] == ("EventRecord",):
        fields = dict(t.fields)
        topics = resolve(fields["topics"])
        if not isinstance(topics, Vec):
            raise MetadataError("EventRecord.topics must be a Vec")
        return (("E", fields["event"]), ("T", topics.inner))
    return ()


def _sole_field(fields: Sequence[tuple[str | None, ScaleType]], what: str) -> ScaleType:
    if len(fields) != 1:
        raise MetadataError(f"{what} must hold exactly one value")
    return fields[0][1]


# --- the registry ------------------------------------------------------------------------------------


class TypeRegistry:
    """Walks ScaleType objects and assigns contiguous type ids; `substitutions` maps a `Lazy`
    (by id) to the type it stands for in this runtime (System.Events' record type)."""

    def __init__(self, substitutions: dict[int, ScaleType] | None = None):
        self.types: list[PortableType | None] = []
        self._ids: dict[Hashable, int] = {}
        self._pinned: list[ScaleType] = []  # keeps keyed objects alive so id() stays unique
        self._substitutions = substitutions or {}

    # registration -------------------------------------------------------------------------------

    def register(self, t: ScaleType) -> int:
        """The type id of `t`, registering it and everything it reaches on first sight."""
        t = resolve(t, self._substitutions)
        if isinstance(t, UInt):
            return self._intern(("prim", t.primitive), (), (), TypeDef("primitive", primitive=t.primitive))
        if isinstance(t, BoolType):
            return self._intern(("prim", "bool"), (), (), TypeDef("primitive", primitive="bool"))
        if t is text:
            return self._intern(("prim", "str"), (), (), TypeDef("primitive", primitive="str"))
        if isinstance(t, Bytes):
            return self._sequence(u8)
        if isinstance(t, Vec):
            return self._sequence(t.inner)
        if isinstance(t, Compact):
            return self._compact(t)
        if isinstance(t, FixedBytes):
            return self._fixed_bytes(t)
        if isinstance(t, (Tuple, Unit)):
            return self.register_tuple(t.items if isinstance(t, Tuple) else ())
        if isinstance(t, Option):
            return self._option(t)
        if isinstance(t, EraType):
            return self._era(t)
        if isinstance(t, (Struct, Enum)):
            return self._named(t)
        raise MetadataError(f"no metadata V14 description for {type(t).__name__} ({t.name()})")

    def register_tuple(self, items: Sequence[ScaleType]) -> int:
        return self.register_tuple_ids([self.register(i) for i in items])

    def register_tuple_ids(self, ids: Sequence[int]) -> int:
        """A tuple of types already registered (the signed extensions' composites)."""
        key = tuple(ids)
        return self._intern(("tuple", key), (), (), TypeDef("tuple", items=key))

    def register_composite(self, path: tuple[str, ...], fields: Sequence[tuple[str | None, ScaleType]],
                           params: Sequence[tuple[str, int | None]] = (), docs: tuple[str, ...] = ()) -> int:
        """A composite that has no codec object of its own (the runtime, signed extensions)."""
        built = self._fields(fields)
        key = ("composite", path, tuple(params), built)
        return self._intern(key, path, tuple(params), TypeDef("composite", fields=built), docs)

    def portable_types(self) -> list[PortableType]:
        if any(t is None for t in self.types):
            raise MetadataError("a type was reserved but never described")
        return list(self.types)  # type: ignore[arg-type]

    def encode(self) -> bytes:
        """PortableRegistry { types: Vec<PortableType> }."""
        return encode_seq([encode_portable_type(t) for t in self.portable_types()])

    # helpers ------------------------------------------------------------------------------------

    def _intern(self, key: Hashable, path: tuple[str, ...], params: tuple[tuple[str, int | None], ...],
                definition: TypeDef, docs: tuple[str, ...] = ()) -> int:
        found = self._ids.get(key)
        if found is not None:
            return found
        type_id = len(self.types)
        self.types.append(PortableType(type_id, path, params, definition, docs))
        self._ids[key] = type_id
        return type_id

    def _named(self, t: Struct | Enum) -> int:
        """A struct or enum, keyed by identity; its id is reserved before its fields are walked,
        since they may reach `t` again."""
        key = ("named", id(t))
        found = self._ids.get(key)
        if found is not None:
            return found
        type_id = len(self.types)
        self.types.append(None)
        self._ids[key] = type_id
        self._pinned.append(t)
        params = self._params(t)
        if isinstance(t, Struct):
            definition = TypeDef("composite", fields=self._fields(t.fields))
        else:
            definition = TypeDef("variant", variants=self._variants(t.variants))
        self.types[type_id] = PortableType(type_id, t.path, params, definition, tuple(t.docs))
        return type_id

    def _params(self, t: Struct | Enum) -> tuple[tuple[str, int | None], ...]:
        declared = tuple(getattr(t, "params", ()) or ()) or derived_params(t)
        return tuple((name, None if ty is None else self.register(ty)) for name, ty in declared)

    def _fields(self, fields: Sequence[tuple[str | None, ScaleType]]) -> tuple[Field, ...]:
        return tuple(Field(name, self.register(ty), type_name(resolve(ty, self._substitutions))) for name, ty in fields)

    def _variants(self, variants: Sequence[Variant]) -> tuple[VariantDef, ...]:
        return tuple(VariantDef(v.name, self._fields(v.fields), v.index, tuple(v.docs)) for v in variants)

    def _sequence(self, inner: ScaleType) -> int:
        inner_id = self.register(inner)
        return self._intern(("seq", inner_id), (), (), TypeDef("sequence", inner=inner_id))

    def _array(self, size: int) -> int:
        inner_id = self.register(u8)
        return self._intern(("array", size, inner_id), (), (), TypeDef("array", inner=inner_id, length=size))

    def _fixed_bytes(self, t: FixedBytes) -> int:
        array_id = self._array(t.size)
        if not t.path:
            return array_id
        field = Field(None, array_id, f"[u8; {t.size}]")
        return self._intern(("fixed", t.path, t.size), t.path, (), TypeDef("composite", fields=(field,)))

    def _compact(self, t: Compact) -> int:
        inner_id = self.register(t.inner)
        if t.path:  # `#[codec(compact)]` of a newtype: Compact<Perbill>, Perbill(u32)
            inner_id = self.register_composite(t.path, [(None, t.inner)])
        return self._intern(("compact", inner_id), (), (), TypeDef("compact", inner=inner_id))

    def _option(self, t: Option) -> int:
        inner_id = self.register(t.inner)
        variants = (VariantDef("None", (), 0), VariantDef("Some", (Field(None, inner_id, type_name(t.inner)),), 1))
        return self._intern(("Option", inner_id), ("Option",), (("T", inner_id),), TypeDef("variant", variants=variants))

    def _era(self, t: EraType) -> int:
        """Substrate's `Era`: `Immortal` (index 0), then `MortalN(u8)` at index N: the first
        byte of a mortal era is the variant index and its second byte the field."""
        byte = Field(None, self.register(u8), "u8")
        variants = (VariantDef("Immortal", (), 0),) + tuple(
            VariantDef(f"Mortal{i}", (byte,), i) for i in range(1, _MAX_VARIANT_INDEX + 1))
        return self._intern(("era", t.path), t.path, (), TypeDef("variant", variants=variants))

