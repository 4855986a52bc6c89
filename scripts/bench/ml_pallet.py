"""Benchmark: the ML-compute pallet's referee, dispute length and call weights.

1. `referee`, per model (MLP, CNN) on MNIST at batch 64: the runtime's replay of one disputed
   step (pre-state hash and decode, the batch's Merkle proofs, a network of its own, the step,
   the post-state hash), against the bare engine step on the same batch, interleaved round by
   round in the same run; the referee extrinsic's bytes; its weight against the measured time.
2. `dispute_length`: a challenge of a 1,000-step segment played to the end on the pallet
   (synthetic state hashes, one move per block): rounds and blocks, target ⌈log2 1000⌉ + 2.
3. `call_weights`: each call's weight against the block's limit, with the measured time of its
   dispatch on the pallet against a Balances transfer's in the same run.

    .venv/bin/python scripts/bench/ml_pallet.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gensyn_node.ml.accel import provide_host_accel
from gensyn_node.ml.datasets import load_mnist
from runtime.hashing import blake2_256
from runtime.merkle import merkle_levels
from runtime.ml.data import build_proven_batch, compute_leaves, get_batch, verify_proven_batch
from runtime.ml.engine import apply_train_step_, build_network, get_backend
from runtime.ml.job import HyperParams, TrainingJob
from runtime.ml.referee import build_fresh_network, decode_batch, replay_disputed_step
from runtime.ml.segments import compute_commitment, get_checkpoint_proof, initial_state, run_segment
from runtime.ml.state import compute_state_hash, decode_state_checked, encode_state
from runtime.pallets.ml_compute import calls as ml_calls
from runtime.pallets.ml_compute.referee import compute_initial_state_hash
from runtime.pallets.ml_compute.registry import ARCHITECTURE_FACTS, MNIST_ROOT
from runtime.params import ChainParameters
from runtime.version import get_runtime
from tests.ml_compute.sim import ACCOUNTS, UNIT, Sim

RT = get_runtime(2)
LIMIT = ChainParameters().max_block_weight


def bench_referee(splits, levels, model: int, rounds: int) -> dict:
    job = TrainingJob(model, MNIST_ROOT, b"\x07" * 32, HyperParams(batch_size=64), 10, 5)
    state = run_segment(initial_state(job), job, splits.train, 0, 3)
    pre = encode_state(state)
    pre_hash = compute_state_hash(state)
    batch = build_proven_batch(splits.train, levels, job.seed, 3, 64)
    images, labels = batch.images.numpy().tobytes(), bytes(batch.labels.tolist())
    proofs = [list(p) for p in batch.proofs]
    call = RT.encode_call("MlCompute", "referee", {"job": 0, "pre_state": pre, "images": images, "labels": labels,
                                                   "proofs": proofs})
    weight = ml_calls.compute_referee_call_weight(0, pre, images, labels, proofs)
    bare_images, bare_labels = get_batch(splits.train, job.seed, 3, 64)
    net = build_network(state.model, 64, get_backend("cpu"))
    parts = {"decode_and_hash_ms": [], "batch_proofs_ms": [], "network_ms": [], "step_and_hash_ms": []}
    referee_ms, bare_ms, referee_cpu_ms = [], [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        post = replay_disputed_step(job, 60000, 3, pre, pre_hash, images, labels, proofs)
        t1 = time.perf_counter()
        referee_cpu_ms.append((time.process_time() - c0) * 1e3)
        bare = state.clone()
        apply_train_step_(bare, bare_images, bare_labels, job.hyper, net)
        t2 = time.perf_counter()
        referee_ms.append((t1 - t0) * 1e3)
        bare_ms.append((t2 - t1) * 1e3)
        assert post == compute_state_hash(bare)
        # The breakdown, each part on its own.
        a = time.perf_counter()
        decoded = decode_state_checked(pre, pre_hash)
        b = time.perf_counter()
        proven = decode_batch(job, 3, 60000, images, labels, proofs)
        verify_proven_batch(proven, MNIST_ROOT, 60000, job.seed, 64)
        c = time.perf_counter()
        fresh = build_fresh_network(decoded.model, 64, get_backend("cpu"))
        d = time.perf_counter()
        apply_train_step_(decoded, proven.images, proven.labels, job.hyper, fresh)
        compute_state_hash(decoded)
        e = time.perf_counter()
        for key, dt in zip(parts, (b - a, c - b, d - c, e - d)):
            parts[key].append(dt * 1e3)
    ms = statistics.median(referee_ms)
    return {"figure": "referee", "model": state.model.name, "batch": 64, "referee_ms": round(ms, 2),
            "baseline_step_ms": round(statistics.median(bare_ms), 2),
            "ratio": round(ms / statistics.median(bare_ms), 2),
            "breakdown_ms": {k: round(statistics.median(v), 2) for k, v in parts.items()},
            "input_bytes": len(call), "pre_state_bytes": len(pre), "weight": weight,
            "referee_cpu_ms": round(statistics.median(referee_cpu_ms), 2),
            "weight_ms": weight / 1e9, "weight_margin": round(weight / 1e9 / ms, 2),
            "weight_margin_cpu": round(weight / 1e9 / statistics.median(referee_cpu_ms), 2),
            "weight_of_block": round(weight / LIMIT, 4), "rounds": rounds,
            "baseline": "the bare exact-engine step on the same batch (cached network), same run, interleaved"}


def bench_dispute_length(segment_steps: int = 1000) -> dict:
    """Play a challenge of one `segment_steps`-step segment: the solver's hashes agree with the
    challenger's up to a random fake step, the challenger answers honestly."""
    sim = Sim(seed=5, config={"max_steps": 10_000})
    bob, eve, alice = ACCOUNTS["bob"], ACCOUNTS["eve"], ACCOUNTS["alice"]
    sim.ok((bob, "register_solver", {"stake": 10_000 * UNIT}))
    sim.ok((alice, "submit_job", {"model": 2, "dataset": MNIST_ROOT,
                                  "hyper": {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 8},
                                  "steps": segment_steps, "checkpoint_every": segment_steps, "bounty": 10 * UNIT,
                                  "verification": {"verifiers": 1, "segments": 1, "fee": 0}, "deadline": 5}))
    sim.block()
    fake = 617
    initial = compute_initial_state_hash(sim.job(0))

    def honest(t: int) -> bytes:
        return initial if t == 0 else blake2_256(b"honest" + t.to_bytes(8, "little"))

    def solver(t: int) -> bytes:
        return honest(t) if t < fake else blake2_256(b"fake" + t.to_bytes(8, "little"))

    ckpts = [solver(0), solver(segment_steps)]
    sim.ok((bob, "commit", {"job": 0, "checkpoint_root": compute_commitment(ckpts), "final_state_hash": ckpts[1],
                            "n_checkpoints": 2, "metrics": {"loss_q16": 0, "train_accuracy_ppm": 0, "test_accuracy_ppm": 0}}))
    sim.block()
    sim.ok((eve, "challenge", {"job": 0, "segment": 0, "claimed_end_hash": honest(segment_steps), "bond": UNIT}))
    start = sim.number
    sim.ok((bob, "reveal_segment", {"job": 0, "segment": 0, "start_hash": ckpts[0], "start_proof": get_checkpoint_proof(ckpts, 0),
                                    "end_hash": ckpts[1], "end_proof": get_checkpoint_proof(ckpts, 1)}))
    while (d := sim.dispute(0))["phase"][0] != "AwaitReferee":
        if d["phase"][0] == "AwaitMidpoint":
            sim.ok((bob, "bisect", {"job": 0, "mid_hash": solver(d["mid_step"])}))
        else:
            sim.ok((eve, "answer", {"job": 0, "agree": d["mid_hash"] == honest(d["mid_step"])}))
    d = sim.dispute(0)
    assert (d["lo_step"], d["hi_step"]) == (fake - 1, fake)
    rounds = d["rounds"] + 1  # and the referee's
    blocks = sim.number - start + 1
    return {"figure": "dispute_length", "segment_steps": segment_steps, "rounds": rounds,
            "target_rounds": math.ceil(math.log2(segment_steps)) + 2, "blocks": blocks,
            "blocks_are": "challenge block excluded: reveal, one block per bisect and per answer, the referee",
            "narrowed_to": [d["lo_step"], d["hi_step"]]}


