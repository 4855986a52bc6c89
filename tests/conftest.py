"""Shared test fixtures."""

from gensyn_node.ml.accel import provide_host_accel

# In-process engine and referee tests run with this machine's accelerations, as the node and
# the workers do (same bits either way; tests/ml/test_kernels.py compares both).
provide_host_accel()
