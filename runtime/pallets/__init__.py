"""Pallets: each a folder with the same anatomy (storage, events, errors, calls)."""
