"""ML workers of the node, I/O side: dataset loading and torch tuning (the `train` and
`verify-segment` commands are in gensyn_node/cli/ml.py)."""
