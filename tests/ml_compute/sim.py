"""A chain of the ML-compute runtime driven block by block: every block runs the executive's
`initialize_block` (the pallet's timers), the calls dispatched as signed (or Root) origins in
their own storage layers, and `finalize_block`; calls go through the runtime's SCALE codec.
Signatures and fees are left out (the executive's tests cover them), so the checks here are the
pallet's own. After every block the sim checks that total issuance is exactly the sum of all
balances and that every account's reserved balance is exactly its stakes, the bounties it has
in escrow and its open bonds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gensyn_node.keyring import DEV_NAMES, dev_account
from runtime.block import Header, pre_runtime_digest
from runtime.codec.scale import H256, Struct, Vec
from runtime.context import BlockContext, phase_apply_extrinsic
from runtime.executive import finalize_block, initialize_block
from runtime.frame import NONE, ROOT, DispatchError, signed
from runtime.genesis import build_genesis
from runtime.hashing import blake2_256
from runtime.pallets.balances.storage import TotalIssuance
from runtime.pallets.ml_compute import storage as ml
from runtime.pallets.ml_compute.types import FINAL_STATUSES
from runtime.pallets.system import storage as system
from runtime.pallets.system.account import AccountRecord, get_account
from runtime.params import ChainParameters
from runtime.storage import MemoryState
from runtime.types import Phase
from runtime.version import get_runtime

ENDOWMENT = 10**20
PARAMS = ChainParameters()
UNIT = 10**12
ACCOUNTS = {name: dev_account(name).public for name in DEV_NAMES}
# Short windows so that whole games fit in a few dozen blocks.
FAST_CONFIG = {"assign_delay": 1, "verify_delay": 1, "attest_window": 6, "challenge_window": 8, "move_window": 3,
               "unbonding_delay": 4, "pending_timeout": 5, "max_attempts": 2, "min_solver_stake": UNIT,
               "min_verifier_stake": UNIT, "min_challenge_bond": UNIT}


class CallFailed(AssertionError):
    pass


def get_error_name(runtime: Any, error: Any) -> str:
    """The name of a module error, e.g. "MlCompute.NotAssignedSolver"."""
    kind, value = error
    if kind != "Module":
        return kind
    pallet = runtime.pallets_by_index[value["index"]]
    return f"{pallet.name}.{pallet.errors.names[value['error'][0]]}"


@dataclass
class Sim:
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    datasets: list = field(default_factory=list)
    spec_version: int = 2

    def __post_init__(self) -> None:
        genesis = {"balances": [(a, ENDOWMENT) for a in ACCOUNTS.values()], "sudo": ACCOUNTS["alice"],
                   "spec_version": self.spec_version, "params": PARAMS,
                   "ml_compute": {"config": {**FAST_CONFIG, **self.config}, "datasets": self.datasets}}
        header, storage, _nodes = build_genesis(genesis)
        self.state = MemoryState(storage)
        self.parent = header.hash
        self.number = 0
        self.events: list[tuple[str, Any]] = []
        self.all_events: list[tuple[int, str, Any]] = []

    @property
    def runtime(self) -> Any:
        return get_runtime(system.SpecVersion.get(self.state))

    def block(self, *calls: tuple[Any, ...]) -> list[DispatchError | None]:
        """One block with `calls`: (account or None for Root, call name, args[, pallet])."""
        number = self.number + 1
        header = Header(self.parent, number, bytes(32), bytes(32), (pre_runtime_digest(number, ACCOUNTS["ferdie"]),))
        runtime, ctx = initialize_block(self.state, header)
        ctx.phase = phase_apply_extrinsic(0)
        runtime.dispatch(ctx, NONE, runtime.decode_call(runtime.encode_call("Timestamp", "set", {"now": number * PARAMS.slot_duration_ms})))
        results: list[DispatchError | None] = []
        for i, spec in enumerate(calls):
            who, name, args = spec[:3]
            pallet = spec[3] if len(spec) > 3 else "MlCompute"
            call = runtime.decode_call(runtime.encode_call(pallet, name, args))
            ctx.phase = phase_apply_extrinsic(i + 1)
            ctx.start_layer()
            try:
                runtime.dispatch(ctx, ROOT if who is None else signed(who), call)
            except DispatchError as exc:
                ctx.rollback_layer()
                results.append(exc)
            else:
                ctx.commit_layer()
                results.append(None)
        finalize_block(runtime, ctx, len(calls) + 1)
        record = Struct(("frame_system", "EventRecord"), [("phase", Phase), ("event", runtime.event_enum), ("topics", Vec(H256))])
        decoded = Vec(record).decode(self.state.get(system.Events.key()))
        self.events = [e["event"] for e in decoded]
        self.all_events += [(number, *e["event"]) for e in decoded]
        self.parent = blake2_256(b"sim" + self.seed.to_bytes(8, "little") + number.to_bytes(8, "little") + self.parent)
        self.number = number
        self.check_invariants()
        return results

    def ok(self, *calls: tuple[Any, ...]) -> None:
        """A block whose calls must all succeed."""
        for spec, result in zip(calls, self.block(*calls)):
            if result is not None:
                raise CallFailed(f"{spec[1]} failed: {get_error_name(self.runtime, result.error)} {result}")

    def fails(self, spec: tuple[Any, ...], error: str, at: int | None = None) -> None:
        """`spec` dispatched on the state after the last block (as if in block `at`, default
        the next one, before its hooks) must fail with `error`, change no storage and deposit
        no event (FRAME's assert_noop)."""
        who, name, args = spec[:3]
        pallet = spec[3] if len(spec) > 3 else "MlCompute"
        runtime = self.runtime
        call = runtime.decode_call(runtime.encode_call(pallet, name, args))
        number = self.number + 1 if at is None else at
        ctx = BlockContext(self.state, PARAMS, number, self.parent, ACCOUNTS["ferdie"], number)
        before = dict(self.state.iter_prefix(b""))
        ctx.start_layer()
        try:
            runtime.dispatch(ctx, ROOT if who is None else signed(who), call)
        except DispatchError as exc:
            got = get_error_name(runtime, exc.error)
        else:
            got = "success"
        wrote = dict(self.state.iter_prefix(b"")) != before or ctx.events
        ctx.rollback_layer()
        assert got.split(".")[-1] == error, f"{name}: expected {error}, got {got}"
        assert not wrote, f"{name} failed with {error} but changed storage or deposited events"

    def wait(self, blocks: int) -> None:
        for _ in range(blocks):
            self.block()

    def wait_until(self, number: int) -> None:
        while self.number < number:
            self.block()

    def snapshot(self) -> dict[bytes, bytes]:
        """The pallet's and the accounts' storage (the block's own records excluded)."""
        prefixes = [ml.Jobs.prefix[:16], system.Account.prefix]
        return {k: v for k, v in self.state.iter_prefix(b"") if any(k.startswith(p) for p in prefixes)}

    # --- reads ---

    def job(self, job_id: int) -> dict[str, Any]:
        return ml.Jobs.get(self.state, job_id)

    def dispute(self, job_id: int) -> dict[str, Any] | None:
        return ml.Disputes.get(self.state, job_id)

    def account(self, who: bytes) -> AccountRecord:
        return get_account(self.state, who)

    def worker(self, role: str, who: bytes) -> dict[str, Any] | None:
        return (ml.Solvers if role == "Solver" else ml.Verifiers).get(self.state, who)

    def issuance(self) -> int:
        return TotalIssuance.get(self.state)

    def events_named(self, name: str) -> list[Any]:
        return [payload for _n, pallet, (ev, payload) in self.all_events if pallet == "MlCompute" and ev == name]

    # --- invariants ---

    def check_invariants(self) -> None:
        records = {k: AccountRecord.from_bytes(v) for k, v in self.state.iter_prefix(system.Account.prefix)}
        assert TotalIssuance.get(self.state) == sum(r.free + r.reserved for r in records.values()), "issuance drifted"
        expected: dict[bytes, int] = {}
        for role_map in (ml.Solvers, ml.Verifiers):
            for raw_key, worker in role_map.iter_values(self.state):
                who = role_map.decode_last_key(raw_key)
                expected[who] = expected.get(who, 0) + worker["stake"]
        for _k, job in ml.Jobs.iter_values(self.state):
            if job["status"][0] not in FINAL_STATUSES:
                expected[job["submitter"]] = expected.get(job["submitter"], 0) + job["bounty"]
        for _k, dispute in ml.Disputes.iter_values(self.state):
            expected[dispute["challenger"]] = expected.get(dispute["challenger"], 0) + dispute["bond"]
        for who in ACCOUNTS.values():
            assert get_account(self.state, who).reserved == expected.get(who, 0), "escrow drifted"
