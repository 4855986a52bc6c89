"""Request/response on libp2p streams: one length-prefixed request, one length-prefixed
response, then the stream closes. Every read has a size bound and a deadline, so a peer that
sends too much or too slowly only costs its own stream."""

from __future__ import annotations

import struct
from typing import Any

import trio

_LEN = struct.Struct(">I")


class StreamError(Exception):
    """A stream that broke, timed out, or framed its data wrongly."""


async def read_exact(stream: Any, count: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < count:
        try:
            chunk = await stream.read(count - len(buffer))
        except Exception as exc:  # noqa: BLE001 - an edge: the library raises many kinds on a broken stream
            raise StreamError(f"stream broke: {type(exc).__name__}") from None
        if not chunk:
            raise StreamError(f"stream ended after {len(buffer)} of {count} bytes")
        buffer += chunk
    return bytes(buffer)


async def read_frame(stream: Any, max_bytes: int) -> bytes:
    (length,) = _LEN.unpack(await read_exact(stream, _LEN.size))
    if length > max_bytes:
        raise StreamError(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    return await read_exact(stream, length)


async def write_frame(stream: Any, data: bytes) -> None:
    try:
        await stream.write(_LEN.pack(len(data)) + data)
    except Exception as exc:  # noqa: BLE001 - an edge, as in read_exact
        raise StreamError(f"stream broke: {type(exc).__name__}") from None


async def close_quietly(stream: Any, reset: bool = False) -> None:
    with trio.move_on_after(2):
        try:
            await (stream.reset() if reset else stream.close())
        except Exception:  # noqa: BLE001, S110 - an edge: closing a broken stream may raise anything; it is gone either way
            pass
