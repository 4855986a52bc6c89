"""The pallet anatomy (Substrate's FRAME without the macros): every pallet declares its calls
with stable indices, its storage items with SCALE types and Substrate's key layout, its events,
its errors and its hooks in one `Pallet` object. The type registry, the codec of calls and
events, the storage layout and (later) metadata V14 all read these declarations.

Types → constants → containers → helpers, as the consensus specs order them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.codec.scale import Enum, ScaleType, Variant
from runtime.hashing import STORAGE_HASHERS, twox_128
from runtime.storage import OverlayState

# --- origins -------------------------------------------------------------------------------------

ROOT = ("Root", None)
NONE = ("None", None)


def signed(account: bytes) -> tuple[str, bytes]:
    return ("Signed", account)


class DispatchError(Exception):
    """A call failed: its storage layer is rolled back, the fee is still charged, and
    `ExtrinsicFailed` carries `error` (a DispatchError SCALE value, e.g. a module error)."""

    def __init__(self, error: Any, message: str = ""):
        super().__init__(message or str(error))
        self.error = error


class BadOrigin(DispatchError):
    def __init__(self, message: str = "bad origin"):
        super().__init__(("BadOrigin", None), message)


class ArithmeticOverflow(DispatchError):
    def __init__(self, message: str = "arithmetic overflow"):
        super().__init__(("Arithmetic", ("Overflow", None)), message)


def ensure_signed(origin: tuple[str, Any]) -> bytes:
    """Verify that the call comes from a signed account; return the account."""
    if origin[0] != "Signed":
        raise BadOrigin("expected a signed origin")
    return origin[1]


def ensure_root(origin: tuple[str, Any]) -> None:
    """Verify that the call comes from Root (sudo or governance)."""
    if origin[0] != "Root":
        raise BadOrigin("expected the root origin")


def ensure_none(origin: tuple[str, Any]) -> None:
    """Verify that the call is an inherent (unsigned, put in by the block author)."""
    if origin[0] != "None":
        raise BadOrigin("expected an inherent (none origin)")


# --- storage -------------------------------------------------------------------------------------


class StorageValue:
    """One value at twox128(pallet) ++ twox128(item)."""

    kind = "Plain"

    def __init__(self, name: str, value_type: ScaleType, default: Any = None, docs: str = ""):
        self.name, self.value_type, self.default, self.docs = name, value_type, default, docs
        self.prefix = b""
        self.pallet_name = ""

    def bind(self, pallet_name: str) -> None:
        self.pallet_name = pallet_name
        self.prefix = twox_128(pallet_name.encode()) + twox_128(self.name.encode())

    def key(self) -> bytes:
        return self.prefix

    def get(self, state: OverlayState) -> Any:
        raw = state.get(self.prefix)
        return self.default if raw is None else self.value_type.decode(raw)

    def put(self, state: OverlayState, value: Any) -> None:
        state.set(self.prefix, self.value_type.encode(value))

    def kill(self, state: OverlayState) -> None:
        state.delete(self.prefix)


class StorageMap(StorageValue):
    """A map at twox128(pallet) ++ twox128(item) ++ hasher(SCALE(key)), one hasher per key part."""

    kind = "Map"

    def __init__(self, name: str, key_types: Sequence[tuple[str, ScaleType]], value_type: ScaleType,
                 default: Any = None, docs: str = ""):
        super().__init__(name, value_type, default, docs)
        self.key_types = list(key_types)
        self._hashers = [STORAGE_HASHERS[h] for h, _ in self.key_types]

    def key(self, *parts: Any) -> bytes:  # type: ignore[override]
        if len(parts) != len(self.key_types):
            raise TypeError(f"{self.name} takes {len(self.key_types)} key parts")
        out = self.prefix
        for hasher, (_, key_type), part in zip(self._hashers, self.key_types, parts):
            out += hasher(key_type.encode(part))
        return out

    def get(self, state: OverlayState, *parts: Any) -> Any:  # type: ignore[override]
        raw = state.get(self.key(*parts))
        return self.default if raw is None else self.value_type.decode(raw)

    def contains(self, state: OverlayState, *parts: Any) -> bool:
        return state.get(self.key(*parts)) is not None

    def insert(self, state: OverlayState, *parts_and_value: Any) -> None:
        *parts, value = parts_and_value
        state.set(self.key(*parts), self.value_type.encode(value))

    def remove(self, state: OverlayState, *parts: Any) -> None:
        state.delete(self.key(*parts))

    def iter_values(self, state: OverlayState) -> list[tuple[bytes, Any]]:
        """(raw key, value) of every entry, in key order."""
        return [(k, self.value_type.decode(v)) for k, v in state.iter_prefix(self.prefix)]

    def decode_last_key(self, raw_key: bytes) -> Any:
        """The last key part of a raw key, for the transparent hashers (…Concat, Identity)."""
        hasher_name, key_type = self.key_types[-1]
        skip = {"Blake2_128Concat": 16, "Twox64Concat": 8, "Identity": 0}.get(hasher_name)
        if skip is None:
            raise TypeError(f"{self.name}: hasher {hasher_name} is not transparent")
        if len(self.key_types) != 1:
            raise TypeError(f"{self.name}: only single-key maps decode keys")
        return key_type.decode(raw_key[len(self.prefix) + skip :])


# --- calls, events, errors -----------------------------------------------------------------------


@dataclass
class Call:
    """A dispatchable: `handler(ctx, origin, **args)`; `weight` is its ref_time weight, a
    constant or a function of the args; stable `index` within the pallet."""

    name: str
    index: int
    args: list[tuple[str, ScaleType]]
    handler: Callable[..., None]
    weight: int | Callable[..., int]
    docs: str = ""
    pays_fee: bool = True
    dispatch_class: str = "Normal"
    # May come unsigned from anyone (a report with its own proof): the pool and the block check
    # it by dispatching it, and a block holding one that fails is invalid.
    unsigned: bool = False

    def get_weight(self, args: dict[str, Any]) -> int:
        return self.weight(**args) if callable(self.weight) else self.weight


def event_enum(pallet_name: str, variants: list[Variant]) -> Enum:
    return Enum((f"pallet_{_snake(pallet_name)}", "pallet", "Event"), variants)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


class ModuleErrors:
    """A pallet's named errors, indexed 0..n without gaps as metadata requires."""

    def __init__(self, pallet_index: int, pallet_name: str, names: Sequence[str], docs: dict[str, str] | None = None):
        self.pallet_index, self.pallet_name, self.names = pallet_index, pallet_name, list(names)
        self.index = {n: i for i, n in enumerate(self.names)}
        docs = docs or {}
        self.enum = Enum(
            (f"pallet_{_snake(pallet_name)}", "pallet", "Error"),
            [Variant(n, i, [], (docs[n],) if n in docs else ()) for i, n in enumerate(self.names)],
        )

    def __call__(self, name: str, message: str = "") -> DispatchError:
        """The DispatchError::Module for error `name` (raise it)."""
        module_error = {"index": self.pallet_index, "error": bytes((self.index[name], 0, 0, 0))}
        return DispatchError(("Module", module_error), message or f"{self.pallet_name}.{name}")


@dataclass
class Pallet:
    """One pallet's declarations; `construct_runtime` (runtime/version.py) lists them by index."""

    name: str
    index: int
    calls: list[Call] = field(default_factory=list)
    storage: list[StorageValue] = field(default_factory=list)
    events: Enum | None = None
    errors: ModuleErrors | None = None
    constants: list[tuple[str, ScaleType, Callable[[Any], Any], str]] = field(default_factory=list)
    on_initialize: Callable[[Any], None] | None = None
    on_finalize: Callable[[Any], None] | None = None
    genesis_build: Callable[[Any, dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        for item in self.storage:
            item.bind(self.name)
        self.call_enum = Enum(
            (f"pallet_{_snake(self.name)}", "pallet", "Call"),
            [Variant(c.name, c.index, list(c.args), (c.docs,) if c.docs else ()) for c in self.calls],
        )
        self.calls_by_name = {c.name: c for c in self.calls}
