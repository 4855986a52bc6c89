"""Command line: `gensyn-node <command>`. Each command group lives in its own module of this
package (node.py, client.py, ml.py) and adds its sub-parsers here; an operator mistake ends in a
one-line message and exit code 2, not a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from gensyn_node.cli.errors import CliError


def _command_groups() -> list[Callable[[argparse._SubParsersAction], None]]:
    # Imported lazily so that `gensyn-node --help` does not import torch.
    from gensyn_node.cli import client, devnet, ml, node, workers

    return [node.add_commands, devnet.add_commands, client.add_commands, ml.add_commands, workers.add_commands]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gensyn-node", description="gensyn-node: a PoS chain with an ML-compute market")
    parser.add_argument("--log", default="warning", help="log level (debug, info, warning, error), anywhere on the line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add_commands in _command_groups():
        add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    log_level = "warning"
    if "--log" in argv[:-1]:
        at = argv.index("--log")
        log_level = argv[at + 1]
        del argv[at : at + 2]
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--log"):
        argv = ["run", *argv]  # `gensyn-node --dev` is `gensyn-node run --dev`, as in Substrate
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.WARNING),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
