"""The one error of the command line: every command group raises it for an operator mistake,
and `dispatch.main` turns it into one line on stderr and exit code 2."""

from __future__ import annotations


class CliError(Exception):
    """An operator mistake (bad flag value, busy port, locked database): printed, exit code 2."""
