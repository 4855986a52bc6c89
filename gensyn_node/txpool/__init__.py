"""Transaction pool: the step of the data path between `author_submitExtrinsic` and the author.

Modelled on Substrate's graph pool (sc-transaction-pool). Each transaction is validated against
the best block's state by an injected `validate` function (the executive's
`validate_transaction`) and queued by the tags its `ValidTransaction` carries:

- *ready*: every tag it requires is provided by a ready transaction (or it requires none); the
  block author takes these best first through `TxPool.ready()`;
- *future*: some required tag is provided by no ready transaction yet (a nonce gap); it is
  promoted as soon as a ready transaction provides the missing tags.

A tag is provided by at most one ready transaction: a newcomer providing the tag of a ready one
replaces it ("usurps" it) only with a higher priority than the replaced ones together. The pool
is bounded in count and bytes; when full, a newcomer evicts the worst transactions (future ones
first) or is refused. Invalid transactions are banned for a while. After each imported block the
included ones are pruned and every other one is revalidated against the new best state; on a
reorg the retracted ones are resubmitted.

The pool is synchronous pure logic: the node serialises calls, passes the best block, and feeds
the RPC watchers from the status events registered with `on_event`:

| status    | detail               | when                                                        |
|-----------|----------------------|-------------------------------------------------------------|
| "ready"   | None                 | entered the ready queue (submitted, promoted, revalidated)  |
| "future"  | None                 | entered the future queue (submitted, or its dependency left)|
| "usurped" | hash of the usurper  | replaced by a transaction with a higher priority           |
| "dropped" | reason (str)         | evicted by the limits, expired (valid_till), lost a tag race|
| "invalid" | reason (str)         | reported invalid or failed revalidation (and banned)        |

A submission that is refused raises a `PoolError` and emits nothing. "inBlock" and "finalized"
are the node's to emit: the pool only prunes (see `PruneResult.in_block`).
"""

from gensyn_node.txpool.base import (
    DROPPED,
    FUTURE,
    INVALID,
    READY,
    USURPED,
    BlockRef,
    EventCallback,
    EventDetail,
    HashFn,
    PoolTx,
    PruneResult,
    ValidateFn,
)
from gensyn_node.txpool.errors import (
    AlreadyImported,
    CycleDetected,
    Invalid,
    PoolError,
    PoolFull,
    TemporarilyBanned,
    TooLowPriority,
)
from gensyn_node.txpool.pool import TxPool
from gensyn_node.txpool.ready import ReadyIterator

__all__ = [
    "DROPPED",
    "FUTURE",
    "INVALID",
    "READY",
    "USURPED",
    "AlreadyImported",
    "BlockRef",
    "CycleDetected",
    "EventCallback",
    "EventDetail",
    "HashFn",
    "Invalid",
    "PoolError",
    "PoolFull",
    "PoolTx",
    "PruneResult",
    "ReadyIterator",
    "TemporarilyBanned",
    "TooLowPriority",
    "TxPool",
    "ValidateFn",
]
