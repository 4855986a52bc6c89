"""The exact training engine: bit-for-bit reproducible training for the ML-compute pallet.

Solvers train with it, verifiers re-run segments with it and the runtime's referee replays one
step with it (DESIGN.md §9). Everything here is pure: no I/O, no clock, no threads, no unseeded
randomness; data arrives as tensors from gensyn_node.ml.datasets.

    models.py    the on-chain model registry (MLP, CNN), canonical specs, integer-derived init
    job.py       a job's hyper-parameters (integers in units of 2^-16) and their validation
    fixed.py     grids, round-half-even requantization, exact int8 / float products
    layers.py    linear, conv (NHWC, patches), max-pool, ReLU, flatten: forward and backward
    softmax.py   the fixed-point softmax cross-entropy, in int64
    engine.py    one exact training step (forward, loss, backward, SGD with momentum)
    state.py     training state, its canonical int64 bytes and blake2b-256 hash
    data.py      content-addressed data sets, Merkle proofs, the batch of each step
    segments.py  segments, checkpoints, the solver's commitment, the referee's replay
    native.py    the float32 torch baseline (nn.Module + torch.optim.SGD)
    errors.py    the named errors of all of the above
"""
