"""`mlcompute_*` JSON-RPC methods: what a submitter, solver or verifier (issue 10's workers)
reads of the ML-compute pallet at a block: jobs (one, or a page filtered by status), trained
models and where to fetch them, open disputes with whose move it is, and a job's minimum
solver stake. Registered beside the Substrate methods with one call from the API builder.

The views below are pure functions of a state, so they are tested on the runtime alone; the
handlers only resolve the block (best by default) and convert errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gensyn_node.rpc.api import RpcApi
from gensyn_node.rpc.errors import InvalidParams, RpcError
from runtime.crypto import ss58_encode
from runtime.pallets.ml_compute import storage as ml
from runtime.pallets.ml_compute.draws import compute_detection_ppm, compute_min_solver_stake
from runtime.pallets.ml_compute.types import STATUS_NAMES, MlConfig
from runtime.storage import OverlayState

if TYPE_CHECKING:
    from gensyn_node.rpc.node import RpcNode

MAX_PAGE = 100
MAX_SCAN = 10_000  # jobs looked at per listJobs call; `next` resumes from there
ACCOUNT_FIELDS = {"submitter", "solver", "verifier", "challenger"}
UNKNOWN_BLOCK = 4003


# --- JSON views (pure) ---------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def to_json(value: Any, key: str = "") -> Any:
    """A decoded SCALE value as JSON: accounts as SS58, bytes as 0x-hex, unit enum variants as
    their name, structs with camelCase keys."""
    if isinstance(value, bytes):
        return ss58_encode(value) if key in ACCOUNT_FIELDS and len(value) == 32 else "0x" + value.hex()
    if isinstance(value, dict):
        return {_camel(k): to_json(v, k) for k, v in value.items()}
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return value[0] if value[1] is None else {value[0]: to_json(value[1], key)}
    if isinstance(value, (list, tuple)):
        return [to_json(v, "verifier" if key == "tried" else key) for v in value]
    return value


def _config(state: OverlayState) -> MlConfig:
    raw = ml.Config.get(state)
    return MlConfig() if raw is None else MlConfig.from_scale(raw)


def view_min_solver_stake(state: OverlayState, bounty: int, steps: int, checkpoint_every: int, verifiers: int,
                          segments: int) -> dict[str, Any]:
    """What a solver must stake: the bounty over the chance that the sample holds a faked segment."""
    if min(bounty, steps, checkpoint_every, verifiers, segments) < 0 or steps < 1 or verifiers < 1 or segments < 1 \
            or not 1 <= checkpoint_every <= steps:
        raise InvalidParams("bounty >= 0, steps >= 1, 1 <= checkpointEvery <= steps, verifiers and segments >= 1")
    n_segments = -(-steps // checkpoint_every)
    sampled = min(n_segments, verifiers * segments)
    return {"minSolverStake": compute_min_solver_stake(bounty, n_segments, verifiers, segments,
                                                       _config(state).min_solver_stake),
            "detectionPpm": compute_detection_ppm(n_segments, sampled), "segments": n_segments, "sampled": sampled}


def view_job(state: OverlayState, job_id: int) -> dict[str, Any] | None:
    job = ml.Jobs.get(state, job_id)
    if job is None:
        return None
    v = job["verification"]
    out = {"id": job_id, **to_json(job)}
    out["minSolverStake"] = view_min_solver_stake(state, job["bounty"], job["steps"], job["checkpoint_every"],
                                                  v["verifiers"], v["segments"])["minSolverStake"]
    return out


def view_jobs(state: OverlayState, status: str | None, start: int, count: int) -> dict[str, Any]:
    """Jobs with id >= start (all, or those in `status`), at most `count`; `next` is the id to
    pass as `start` for the following page (null at the end)."""
    if status is not None and status not in STATUS_NAMES:
        raise InvalidParams(f"status must be one of {STATUS_NAMES}")
    if start < 0 or not 1 <= count <= MAX_PAGE:
        raise InvalidParams(f"start >= 0 and 1 <= count <= {MAX_PAGE}")
    end = ml.NextJobId.get(state)
    jobs: list[dict[str, Any]] = []
    job_id = start
    while job_id < end and len(jobs) < count and job_id - start < MAX_SCAN:
        job = ml.Jobs.get(state, job_id)
        if job is not None and (status is None or job["status"][0] == status):
            jobs.append(view_job(state, job_id))  # type: ignore[arg-type]
        job_id += 1
    return {"jobs": jobs, "next": job_id if job_id < end else None}


def view_model(state: OverlayState, job_id: int) -> dict[str, Any] | None:
    """A settled job's trained model: its final state hash, metrics, and where to fetch it."""
    model = ml.TrainedModels.get(state, job_id)
    if model is None:
        return None
    out = to_json(model)
    out["fetch"] = {"method": "mlcompute_getCheckpoint", "stateHash": out["stateHash"], "provider": out["solver"],
                    "checkpointRoot": out["checkpointRoot"], "nCheckpoints": model["n_checkpoints"]}
    return out


