"""Operator commands that need no running node: keys, chain specs, purging a database."""

from __future__ import annotations

import json
import subprocess

from gensyn_node.chain_spec import ChainSpec
from tests.integration.nodeproc import NODE, ROOT


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*NODE, *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60, input=stdin)


def test_cli_key_inspect_gives_substrates_dev_address():
    run = cli("key", "inspect", "//Alice")
    assert run.returncode == 0
    assert "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" in run.stdout
    ed = cli("key", "inspect", "//Alice", "--scheme", "ed25519")
    assert "0x88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee" in ed.stdout


def test_cli_key_generate_gives_a_seed_that_inspects_to_the_same_key():
    generated = cli("key", "generate", "--scheme", "ed25519").stdout
    fields = dict(line.split(":", 1) for line in generated.strip().splitlines())
    inspected = cli("key", "inspect", fields["Secret seed"].strip(), "--scheme", "ed25519").stdout
    assert fields["SS58 Address"].strip() in inspected
    bad = cli("key", "inspect", "0x1234")
    assert bad.returncode == 2 and "32 bytes" in bad.stderr


def test_cli_build_spec_local_is_a_loadable_two_validator_spec(tmp_path):
    run = cli("build-spec", "--chain", "local")
    spec = ChainSpec.from_json(run.stdout)
    assert len(json.loads(run.stdout)["genesis"]["validators"]) == 2
    assert spec.build_genesis()[0].hash == ChainSpec.from_json(cli("build-spec", "--chain", "local").stdout).build_genesis()[0].hash


def test_cli_purge_chain_removes_the_database_only_when_confirmed(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    (db / "CURRENT").write_text("x")
    refused = cli("purge-chain", "--base-path", str(tmp_path), stdin="n\n")
    assert refused.returncode == 1 and db.exists()
    done = cli("purge-chain", "--base-path", str(tmp_path), "-y")
    assert done.returncode == 0 and not db.exists()
    again = cli("purge-chain", "--base-path", str(tmp_path), "-y")
    assert again.returncode == 0 and "nothing to purge" in again.stdout


def test_cli_unknown_flag_is_an_operator_error():
    run = cli("run", "--no-such-flag")
    assert run.returncode == 2 and "unrecognized arguments" in run.stderr


def test_cli_rpc_limit_below_one_is_an_operator_error():
    run = cli("run", "--dev", "--rpc-max-connections-per-ip", "0")
    assert run.returncode == 2 and "max_connections_per_ip must be at least 1" in run.stderr
    assert "Traceback" not in run.stderr
