"""`gensyn-node solver` and `gensyn-node verifier`: the chain-driven worker daemons
(gensyn_node/ml/solver_daemon.py, verifier_daemon.py), each a process of its own talking to a
node over JSON-RPC. One line per event on stderr; Ctrl-C or SIGTERM stops them cleanly (exit 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gensyn_node.cli.client import parse_amount
from gensyn_node.cli.errors import CliError
from gensyn_node.keyring import DEV_NAMES, KeyError_, Keypair, keypair_from_uri


def add_commands(sub: argparse._SubParsersAction) -> None:
    solver = sub.add_parser("solver", help="stake as a solver, train assigned jobs, commit, defend disputes")
    _common(solver)
    solver.add_argument("--dir", default=None, help="training directories (default ~/.cache/gensyn-node/solver-KEY)")
    solver.add_argument("--cheat", default=None, metavar="MODE",
                        help="dishonest solver for tests and demos: fake-segment[:I], skip-steps[:K], other-data, "
                             "withhold (trains honestly, uploads and publishes nothing)")
    solver.add_argument("--no-progress", action="store_true", help="no progress bar")
    solver.add_argument("--no-upload", action="store_true",
                        help="keep checkpoints in the training directory; publish on chain only those a verifier "
                             "reports unavailable")
    solver.set_defaults(handler=cmd_solver)

    verifier = sub.add_parser("verifier", help="stake as a verifier, re-run drawn segments, attest or challenge")
    _common(verifier)
    verifier.add_argument("--bond", default=None, help="challenge bond (default: the chain's minimum)")
    verifier.add_argument("--cheat", choices=["lazy"], default=None, help="lazy: attest without re-running")
    verifier.set_defaults(handler=cmd_verifier)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default="http://127.0.0.1:9944", help="the node's JSON-RPC URL")
    parser.add_argument("--key", required=True, help="dev name (bob) or secret URI (//Bob, 0x<seed>); sr25519")
    parser.add_argument("--stake", required=True, help="stake to register with: plancks, or <n>u in whole units")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--cache-dir", default=None, help="where decoded data sets are cached")
    parser.add_argument("--poll-ms", type=int, default=250, help="how often to ask the node for its best head")


def parse_key(text: str) -> Keypair:
    uri = "//" + text.capitalize() if text.lower() in DEV_NAMES else text
    try:
        return keypair_from_uri(uri)
    except KeyError_ as exc:
        raise CliError(f"--key: {exc}") from None


def _run(args: argparse.Namespace, build) -> int:  # type: ignore[no-untyped-def]
    from gensyn_node.cli.ml import _setup_torch
    from gensyn_node.ml.chain import ChainError, ChainView
    from gensyn_node.ml.workers import StopFlag
    from gensyn_node.rpc.client import RpcClientException

    _setup_torch(args.threads, args.device)
    key = parse_key(args.key)
    stake = parse_amount(args.stake)
    stop = StopFlag()
    stop.install()
    view = ChainView(args.rpc, key)
    daemon = build(view, stake)
    try:
        daemon.run(stop)
    except KeyboardInterrupt:
        daemon.emit("stopped", reason="signal")
        return 0
    except (ChainError, RpcClientException) as exc:
        raise CliError(str(exc)) from exc
    finally:
        view.close()
    return 0


def cmd_solver(args: argparse.Namespace) -> int:
    from gensyn_node.ml.cheats import CHEAT_MODES
    from gensyn_node.ml.datasets import get_cache_dir
    from gensyn_node.ml.solver_daemon import SolverDaemon

    modes = (*CHEAT_MODES, "withhold")
    if args.cheat and args.cheat.partition(":")[0] not in modes:
        raise CliError(f"--cheat {args.cheat}: one of {', '.join(modes)}")
    key = parse_key(args.key)
    base = Path(args.dir) if args.dir else get_cache_dir(args.cache_dir) / f"solver-{key.address[:12]}"
    return _run(args, lambda view, stake: SolverDaemon(view, stake, base, cheat=args.cheat,
                                                       upload=not args.no_upload, progress=not args.no_progress, device=args.device,
                                                       cache_dir=args.cache_dir, poll_s=args.poll_ms / 1000))


def cmd_verifier(args: argparse.Namespace) -> int:
    from gensyn_node.ml.verifier_daemon import VerifierDaemon

    bond = None if args.bond is None else parse_amount(args.bond)
    return _run(args, lambda view, stake: VerifierDaemon(view, stake, lazy=args.cheat == "lazy", bond=bond,
                                                         device=args.device, cache_dir=args.cache_dir,
                                                         poll_s=args.poll_ms / 1000))
