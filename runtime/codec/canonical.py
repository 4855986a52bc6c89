"""Canonical msgpack: headers, block envelopes, database records, p2p messages, checkpoints.

Hashed or signed data is a positional array of int, bytes, str, bool, None and lists of them;
never a float and never a map, so that one value has exactly one encoding. Decoding sets size
limits and rejects trailing bytes, floats, maps and extension types.
"""

from __future__ import annotations

from typing import Any

import msgpack

from runtime.codec.errors import CodecError

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
_ALLOWED = (int, bytes, str, bool, type(None), list, tuple)


def _check(value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise CodecError("canonical value nested too deeply")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
    elif not isinstance(value, _ALLOWED) or isinstance(value, float):
        raise CodecError(f"canonical value may not hold {type(value).__name__}")
    elif isinstance(value, int) and not -(1 << 63) <= value < (1 << 64):
        raise CodecError(f"canonical integers lie in [-2^63, 2^64); {value} does not (encode it as bytes)")


def encode(value: Any) -> bytes:
    """Encode `value` canonically; raises CodecError on a float, a dict or another type."""
    _check(value)
    return msgpack.packb(value, use_bin_type=True)


def _reject_map(_pairs: Any) -> None:
    raise CodecError("canonical data may not hold a map")


def decode(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Decode one canonical value; raises CodecError on oversize, trailing or non-canonical data."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError("canonical data must be bytes")
    if len(data) > max_bytes:
        raise CodecError(f"canonical data of {len(data)} bytes exceeds the limit of {max_bytes}")
    unpacker = msgpack.Unpacker(
        raw=False,
        use_list=True,
        strict_map_key=True,
        object_pairs_hook=_reject_map,
        max_buffer_size=max(max_bytes, 1),
        max_bin_len=max_bytes,
        max_str_len=max_bytes,
        max_array_len=max_bytes,
        max_map_len=0,
        max_ext_len=0,
    )
    unpacker.feed(data)
    try:
        value = unpacker.unpack()
    except msgpack.OutOfData as exc:
        raise CodecError("canonical data is truncated") from exc
    except CodecError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise CodecError(f"canonical data is malformed: {exc}") from exc
    if unpacker.tell() != len(data):
        raise CodecError(f"canonical data has {len(data) - unpacker.tell()} trailing bytes")
    _check(value)
    if encode(value) != bytes(data):
        raise CodecError("canonical data is not in canonical form")
    return value
