"""`gensyn-node train` and `gensyn-node verify-segment`."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Adds the ML commands to the top-level parser (filled in by the exact-engine work)."""
