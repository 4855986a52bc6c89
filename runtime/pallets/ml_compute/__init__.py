"""ML-compute pallet: training jobs with the bounty in escrow, solver and verifier stakes,
assignment by stake-weighted draw, commitments, sampled verification, bisection disputes
refereed by the runtime's own replay of one exact training step, slashing and settlement
(DESIGN.md §9).

    types.py         SCALE types, the pallet's config and its constants
    storage.py       storage items (jobs, registries, stakes, disputes, the agenda)
    events.py        events, one for every step of a job's life
    errors.py        named errors
    registry.py      architectures and data sets on chain; referee input size and weight
    agenda.py        timers by block; the config
    draws.py         stake-weighted draws and segment samples from chain randomness
    stakes.py        solver and verifier registration, locks, unbonding
    jobs.py          submit, cancel, assignment, commit, deadlines, settlement, refunds
    verification.py  the verifiers' draw and their attestations
    dispute.py       challenge, bisection moves, timeouts and slashing
    referee.py       the runtime's recomputation of the one disputed step
    hooks.py         on_initialize: the agenda of timers, the storage migration
    calls.py         the dispatchables with stable indices and their weights
    genesis.py       genesis (and upgrade) build of the registries and the config
"""

from runtime.pallets.ml_compute.pallet import PALLET

__all__ = ["PALLET"]
