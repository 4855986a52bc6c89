"""The pure state machine: codec, executive, pallets, state trie, exact training engine.

Nothing in this package does I/O, reads a clock, starts a thread or draws unseeded randomness.
"""
