"""The exact training engine: bit-for-bit reproducible training for the ML-compute pallet.

Solvers train with it, verifiers re-run segments with it and the runtime's referee replays one
step with it (DESIGN.md §9). Everything here is pure: no I/O, no clock, no threads, no unseeded
randomness; data arrives as tensors from gensyn_node.ml.datasets.
"""
