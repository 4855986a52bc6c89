"""The network key: made once under the base path (0600), read back on restart so the PeerId
is stable, and a bad key named in one line."""

from __future__ import annotations

import pytest

from p2p.nodekey import NodeKeyError, load_or_create_node_key, parse_node_key


def test_node_key_persists_across_restarts(tmp_path):
    seed, created = load_or_create_node_key(tmp_path)
    assert created and len(seed) == 32
    assert (tmp_path / "network" / "secret").stat().st_mode & 0o777 == 0o600
    again, created_again = load_or_create_node_key(tmp_path)
    assert again == seed and not created_again


def test_node_key_bad_file_and_flag(tmp_path):
    (tmp_path / "network").mkdir()
    (tmp_path / "network" / "secret").write_bytes(b"short")
    with pytest.raises(NodeKeyError, match="holds 5 bytes"):
        load_or_create_node_key(tmp_path)
    assert parse_node_key("0x" + "01" * 32) == b"\x01" * 32
    with pytest.raises(NodeKeyError, match="32 bytes"):
        parse_node_key("0x0102")
    with pytest.raises(NodeKeyError, match="hex"):
        parse_node_key("zz" * 32)


def test_peer_id_is_a_function_of_the_key():
    from p2p.addresses import peer_id_of

    assert peer_id_of(b"\x01" * 32) == peer_id_of(b"\x01" * 32) != peer_id_of(b"\x02" * 32)
    assert peer_id_of(b"\x01" * 32).startswith("12D3KooW")
