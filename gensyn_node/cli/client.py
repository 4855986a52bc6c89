"""Client commands that sign locally and talk JSON-RPC to a node (`--rpc URL`):
`account balance WHO`, `tx transfer|bond|unbond|validate ...`."""

from __future__ import annotations

import argparse
from typing import Any

from gensyn_node.chain_spec import UNIT
from gensyn_node.cli.errors import CliError
from gensyn_node.keyring import DEV_NAMES, KeyError_, Keypair, dev_account, keypair_from_uri
from gensyn_node.rpc.client import RpcClientError, RpcClientException
from runtime.codec.errors import CodecError
from runtime.crypto import ED25519, SR25519, ss58_decode


def add_commands(sub: argparse._SubParsersAction) -> None:
    account = sub.add_parser("account", help="read accounts from a node")
    account_sub = account.add_subparsers(dest="account_command", metavar="balance", required=True)
    balance = account_sub.add_parser("balance", help="free and reserved balance and nonce")
    balance.add_argument("who", help="dev name (alice), SS58 address or 0x public key")
    _rpc_flag(balance)
    balance.set_defaults(handler=cmd_balance)

    tx = sub.add_parser("tx", help="sign and submit transactions")
    tx_sub = tx.add_subparsers(dest="tx_command", metavar="transfer|bond|bond-extra|unbond|validate|chill", required=True)
    transfer = tx_sub.add_parser("transfer", help="Balances.transfer_keep_alive (or allow_death)")
    _signer_flags(transfer)
    transfer.add_argument("--to", required=True)
    transfer.add_argument("--amount", required=True, help="in plancks, or with a 'u' suffix in whole units (5u)")
    transfer.add_argument("--allow-death", action="store_true", help="allow the sender to be reaped")
    transfer.set_defaults(handler=cmd_transfer)
    for name, help_text in (("bond", "Staking.bond"), ("bond-extra", "Staking.bond_extra"), ("unbond", "Staking.unbond")):
        p = tx_sub.add_parser(name, help=help_text)
        _signer_flags(p)
        p.add_argument("--amount", required=True)
        p.set_defaults(handler=cmd_staking_amount, staking_call=name.replace("-", "_"))
    validate = tx_sub.add_parser("validate", help="Staking.validate with an ed25519 session key")
    _signer_flags(validate)
    validate.add_argument("--session-key", required=True, help="secret URI of the session key (//Alice) or 0x public key")
    validate.add_argument("--commission", type=int, default=0, help="parts per billion")
    validate.set_defaults(handler=cmd_validate)
    chill = tx_sub.add_parser("chill", help="Staking.chill")
    _signer_flags(chill)
    chill.set_defaults(handler=cmd_chill)


def _rpc_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default="http://127.0.0.1:9944", help="the node's JSON-RPC URL")


def _signer_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="signer", required=True, help="dev name (alice) or secret URI (//Alice, 0x<seed>)")
    parser.add_argument("--scheme", choices=["sr25519", "ed25519"], default="sr25519")
    parser.add_argument("--tip", default="0")
    parser.add_argument("--wait", choices=["none", "inBlock", "finalized"], default="inBlock")
    _rpc_flag(parser)


def parse_amount(text: str) -> int:
    try:
        amount = int(text[:-1]) * UNIT if text.endswith("u") else int(text)
    except ValueError:
        raise CliError(f"amount {text!r} is not an integer (plancks) or <n>u (whole units)") from None
    if not 0 <= amount < 2**128:
        raise CliError(f"amount {text!r} is out of range")
    return amount


def parse_account(text: str) -> bytes:
    if text.lower() in DEV_NAMES:
        return dev_account(text.lower()).public
    try:
        if text.startswith("0x"):
            raw = bytes.fromhex(text[2:])
            if len(raw) != 32:
                raise ValueError("need 32 bytes")
            return raw
        return ss58_decode(text, prefix=None)
    except (ValueError, CodecError) as exc:
        raise CliError(f"{text!r} is not an account (dev name, SS58 address or 0x public key): {exc}") from None


def parse_signer(args: argparse.Namespace) -> Keypair:
    uri = "//" + args.signer.capitalize() if args.signer.lower() in DEV_NAMES else args.signer
    try:
        return keypair_from_uri(uri, SR25519 if args.scheme == "sr25519" else ED25519)
    except KeyError_ as exc:
        raise CliError(f"--from: {exc}") from None


def _client(url: str):  # type: ignore[no-untyped-def]
    from gensyn_node.client import NodeClient

    return NodeClient(url)


def cmd_balance(args: argparse.Namespace) -> int:
    who = parse_account(args.who)
    client = _client(args.rpc)
    try:
        balance = client.balance(who)
    except RpcClientException as exc:
        raise CliError(f"{args.rpc}: {exc}") from None
    finally:
        client.close()
    print(f"free={balance.free} reserved={balance.reserved} nonce={balance.nonce} "
          f"(free {balance.free / UNIT:.4f} units)")
    return 0


def _send(args: argparse.Namespace, pallet: str, call: str, call_args: dict[str, Any]) -> int:
    key = parse_signer(args)
    client = _client(args.rpc)
    try:
        extrinsic = client.sign(key, client.encode_call(pallet, call, call_args), tip=parse_amount(args.tip))
        if args.wait == "none":
            print(f"submitted 0x{client.submit(extrinsic).hex()}")
            return 0
        statuses = client.submit_and_watch(extrinsic, until=args.wait)
    except RpcClientError as exc:
        raise CliError(f"rejected: {exc.message}: {exc.data}") from None
    except RpcClientException as exc:
        raise CliError(f"{args.rpc}: {exc}") from None
    finally:
        client.close()
    for status in statuses:
        print(f"status: {status}")
    final = statuses[-1] if statuses else None
    return 0 if isinstance(final, dict) and args.wait in final else 1


def cmd_transfer(args: argparse.Namespace) -> int:
    call = "transfer_allow_death" if args.allow_death else "transfer_keep_alive"
    return _send(args, "Balances", call, {"dest": ("Id", parse_account(args.to)), "value": parse_amount(args.amount)})


def cmd_staking_amount(args: argparse.Namespace) -> int:
    name = {"bond": "value", "bond_extra": "max_additional", "unbond": "value"}[args.staking_call]
    call_args: dict[str, Any] = {name: parse_amount(args.amount)}
    if args.staking_call == "bond":
        call_args["payee"] = ("Staked", None)  # rewards are added to the bond
    return _send(args, "Staking", args.staking_call, call_args)


def cmd_validate(args: argparse.Namespace) -> int:
    if args.session_key.startswith("0x"):
        session = parse_account(args.session_key)
    else:
        try:
            session = keypair_from_uri(args.session_key, ED25519).public
        except KeyError_ as exc:
            raise CliError(f"--session-key: {exc}") from None
    return _send(args, "Staking", "validate", {"prefs": {"commission": args.commission, "blocked": False},
                                                  "session_key": session})


def cmd_chill(args: argparse.Namespace) -> int:
    return _send(args, "Staking", "chill", {})