def bench_call_weights(rounds: int) -> dict:
    """Each call's declared weight against the block's limit, and the measured dispatch time
    of the cheap calls on a sim against a Balances transfer in the same run."""
    from runtime.context import BlockContext
    from runtime.frame import DispatchError, signed

    sim = Sim(seed=9)
    alice = ACCOUNTS["alice"]
    args = {"model": 2, "dataset": MNIST_ROOT,
            "hyper": {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 8},
            "steps": 100, "checkpoint_every": 10, "bounty": 10 * UNIT,
            "verification": {"verifiers": 2, "segments": 2, "fee": UNIT // 10}, "deadline": 5}

    def timed(pallet: str, name: str, call_args: dict) -> float:
        times = []
        for _ in range(rounds * 20):
            ctx = BlockContext(sim.state, ChainParameters(), sim.number + 1, sim.parent)
            call = RT.decode_call(RT.encode_call(pallet, name, call_args))
            ctx.start_layer()
            t0 = time.perf_counter()
            try:
                RT.dispatch(ctx, signed(alice), call)
            except DispatchError:
                pass
            times.append(time.perf_counter() - t0)
            ctx.rollback_layer()
        return statistics.median(times) * 1e6

    baseline_us = timed("Balances", "transfer_keep_alive", {"dest": ("Id", ACCOUNTS["bob"]), "value": UNIT})
    measured = {"submit_job": timed("MlCompute", "submit_job", args),
                "register_solver": timed("MlCompute", "register_solver", {"stake": 100 * UNIT})}
    weights = {}
    for call in ml_calls.CALLS:
        if call.name == "referee":
            continue
        if call.name == "publish_checkpoint":  # follows the state's bytes: the largest model's, 1,024 checkpoints
            largest = max(f.state_bytes for f in ARCHITECTURE_FACTS.values())
            w = call.weight(job=0, index=0, state=bytes(largest), hashes=[bytes(32)] * 1024)
            weights["publish_checkpoint_of_largest_model"] = {"weight": w, "of_block": round(w / LIMIT, 6)}
            continue
        if callable(call.weight):  # reveal_segment: segment 0 also computes the initial state
            for label, w in (("reveal_segment", call.weight(job=0, segment=1)),
                             ("reveal_segment_of_segment_0", call.weight(job=0, segment=0))):
                weights[label] = {"weight": w, "of_block": round(w / LIMIT, 6)}
            continue
        weights[call.name] = {"weight": call.weight, "of_block": round(call.weight / LIMIT, 6)}
    for name, us in measured.items():
        weights[name].update({"measured_us": round(us, 1), "ratio_to_transfer": round(us / baseline_us, 2),
                              "weight_us": weights[name]["weight"] / 1e6})
    return {"figure": "call_weights", "block_limit": LIMIT, "calls": weights, "transfer_dispatch_us": round(baseline_us, 1),
            "baseline": "Balances.transfer_keep_alive dispatched on the same sim state, same run",
            "referee": "see the referee figures (its weight follows the model and the batch)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    provide_host_accel()
    torch.set_num_threads(1)
    splits = load_mnist()
    levels = merkle_levels(compute_leaves(splits.train.images.numpy(), splits.train.labels.numpy()))
    assert levels[-1][0] == MNIST_ROOT
    for model in (1, 2):
        print(json.dumps(bench_referee(splits, levels, model, args.rounds)), flush=True)
    print(json.dumps(bench_dispute_length()), flush=True)
    print(json.dumps(bench_call_weights(args.rounds)), flush=True)


if __name__ == "__main__":
    main()
