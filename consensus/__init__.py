"""Consensus: slots, authoring, verification, fork choice, finality."""
