"""ML workers of the node, I/O side: dataset loading and torch tuning, the training directory,
the solver and verifier cores with the solver's cheat modes, checkpoint blobs on a node, and
model export and plots (the `train`, `verify-segment` and `job` commands are in
gensyn_node/cli/ml.py)."""
