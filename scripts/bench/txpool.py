"""Benchmark of the tx pool's own overhead, each figure next to a baseline measured in the same
run: the bare work the pool cannot avoid (hashing and validating every transaction, or sorting
the ready set), so that the ratio is the pool's bookkeeping cost.

Figures (n transactions, a trivial validator, best of --rounds):
- submit_distinct: n transactions from n accounts (all ready);
- submit_chain: n nonces of one account submitted in reverse (all future, then one promotion);
- submit_full_evicting: n newcomers into a pool full of n lower tips, each evicting one;
- ready_iter: iterate ready() over the n distinct ones, against sorting them by priority;
- block_revalidate: on_block_imported including none, revalidating all n, against n validations.

    .venv/bin/python scripts/bench/txpool.py [--n 1000] [--rounds 5]

Prints one JSON object per figure: {"figure", "value", "baseline", "ratio", "unit", "per_tx_us"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gensyn_node.txpool import TxPool
from runtime.hashing import blake2_256
from runtime.transaction_validity import ValidTransaction


def tag(account: int, nonce: int) -> bytes:
    return account.to_bytes(4, "little") + nonce.to_bytes(4, "little")


def validate(data: bytes, at: object) -> ValidTransaction:
    """Trivial: account, nonce, tip are the first 12 bytes; the chain's nonce is 0 for all."""
    account, nonce, tip = (int.from_bytes(data[i : i + 4], "little") for i in (0, 4, 8))
    requires = (tag(account, nonce - 1),) if nonce else ()
    return ValidTransaction(priority=tip, requires=requires, provides=(tag(account, nonce),), longevity=64)


def make_tx(account: int, nonce: int, tip: int) -> bytes:
    return account.to_bytes(4, "little") + nonce.to_bytes(4, "little") + tip.to_bytes(4, "little") + bytes(120)


def new_pool() -> TxPool:
    return TxPool(validate, blake2_256, max_count=1_000_000, clock=lambda: 0.0)


def best_of(rounds: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(rounds))


def time_submit(datas: list[bytes]) -> float:
    pool = new_pool()
    start = time.perf_counter()
    for data in datas:
        pool.submit(data, None, 0)
    return time.perf_counter() - start


def time_bare_submit(datas: list[bytes]) -> float:
    """What a pool must do at least: hash, validate, remember."""
    seen: dict[bytes, ValidTransaction] = {}
    start = time.perf_counter()
    for data in datas:
        seen[blake2_256(data)] = validate(data, None)
    return time.perf_counter() - start


def time_ready(pool: TxPool) -> float:
    start = time.perf_counter()
    for _ in pool.ready():
        pass
    return time.perf_counter() - start


def time_sort(pool: TxPool) -> float:
    txs = pool.pending()
    start = time.perf_counter()
    sorted(txs, key=lambda tx: (-tx.valid.priority, tx.inserted_at))
    return time.perf_counter() - start


def time_submit_full(low: list[bytes], high: list[bytes]) -> float:
    """A full pool of low tips; every newcomer tips more and evicts one."""
    pool = TxPool(validate, blake2_256, max_count=len(low), clock=lambda: 0.0)
    pool.submit_many(low, None, 0)
    start = time.perf_counter()
    for data in high:
        pool.submit(data, None, 0)
    return time.perf_counter() - start


def time_block(datas: list[bytes]) -> float:
    pool = new_pool()
    pool.submit_many(datas, None, 0)
    start = time.perf_counter()
    pool.on_block_imported((), None, 1)
    return time.perf_counter() - start


def time_validate_all(datas: list[bytes]) -> float:
    start = time.perf_counter()
    for data in datas:
        validate(data, None)
    return time.perf_counter() - start


def report(figure: str, value: float, baseline: float, n: int) -> None:
    print(
        json.dumps(
            {
                "figure": figure,
                "value": round(value * 1e3, 3),
                "baseline": round(baseline * 1e3, 3),
                "ratio": round(value / baseline, 2),
                "unit": "ms",
                "per_tx_us": round(value / n * 1e6, 2),
                "overhead_per_tx_us": round((value - baseline) / n * 1e6, 2),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = args.n, args.rounds
    distinct = [make_tx(a, 0, (a * 7919) % 1000) for a in range(n)]
    chain = [make_tx(0, nonce, 1) for nonce in reversed(range(n))]

    report("submit_distinct", best_of(rounds, lambda: time_submit(distinct)),
           best_of(rounds, lambda: time_bare_submit(distinct)), n)  # fmt: skip
    report("submit_chain", best_of(rounds, lambda: time_submit(chain)),
           best_of(rounds, lambda: time_bare_submit(chain)), n)  # fmt: skip
    low = [make_tx(a, 0, 1) for a in range(n, 2 * n)]
    high = [make_tx(a, 0, 2) for a in range(n)]
    report("submit_full_evicting", best_of(rounds, lambda: time_submit_full(low, high)),
           best_of(rounds, lambda: time_bare_submit(high)), n)  # fmt: skip
    pool = new_pool()
    pool.submit_many(distinct, None, 0)
    report("ready_iter", best_of(rounds, lambda: time_ready(pool)), best_of(rounds, lambda: time_sort(pool)), n)
    chain_pool = new_pool()
    chain_pool.submit_many(chain, None, 0)
    report("ready_iter_chain", best_of(rounds, lambda: time_ready(chain_pool)),
           best_of(rounds, lambda: time_sort(chain_pool)), n)  # fmt: skip
    report("block_revalidate", best_of(rounds, lambda: time_block(distinct)),
           best_of(rounds, lambda: time_validate_all(distinct)), n)  # fmt: skip


if __name__ == "__main__":
    main()
