"""The `gensyn-node` command line: dispatch.py parses and dispatches, node.py (operator
commands), client.py (signed transactions over RPC) and ml.py (local training and segment
checks) add their commands, errors.py holds `CliError`. The console entry point is
`gensyn_node.cli:main`; `python -m gensyn_node.cli` runs the same."""

from gensyn_node.cli.dispatch import main
from gensyn_node.cli.errors import CliError

__all__ = ["CliError", "main"]
