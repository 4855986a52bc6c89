"""Benchmark of the finality gadget's vote handling, next to a baseline measured in the same
run: the ed25519 verification of the same votes, which the gadget cannot avoid, so the ratio
is the gadget's own cost (decoding, tallying, the round machine).

For each voter count: a chain of blocks, and for each round every voter's prevote and
precommit for the head, fed to one observer gadget (it verifies, tallies, finalizes and moves
rounds as a node would). Also a justification of that many precommits checked on import.

    .venv/bin/python scripts/bench/finality.py [--voters 4,16,64] [--rounds 20] [--repeat 3]

Prints one JSON object per voter count: {"figure", "voters", "votes_per_s", "baseline_verify_per_s",
"ratio", "decode_us", "verify_us", "gadget_other_us", "justification_ms", "justification_baseline_ms"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from consensus.finality import FinalityConfig, FinalityGadget
from consensus.finality_messages import Justification, Vote, VoterSet, decode_message, verify_justification
from runtime.crypto import verify_ed25519
from runtime.finality_vote import PRECOMMIT, PREVOTE
from tests.consensus.finality_harness import GENESIS, MemoryChain, child, make_keys


def signed(key, set_id, rnd, step, target):
    unsigned = Vote(set_id, rnd, step, target.hash, target.number, key.public, b"")
    return Vote(set_id, rnd, step, target.hash, target.number, key.public, key.sign(unsigned.payload(GENESIS.hash)))


def run(voters: int, rounds: int) -> dict:
    keys = make_keys(voters)
    vset = VoterSet(0, tuple((k.public, 100) for k in keys))
    chain = MemoryChain({0: vset})
    blocks, head = [], GENESIS
    for _ in range(rounds):
        head = child(head)
        blocks.append(head)
        chain.add(head)
    # Round r finalizes block r: every voter prevotes then precommits it.
    messages = [signed(k, 0, r + 1, step, blocks[r]).encode()
                for r in range(rounds) for step in (PREVOTE, PRECOMMIT) for k in keys]
    gadget = FinalityGadget(chain, FinalityConfig(genesis_hash=GENESIS.hash), lambda data: None, 0)
    started = time.perf_counter()
    for data in messages:
        gadget.on_message(data, 0)
    gadget_s = time.perf_counter() - started
    finalized = chain.finalized.number
    votes = [decode_message(m) for m in messages]
    started = time.perf_counter()
    for data in messages:
        decode_message(data)
    decode_s = time.perf_counter() - started
    started = time.perf_counter()
    for vote in votes:
        verify_ed25519(vote.voter, vote.payload(GENESIS.hash), vote.signature)
    verify_s = time.perf_counter() - started
    # A justification with every voter's precommit, verified as sync would.
    target = blocks[-1]
    just = Justification(0, 1, target.hash, target.number, tuple(signed(k, 0, 1, PRECOMMIT, target) for k in keys), ())
    started = time.perf_counter()
    verify_justification(just, target, vset, GENESIS.hash, chain)
    just_s = time.perf_counter() - started
    started = time.perf_counter()
    for vote in just.precommits:
        verify_ed25519(vote.voter, vote.payload(GENESIS.hash), vote.signature)
    just_base_s = time.perf_counter() - started
    n = len(messages)
    return {"figure": "finality_votes", "voters": voters, "rounds": rounds, "finalized": finalized,
            "votes_per_s": round(n / gadget_s), "baseline_verify_per_s": round(n / verify_s),
            "ratio": round(verify_s / gadget_s, 3), "decode_us": round(decode_s / n * 1e6, 2),
            "verify_us": round(verify_s / n * 1e6, 2),
            "gadget_other_us": round((gadget_s - decode_s - verify_s) / n * 1e6, 2),
            "justification_ms": round(just_s * 1000, 3), "justification_baseline_ms": round(just_base_s * 1000, 3),
            "baseline_is": "ed25519 verification of the same votes, same run"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", default="4,16,64")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for voters in (int(v) for v in args.voters.split(",")):
        results = [run(voters, args.rounds) for _ in range(args.repeat)]
        print(json.dumps(max(results, key=lambda r: r["votes_per_s"])))


if __name__ == "__main__":
    main()