def view_dispute(state: OverlayState, job_id: int) -> dict[str, Any] | None:
    """A job's open dispute, with whose move it is and what the move must be about."""
    dispute = ml.Disputes.get(state, job_id)
    if dispute is None:
        return None
    job = ml.Jobs.get(state, job_id)
    out = to_json(dispute)
    phase = dispute["phase"][0]
    mover = dispute["challenger"] if phase == "AwaitAnswer" else job["solver"] if phase != "AwaitReferee" else None
    out["whoseMove"] = None if mover is None else ss58_encode(mover)
    out["refereeStep"] = dispute["lo_step"] if phase == "AwaitReferee" else None
    return out


def view_architecture(state: OverlayState, model: int) -> dict[str, Any] | None:
    arch = ml.Architectures.get(state, model)
    return None if arch is None else {"id": model, **to_json(arch)}


# --- handlers --------------------------------------------------------------------------------------


class MlComputeRpc:
    def __init__(self, node: RpcNode):
        self.node = node

    def _state(self, at: str | None) -> OverlayState:
        store = self.node.store
        if at is None:
            block_hash = store.best_hash
        else:
            try:
                block_hash = bytes.fromhex(at.removeprefix("0x"))
            except ValueError:
                raise InvalidParams("at: not a hex block hash") from None
            if len(block_hash) != 32 or not store.has_block(block_hash):
                raise RpcError(UNKNOWN_BLOCK, "Client error: unknown block", f"block {at} is not known")
        trie = store.state_at(block_hash)
        return OverlayState(trie.get, trie.iter_prefix)

    @staticmethod
    def _id(value: int, what: str = "job") -> int:
        if value < 0 or value >= 1 << 64:
            raise InvalidParams(f"{what} must be a u64")
        return value

    async def mlcompute_getJob(self, job: int, at: str | None = None) -> dict[str, Any] | None:
        return view_job(self._state(at), self._id(job))

    async def mlcompute_listJobs(self, status: str | None = None, start: int = 0, count: int = 50,
                                 at: str | None = None) -> dict[str, Any]:
        return view_jobs(self._state(at), status, start, count)

    async def mlcompute_getModel(self, job: int, at: str | None = None) -> dict[str, Any] | None:
        return view_model(self._state(at), self._id(job))

    async def mlcompute_getArchitecture(self, model: int, at: str | None = None) -> dict[str, Any] | None:
        return view_architecture(self._state(at), self._id(model, "model"))

    async def mlcompute_getDispute(self, job: int, at: str | None = None) -> dict[str, Any] | None:
        return view_dispute(self._state(at), self._id(job))

    async def mlcompute_minSolverStake(self, job: int | dict, at: str | None = None) -> dict[str, Any]:
        """For a job id, or for a job not yet posted: {bounty, steps, checkpointEvery, verifiers, segments}."""
        state = self._state(at)
        if isinstance(job, dict):
            try:
                args = [int(job[k]) for k in ("bounty", "steps", "checkpointEvery", "verifiers", "segments")]
            except (KeyError, TypeError, ValueError):
                raise InvalidParams("job: {bounty, steps, checkpointEvery, verifiers, segments} as integers") from None
            return view_min_solver_stake(state, *args)
        record = ml.Jobs.get(state, self._id(job))
        if record is None:
            raise InvalidParams(f"no job {job}")
        v = record["verification"]
        return view_min_solver_stake(state, record["bounty"], record["steps"], record["checkpoint_every"],
                                     v["verifiers"], v["segments"])


def register_mlcompute_api(api: RpcApi, node: RpcNode) -> None:
    """Add the `mlcompute_*` methods to `api` (called once from `build_api`)."""
    rpc = MlComputeRpc(node)
    for name in ("mlcompute_getJob", "mlcompute_listJobs", "mlcompute_getModel", "mlcompute_getArchitecture",
                 "mlcompute_getDispute", "mlcompute_minSolverStake"):
        api.method(name, getattr(rpc, name))
