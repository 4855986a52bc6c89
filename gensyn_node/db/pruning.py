"""The pruning modes an operator picks (`--state-pruning`, `--blocks-pruning`), as Substrate
spells them, and the record of them in the database.

Data path step: the chain store reads the recorded modes when it opens its database and keeps
using them; a node started with a mode of another kind than the one recorded is refused, as
Substrate refuses it, because an archive cannot be turned into a pruned store (its nodes carry
no reference counts) and a pruned store cannot give back what it deleted.

- state: `archive` keeps every state; `N` keeps the states of the last N finalized blocks and of
  every block not yet finalized. Changing N is allowed (as in Substrate); archive <-> N is not.
- blocks: `archive` keeps every body, forks included; `archive-canonical` keeps the bodies of the
  finalized chain and deletes those of the forks finality rules out; `N` keeps the bodies of the
  last N finalized blocks only. Headers and justifications are always kept.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_STATE_WINDOW = 256
ARCHIVE = "archive"
ARCHIVE_CANONICAL = "archive-canonical"
MAX_WINDOW = 2**32 - 1


class PruningModeError(ValueError):
    """A pruning mode that does not parse, or one that does not match the database's."""


def _parse_window(text: str, flag: str) -> int:
    if not text.isdigit():
        raise PruningModeError(f"{flag} takes archive or a number of blocks, not {text!r}")
    window = int(text)
    if not 1 <= window <= MAX_WINDOW:
        raise PruningModeError(f"{flag} {window}: the number of blocks kept must be 1 to {MAX_WINDOW}")
    return window


@dataclass(frozen=True, slots=True)
class StatePruning:
    """`window` is None for archive, else how many finalized blocks keep their state."""

    window: int | None = DEFAULT_STATE_WINDOW

    @classmethod
    def parse(cls, text: str) -> StatePruning:
        if text == ARCHIVE:
            return cls(None)
        return cls(_parse_window(text, "--state-pruning"))

    @property
    def is_archive(self) -> bool:
        return self.window is None

    def __str__(self) -> str:
        return ARCHIVE if self.window is None else str(self.window)


@dataclass(frozen=True, slots=True)
class BlocksPruning:
    """`mode` is archive, archive-canonical, or the number of finalized blocks whose bodies stay."""

    mode: str | int = ARCHIVE_CANONICAL

    @classmethod
    def parse(cls, text: str) -> BlocksPruning:
        if text in (ARCHIVE, ARCHIVE_CANONICAL):
            return cls(text)
        return cls(_parse_window(text, "--blocks-pruning"))

    @property
    def keeps_forks(self) -> bool:
        return self.mode == ARCHIVE

    @property
    def window(self) -> int | None:
        """How many finalized bodies are kept, or None when all canonical ones are."""
        return self.mode if isinstance(self.mode, int) else None

    @property
    def kind(self) -> str:
        return "window" if isinstance(self.mode, int) else str(self.mode)

    def __str__(self) -> str:
        return str(self.mode)


def check_state_mode(recorded: StatePruning, wanted: StatePruning) -> None:
    """Verify that a store recorded with `recorded` can be opened with `wanted`."""
    if recorded.is_archive != wanted.is_archive:
        raise PruningModeError(
            f"the database was created with --state-pruning {recorded}; it cannot be opened with "
            f"--state-pruning {wanted} (start it with --state-pruning {recorded}, or purge-chain and sync again)")


def check_blocks_mode(recorded: BlocksPruning, wanted: BlocksPruning) -> None:
    """Verify that a store recorded with `recorded` can be opened with `wanted`."""
    if recorded.kind != wanted.kind:
        raise PruningModeError(
            f"the database was created with --blocks-pruning {recorded}; it cannot be opened with "
            f"--blocks-pruning {wanted} (start it with --blocks-pruning {recorded}, or purge-chain and sync again)")
