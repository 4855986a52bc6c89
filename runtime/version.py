"""construct_runtime and the table of runtimes by spec_version (py-evm's fork table).

A `Runtime` is the list of pallets in force, the `RuntimeCall`/`RuntimeEvent` enums built from
them, and the version clients see. The executive picks the runtime by the spec_version stored in
state, so a governed upgrade (System.upgrade_runtime) switches the code at a block boundary and
every node switches at the same block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from runtime.codec.errors import CodecError
from runtime.codec.scale import H256, Enum, Lazy, Struct, Variant, Vec
from runtime.context import BlockContext
from runtime.frame import Call, Pallet
from runtime.pallets import (
    balances,
    ml_compute,
    offences,
    staking,
    sudo,
    system,
    timestamp,
    transaction_payment,
)
from runtime.pallets.system import storage as system_storage
from runtime.pallets.system.calls import KNOWN_SPEC_VERSIONS
from runtime.types import Phase, RuntimeVersion

SPEC_NAME = "gensyn-node"
IMPL_NAME = "gensyn-node-py"
TRANSACTION_VERSION = 1


def _api_id(name: str) -> bytes:
    """Substrate's runtime API id: blake2b with an 8-byte digest of the trait name."""
    return hashlib.blake2b(name.encode(), digest_size=8).digest()


# The runtime APIs a client may ask for (by blake2_64 of the name, as Substrate lists them).
RUNTIME_APIS = [
    (_api_id("Core"), 4),
    (_api_id("Metadata"), 2),
    (_api_id("BlockBuilder"), 6),
    (_api_id("TaggedTransactionQueue"), 3),
    (_api_id("AccountNonceApi"), 1),
    (_api_id("TransactionPaymentApi"), 4),
]


class UnknownCall(CodecError):
    """A call names a pallet or call index this runtime does not have."""


PalletFactory = Callable[[Lazy, dict[str, Any]], Pallet]


class Runtime:
    def __init__(self, spec_version: int, pallets: Sequence[Pallet | PalletFactory]):
        self.spec_version = spec_version
        call_ref, runtime_ref = Lazy(), {"runtime": self}
        made = [p if isinstance(p, Pallet) else p(call_ref, runtime_ref) for p in pallets]
        self.pallets = sorted(made, key=lambda p: p.index)
        self.pallets_by_index = {p.index: p for p in self.pallets}
        self.pallets_by_name = {p.name: p for p in self.pallets}
        self.call_enum = Enum(("gensyn_runtime", "RuntimeCall"),
                              [Variant(p.name, p.index, [(None, p.call_enum)]) for p in self.pallets if p.calls])
        call_ref.target = self.call_enum
        self.event_enum = Enum(("gensyn_runtime", "RuntimeEvent"),
                               [Variant(p.name, p.index, [(None, p.events)]) for p in self.pallets if p.events and p.events.variants])
        self.event_record = Struct(("frame_system", "EventRecord"),
                                   [("phase", Phase), ("event", self.event_enum), ("topics", Vec(H256))])
        self.transaction_version = TRANSACTION_VERSION
        self.version = {
            "spec_name": SPEC_NAME.encode(),
            "impl_name": IMPL_NAME.encode(),
            "authoring_version": 1,
            "spec_version": spec_version,
            "impl_version": 1,
            "apis": [{"id": i, "version": v} for i, v in RUNTIME_APIS],
            "transaction_version": TRANSACTION_VERSION,
            "state_version": 1,
        }
        self.version_bytes = RuntimeVersion.encode(self.version)

    def decode_call(self, call_bytes: bytes) -> tuple[int, str, dict[str, Any]]:
        """(pallet index, call name, args) of SCALE call bytes; exactly the bytes, nothing after."""
        if len(call_bytes) < 2:
            raise CodecError("call: truncated")
        pallet = self.pallets_by_index.get(call_bytes[0])
        if pallet is None or not pallet.calls:
            raise UnknownCall(f"call: unknown pallet index {call_bytes[0]}")
        variant = pallet.call_enum.by_index.get(call_bytes[1])
        if variant is None:
            raise UnknownCall(f"call: {pallet.name} has no call index {call_bytes[1]}")
        (name, args) = pallet.call_enum.decode(call_bytes[1:])
        return pallet.index, name, args or {}

    def encode_call(self, pallet_name: str, call_name: str, args: dict[str, Any] | None = None) -> bytes:
        pallet = self.pallets_by_name[pallet_name]
        return bytes((pallet.index,)) + pallet.call_enum.encode((call_name, args or {}))

    def get_call(self, call: tuple[int, str, dict[str, Any]]) -> Call:
        return self.pallets_by_index[call[0]].calls_by_name[call[1]]

    def dispatch(self, ctx: BlockContext, origin: Any, call: tuple[int, str, dict[str, Any]]) -> None:
        """Run the call's handler; raises DispatchError when the call fails."""
        self.get_call(call).handler(ctx, origin, **call[2])

    def on_initialize(self, ctx: BlockContext) -> None:
        for pallet in self.pallets:
            if pallet.on_initialize is not None:
                pallet.on_initialize(ctx)

    def on_finalize(self, ctx: BlockContext) -> None:
        for pallet in self.pallets:
            if pallet.on_finalize is not None:
                pallet.on_finalize(ctx)


_BASE_PALLETS: list[Pallet | PalletFactory] = [
    system.PALLET, timestamp.PALLET, balances.PALLET, transaction_payment.PALLET, staking.PALLET, sudo.make_pallet,
    offences.PALLET,
]

RUNTIMES: dict[int, Runtime] = {
    1: Runtime(1, _BASE_PALLETS),
    # 2: the ML-compute market (jobs, stakes, verification, disputes refereed by the runtime).
    2: Runtime(2, [*_BASE_PALLETS, ml_compute.PALLET]),
}
KNOWN_SPEC_VERSIONS.update(RUNTIMES)
LATEST_SPEC_VERSION = max(RUNTIMES)
# System.Events' declared type follows the newest runtime in the table; a Runtime built elsewhere
# (a test's, a tool's) does not repoint it. Metadata describes each runtime's own record type.
system_storage.EventRecord.target = RUNTIMES[LATEST_SPEC_VERSION].event_record


class UnknownRuntime(LookupError):
    """State names a spec_version this node has no runtime for: the node must be upgraded."""


def get_runtime(spec_version: int) -> Runtime:
    runtime = RUNTIMES.get(spec_version)
    if runtime is None:
        raise UnknownRuntime(f"no runtime with spec_version {spec_version} in this node")
    return runtime
