"""ML workers of the node: local training, segment verification, dataset loading (I/O side)."""
