"""Operator commands: `run` (and `--dev`), `key`, `build-spec`, `purge-chain`, `export-blocks`,
`import-blocks`. Operator mistakes (bad flags, busy ports, a locked or foreign database) end in
one clear line, never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import struct
import sys
import tempfile
from pathlib import Path

import trio

from gensyn_node.chain_spec import ChainSpecError, load_chain_spec
from gensyn_node.cli.errors import CliError
from gensyn_node.keyring import KeyError_, generate_seed, keypair_from_seed, keypair_from_uri
from runtime.crypto import ED25519, SR25519

log = logging.getLogger(__name__)
_LEN = struct.Struct(">I")
MAX_EXPORTED_BLOCK = 16 * 1024 * 1024


def add_commands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a node")
    add_run_flags(run)
    run.set_defaults(handler=cmd_run)

    key = sub.add_parser("key", help="generate or inspect keys")
    key_sub = key.add_subparsers(dest="key_command", metavar="generate|inspect", required=True)
    gen = key_sub.add_parser("generate", help="a new random key")
    gen.add_argument("--scheme", choices=["sr25519", "ed25519"], default="sr25519")
    gen.set_defaults(handler=cmd_key_generate)
    inspect = key_sub.add_parser("inspect", help="public key and address of a secret URI (//Alice, 0x<seed>)")
    inspect.add_argument("uri")
    inspect.add_argument("--scheme", choices=["sr25519", "ed25519"], default="sr25519")
    inspect.set_defaults(handler=cmd_key_inspect)

    spec = sub.add_parser("build-spec", help="print a chain spec as JSON")
    spec.add_argument("--chain", default="dev", help="dev, local, or a path to a JSON spec")
    spec.set_defaults(handler=cmd_build_spec)

    purge = sub.add_parser("purge-chain", help="delete the chain database under a base path")
    purge.add_argument("--base-path", required=True)
    purge.add_argument("-y", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(handler=cmd_purge_chain)

    export = sub.add_parser("export-blocks", help="write the canonical chain's blocks to a file")
    export.add_argument("--base-path", required=True)
    export.add_argument("--chain", default="dev")
    export.add_argument("--from", dest="start", type=int, default=1)
    export.add_argument("--to", dest="end", type=int, default=None)
    export.add_argument("output")
    export.set_defaults(handler=cmd_export_blocks)

    imp = sub.add_parser("import-blocks", help="import blocks from a file, with every check")
    imp.add_argument("--base-path", required=True)
    imp.add_argument("--chain", default="dev")
    imp.add_argument("input")
    imp.set_defaults(handler=cmd_import_blocks)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dev", action="store_true", help="single-validator dev chain (alice) in a temporary directory")
    parser.add_argument("--chain", default=None, help="dev, local, or a path to a JSON chain spec")
    parser.add_argument("--base-path", default=None, help="where the database and keys live")
    parser.add_argument("--tmp", action="store_true", help="use a temporary base path, deleted on exit")
    parser.add_argument("--validator", action="store_true",
                        help="author blocks with --key, or with the session key in the base path's keystore")
    parser.add_argument("--key", default=None, help="session key secret URI (//Alice or 0x<seed>), ed25519")
    parser.add_argument("--alice", action="store_true", help="shortcut for --validator --key //Alice")
    parser.add_argument("--bob", action="store_true", help="shortcut for --validator --key //Bob")
    parser.add_argument("--name", default="gensyn-node")
    parser.add_argument("--rpc-port", type=int, default=9944)
    parser.add_argument("--rpc-external", action="store_true", help="listen on all interfaces, not 127.0.0.1")
    parser.add_argument("--rpc-methods", choices=["safe", "unsafe", "auto"], default="auto")
    parser.add_argument("--rpc-max-connections", type=int, default=100)
    parser.add_argument("--rpc-max-connections-per-ip", type=int, default=16,
                        help="connections one address may hold (each loopback address counts alone)")
    parser.add_argument("--rpc-rate-limit", type=float, default=10_000.0, help="calls per second per connection")
    parser.add_argument("--no-rpc", action="store_true")
    parser.add_argument("--port", type=int, default=30333, help="p2p TCP port (default 30333)")
    parser.add_argument("--listen-addr", action="append", default=[],
                        help="p2p listen multiaddr, e.g. /ip4/127.0.0.1/tcp/30333 (repeatable; overrides --port)")
    parser.add_argument("--bootnodes", nargs="*", default=[], help="peers to connect to: /ip4/IP/tcp/PORT/p2p/PEERID")
    parser.add_argument("--reserved-nodes", nargs="*", default=[],
                        help="peers always kept connected: /ip4/IP/tcp/PORT/p2p/PEERID")
    parser.add_argument("--reserved-only", action="store_true",
                        help="connect to and accept only the reserved nodes (changed live by "
                             "system_addReservedPeer / system_removeReservedPeer)")
    parser.add_argument("--public-addr", action="append", default=[],
                        help="p2p multiaddr announced to peers (repeatable), e.g. /ip4/203.0.113.5/tcp/30333")
    parser.add_argument("--node-key", default=None,
                        help="network key (32-byte ed25519 seed as hex); default <base-path>/network/secret")
    parser.add_argument("--no-network", action="store_true", help="run without p2p networking")
    parser.add_argument("--prometheus-port", type=int, default=9615)
    parser.add_argument("--no-prometheus", action="store_true")
    parser.add_argument("--state-pruning", default=None, metavar="archive|N",
                        help="keep the states of the last N finalized blocks (and every unfinalized one), or all "
                             "(archive); default: the database's recorded mode, 256 for a new one")
    parser.add_argument("--blocks-pruning", default=None, metavar="archive|archive-canonical|N",
                        help="keep every body, those of the finalized chain, or of its last N blocks; default: the "
                             "database's recorded mode, archive-canonical for a new one")


def _port(value: int, flag: str) -> int:
    if not 0 <= value <= 65535:
        raise CliError(f"{flag} {value} is not a port (0-65535)")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    from gensyn_node.chain_db import ChainStoreError
    from gensyn_node.db.kv import StoreError
    from gensyn_node.db.pruning import BlocksPruning, PruningModeError, StatePruning
    from gensyn_node.metrics import MetricsPortBusy
    from gensyn_node.ml.accel import provide_host_accel
    from gensyn_node.rpc.server import RpcConfig, RpcPortBusy
    from gensyn_node.service import Node, NodeConfig
    from p2p.addresses import PortBusy
    from p2p.nodekey import NodeKeyError

    provide_host_accel()  # the referee of a dispute runs the exact engine inside block execution
    chain = args.chain or "dev"
    if args.dev:
        args.validator = True
        args.key = args.key or "//Alice"
    if args.alice or args.bob:
        args.validator = True
        args.key = "//Alice" if args.alice else "//Bob"
    try:
        spec = load_chain_spec(chain)
    except ChainSpecError as exc:
        raise CliError(str(exc)) from None
    try:
        session_key = keypair_from_uri(args.key, ED25519) if args.key else None
    except KeyError_ as exc:
        raise CliError(f"--key: {exc}") from None
    try:
        rpc = RpcConfig(port=_port(args.rpc_port, "--rpc-port"), external=args.rpc_external,
                        rpc_methods_mode=args.rpc_methods, max_connections=args.rpc_max_connections,
                        max_connections_per_ip=args.rpc_max_connections_per_ip,
                        rate_limit_per_second=args.rpc_rate_limit)
    except ValueError as exc:
        raise CliError(f"rpc: {exc}") from None
    temporary = args.tmp or (args.dev and args.base_path is None)
    base_path = tempfile.mkdtemp(prefix="gensyn-node-") if temporary else (args.base_path or _default_base_path(spec.id))
    if args.validator and session_key is None:
        session_key = _keystore_session_key(base_path)
    node_key, listen_addrs, public_addrs, bootnodes = _network_flags(args, spec)
    try:
        state_pruning = None if args.state_pruning is None else StatePruning.parse(args.state_pruning)
        blocks_pruning = None if args.blocks_pruning is None else BlocksPruning.parse(args.blocks_pruning)
    except PruningModeError as exc:
        raise CliError(str(exc)) from None
    config = NodeConfig(spec=spec, base_path=base_path, name=args.name, validator=args.validator,
                        state_pruning=state_pruning, blocks_pruning=blocks_pruning,
                        session_key=session_key, rpc=rpc, rpc_enabled=not args.no_rpc,
                        prometheus_port=None if args.no_prometheus else _port(args.prometheus_port, "--prometheus-port"),
                        p2p_port=_port(args.port, "--port"), bootnodes=bootnodes,
                        network_enabled=not args.no_network, node_key=node_key, listen_addrs=listen_addrs,
                        public_addrs=public_addrs, reserved_nodes=list(args.reserved_nodes),
                        reserved_only=args.reserved_only, informant=_informant)
    try:
        Path(base_path).mkdir(parents=True, exist_ok=True)
        try:
            node = Node(config)
        except StoreError as exc:
            raise CliError(str(exc)) from None
        except ChainStoreError as exc:
            raise CliError(str(exc)) from None
        print(f"gensyn-node: chain={spec.name} base_path={base_path} best=#{node.store.best_header().number} "
              f"genesis=0x{node.genesis.hash.hex()}", file=sys.stderr, flush=True)
        try:
            trio.run(_run_until_signal, node)
        except (RpcPortBusy, MetricsPortBusy, PortBusy, NodeKeyError) as exc:
            raise CliError(str(exc)) from None
        except BaseExceptionGroup as group:
            operator_error = group.subgroup((RpcPortBusy, MetricsPortBusy, PortBusy, NodeKeyError))
            if operator_error is None:
                raise
            raise CliError(str(_first_leaf(operator_error))) from None
    finally:
        if temporary:
            shutil.rmtree(base_path, ignore_errors=True)
    return 0


def _network_flags(args: argparse.Namespace, spec) -> tuple[bytes | None, list[str], list[str], list[str]]:  # type: ignore[no-untyped-def]
    """--node-key, --listen-addr, --public-addr, --bootnodes and --reserved-nodes checked here, each bad value
    named in one line before anything starts."""
    from p2p.addresses import InvalidAddress, parse_peer_addr
    from p2p.nodekey import NodeKeyError, parse_node_key

    try:
        node_key = parse_node_key(args.node_key) if args.node_key else None
    except NodeKeyError as exc:
        raise CliError(str(exc)) from None
    port = _port(args.port, "--port")
    listen = list(args.listen_addr) or [f"/ip4/0.0.0.0/tcp/{port}"]
    for addr in [*listen, *args.public_addr]:
        if not addr.startswith("/ip4/") or "/tcp/" not in addr:
            raise CliError(f"p2p address {addr!r}: expected /ip4/<ip>/tcp/<port>")
    bootnodes = list(args.bootnodes) or list(spec.boot_nodes)
    for addr in bootnodes:
        try:
            parse_peer_addr(addr)
        except InvalidAddress as exc:
            raise CliError(f"--bootnodes: {exc}") from None
    for addr in args.reserved_nodes:
        try:
            parse_peer_addr(addr)
        except InvalidAddress as exc:
            raise CliError(f"--reserved-nodes: {exc}") from None
    return node_key, listen, list(args.public_addr), bootnodes


def _informant(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _run_until_signal(node: object) -> None:
    async with trio.open_nursery() as nursery:
        started = await nursery.start(node.run)  # type: ignore[attr-defined]
        print(f"gensyn-node: ready rpc_port={started.rpc_port}", file=sys.stderr, flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _sig in signals:
                nursery.cancel_scope.cancel()
                break


def _keystore_session_key(base_path: str):  # type: ignore[no-untyped-def]
    """A validator without --key uses the session key in its keystore, made on first start."""
    from gensyn_node.keystore import KeystoreError, load_or_create_session_key

    try:
        key, created = load_or_create_session_key(base_path)
    except KeystoreError as exc:
        raise CliError(str(exc)) from None
    if created:
        print(f"gensyn-node: new session key 0x{key.public.hex()} stored in {base_path}/keystore; "
              f"register it with `tx validate --session-key 0x{key.public.hex()}`", file=sys.stderr, flush=True)
    return key


def _first_leaf(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group


def _default_base_path(chain_id: str) -> str:
    return os.path.join(os.path.expanduser("~"), ".local", "share", "gensyn-node", chain_id)


def cmd_key_generate(args: argparse.Namespace) -> int:
    seed = generate_seed()
    key = keypair_from_seed(seed, SR25519 if args.scheme == "sr25519" else ED25519)
    print(f"Secret seed:       0x{seed.hex()}\nPublic key (hex):  0x{key.public.hex()}\n"
          f"SS58 Address:      {key.address}\nScheme:            {args.scheme}")
    return 0


def cmd_key_inspect(args: argparse.Namespace) -> int:
    try:
        key = keypair_from_uri(args.uri, SR25519 if args.scheme == "sr25519" else ED25519)
    except KeyError_ as exc:
        raise CliError(str(exc)) from None
    print(f"Secret URI:        {args.uri}\nPublic key (hex):  0x{key.public.hex()}\n"
          f"SS58 Address:      {key.address}\nScheme:            {args.scheme}")
    return 0


def cmd_build_spec(args: argparse.Namespace) -> int:
    try:
        print(load_chain_spec(args.chain).to_json())
    except ChainSpecError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_purge_chain(args: argparse.Namespace) -> int:
    db = Path(args.base_path) / "db"
    if not db.exists():
        print(f"{db} does not exist; nothing to purge")
        return 0
    if not args.y:
        answer = input(f"Remove the chain database {db}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("aborted")
            return 1
    shutil.rmtree(db)
    print(f"{db} removed")
    return 0


def _open_store(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from gensyn_node.chain_db import ChainStore, ChainStoreError
    from gensyn_node.db.kv import StoreError

    try:
        spec = load_chain_spec(args.chain)
        genesis, _storage, nodes = spec.build_genesis()
        store = ChainStore.open(str(Path(args.base_path) / "db"))
    except (ChainSpecError, StoreError) as exc:
        raise CliError(str(exc)) from None
    try:
        store.initialize(genesis, nodes)
    except ChainStoreError as exc:
        store.close()
        raise CliError(str(exc)) from None
    return spec, store


def cmd_export_blocks(args: argparse.Namespace) -> int:
    _spec, store = _open_store(args)
    count = 0
    try:
        end = store.best_header().number if args.end is None else args.end
        with open(args.output, "wb") as out:
            for number in range(max(args.start, 1), end + 1):
                block_hash = store.hash_at(number)
                if block_hash is None:
                    break
                data = store.get_block(block_hash).encode()  # type: ignore[union-attr]
                out.write(_LEN.pack(len(data)) + data)
                count += 1
    finally:
        store.close()
    print(f"exported {count} blocks to {args.output}")
    return 0


def cmd_import_blocks(args: argparse.Namespace) -> int:
    import time

    from consensus.verification import make_seal_check
    from gensyn_node.block_import import BlockImportError, import_block
    from gensyn_node.ml.accel import provide_host_accel
    from gensyn_node.sigcache import SignatureCache
    from gensyn_node.sigworker import SignatureWorker
    from runtime.block import Block
    from runtime.codec.errors import CodecError

    provide_host_accel()
    spec, store = _open_store(args)
    seal_check = make_seal_check(spec.params.slot_duration_ms, lambda: int(time.time() * 1000))
    verify = SignatureCache(worker=SignatureWorker())  # signatures checked beside execution
    imported = 0
    best = 0
    try:
        with open(args.input, "rb") as src:
            while header := src.read(4):
                if len(header) < 4:
                    raise CliError(f"{args.input}: truncated length prefix after {imported} blocks")
                (length,) = _LEN.unpack(header)
                if length > MAX_EXPORTED_BLOCK:
                    raise CliError(f"{args.input}: block {imported + 1} claims {length} bytes")
                data = src.read(length)
                try:
                    block = Block.decode(data)
                    import_block(store, block, seal_check=seal_check, verify=verify)
                except (CodecError, BlockImportError) as exc:
                    raise CliError(f"block {imported + 1} of {args.input} rejected: {exc}") from None
                imported += 1
        best = store.best_header().number
    except OSError as exc:
        raise CliError(f"cannot read {args.input}: {exc.strerror}") from None
    finally:
        verify.close()
        store.close()
    print(f"imported {imported} blocks; best is #{best}")
    return 0
