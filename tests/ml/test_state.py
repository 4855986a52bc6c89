"""Canonical state bytes and hashes: round trip, one-bit changes, malformed bytes."""

from __future__ import annotations

import pytest
import torch

from runtime.hashing import blake2_256
from runtime.ml.engine import init_state
from runtime.ml.errors import StateDecodeError, StateHashMismatchError
from runtime.ml.models import CNN, MLP
from runtime.ml.state import compute_state_hash, decode_state, decode_state_checked, encode_state


@pytest.fixture(scope="module")
def state():
    s = init_state(CNN, b"\x01" * 32)
    s.momentum[::7] = torch.arange(s.momentum[::7].numel(), dtype=torch.float64) - 1000
    s.step = 12
    return s


def test_round_trip(state):
    data = encode_state(state)
    back = decode_state(data)
    assert back.step == 12 and back.model is CNN
    assert torch.equal(back.params, state.params) and torch.equal(back.momentum, state.momentum)
    assert encode_state(back) == data
    assert compute_state_hash(state) == blake2_256(data)


def test_values_are_little_endian_int64(state):
    data = encode_state(state)
    first = int.from_bytes(data[-16 * state.params.numel() :][:8], "little", signed=True)
    assert first == int(state.params[0].item())


def test_every_bit_flip_in_a_region_is_detected(state):
    data = encode_state(state)
    expected = blake2_256(data)
    decode_state_checked(data, expected)
    for pos in (0, 5, len(data) // 2, len(data) - 1):
        for bit in range(8):
            corrupt = bytearray(data)
            corrupt[pos] ^= 1 << bit
            with pytest.raises(StateHashMismatchError):
                decode_state_checked(bytes(corrupt), expected)


def test_malformed_states_are_rejected(state):
    data = encode_state(state)
    header_len = int.from_bytes(data[:4], "little")
    cases = [
        b"",
        data[:3],
        data[:-1],
        data + b"\x00",
        (10_000).to_bytes(4, "little") + data[4:],
        data[: 4 + header_len] + (1 << 40).to_bytes(8, "little") + data[4 + header_len + 8 :],
    ]
    for bad in cases:
        with pytest.raises(StateDecodeError):
            decode_state(bad)
    mlp_body = encode_state(init_state(MLP, b"\x01" * 32))
    mlp_header_len = int.from_bytes(mlp_body[:4], "little")
    with pytest.raises(StateDecodeError):  # an MLP header over a CNN body
        decode_state(mlp_body[: 4 + mlp_header_len] + data[4 + header_len :])
