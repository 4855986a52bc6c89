"""Storage-key hashers match Substrate's well-known prefixes."""

import pytest

from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.hashing import blake2_128_concat, twox_64_concat, twox_128


def test_twox_128_system_account_prefix_is_substrates():
    assert (twox_128(b"System") + twox_128(b"Account")).hex() == (
        "26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9"
    )


def test_concat_hashers_keep_the_key():
    assert blake2_128_concat(b"abc")[16:] == b"abc"
    assert twox_64_concat(b"abc")[8:] == b"abc"


@pytest.mark.parametrize(
    "bad",
    [canonical.encode([1]) + b"\x00", b"\x91", b"\xca\x00\x00\x00\x00", b"\x81\x01\x02", b"\xd0\x05"],
)
def test_canonical_decode_rejects_non_canonical(bad):
    with pytest.raises(CodecError):
        canonical.decode(bad)


def test_canonical_rejects_oversize_and_floats():
    with pytest.raises(CodecError):
        canonical.decode(canonical.encode([b"x" * 100]), max_bytes=50)
    with pytest.raises(CodecError):
        canonical.encode([1.5])
