"""Peer addresses and the listen port: parsing `/ip4/.../tcp/.../p2p/<PeerId>`, a node key's
PeerId, and the busy-port check that py-libp2p's SO_REUSEPORT listener would hide."""

from __future__ import annotations

import socket
from typing import Any

import multiaddr
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr


class PortBusy(OSError):
    """The p2p port is taken (py-libp2p's SO_REUSEPORT listener would hide it)."""


class InvalidAddress(ValueError):
    """A multiaddr that cannot be dialed or listened on."""


def parse_peer_addr(addr: str) -> tuple[str, Any]:
    """(peer id, libp2p PeerInfo) of `/ip4/.../tcp/.../p2p/<PeerId>`."""
    try:
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
    except Exception as exc:  # noqa: BLE001 - an edge: multiaddr raises several kinds on bad input
        raise InvalidAddress(f"{addr!r} is not a multiaddr with /p2p/<PeerId>: {exc}") from None
    return info.peer_id.to_base58(), info


def peer_id_of(node_key: bytes) -> str:
    return ID.from_pubkey(create_new_key_pair(node_key).public_key).to_base58()


def check_port_free(listen_addrs: list[str]) -> None:
    """Bind each TCP listen address once without SO_REUSEPORT: a live listener makes that fail,
    where libp2p's own SO_REUSEPORT bind would silently share the port."""
    for addr in listen_addrs:
        try:
            ma = multiaddr.Multiaddr(addr)
            host = ma.value_for_protocol("ip4")
            port = int(ma.value_for_protocol("tcp"))
        except Exception as exc:  # noqa: BLE001 - an edge: multiaddr raises several kinds on bad input
            raise InvalidAddress(f"listen address {addr!r} is not /ip4/<ip>/tcp/<port>: {exc}") from None
        if port == 0:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
                sock.listen(1)
            except OSError as exc:
                raise PortBusy(f"p2p port {port} on {host} is not free ({exc.strerror}); "
                               f"stop the other node or pass another --port") from None
