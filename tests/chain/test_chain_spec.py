"""Chain specs: built-in dev/local specs, JSON round trip, deterministic genesis, clear errors."""

from __future__ import annotations

import json

import pytest

from gensyn_node.chain_spec import ChainSpec, ChainSpecError, dev_spec, load_chain_spec


def test_chain_spec_json_roundtrip_gives_same_genesis_hash():
    spec = dev_spec(2)
    again = ChainSpec.from_json(spec.to_json())
    assert again.build_genesis()[0].hash == spec.build_genesis()[0].hash


def test_chain_spec_genesis_changes_with_any_field():
    base = dev_spec(1)
    raw = json.loads(base.to_json())
    raw["genesis"]["balances"][0][1] = str(int(raw["genesis"]["balances"][0][1]) + 1)
    assert ChainSpec.from_json(json.dumps(raw)).build_genesis()[0].hash != base.build_genesis()[0].hash


@pytest.mark.parametrize("mutate, message", [
    (lambda g: g["balances"].append(["not-an-address", "1"]), "genesis.balances"),
    (lambda g: g["balances"].append([g["balances"][0][0], "10000000000000"]), "twice"),
    (lambda g: g["params"].update(slot_duration_ms="5"), "slot_duration_ms"),
    (lambda g: g["params"].update(no_such_param="5"), "genesis.params"),
    (lambda g: g["validators"].clear(), "validator"),
    (lambda g: g["validators"][0].update(sessionKey="0x1234"), "sessionKey"),
    (lambda g: g.update(mlCompute={"config": {"attest_window": "soon"}}), "mlCompute.config"),
    (lambda g: g.update(mlCompute={"config": {"attest_window": 9, "challenge_window": 3}}), "challenge window"),
    (lambda g: g.update(mlCompute={"config": {"no_such_field": 3}}), "ml_compute"),
])
def test_chain_spec_rejects_bad_genesis_with_named_field(mutate, message):
    raw = json.loads(dev_spec(1).to_json())
    mutate(raw["genesis"])
    with pytest.raises(ChainSpecError, match=message):
        ChainSpec.from_json(json.dumps(raw)).build_genesis()


def test_chain_spec_ml_compute_config_reaches_the_pallet():
    from runtime.pallets.ml_compute import storage as ml
    from runtime.pallets.ml_compute.types import MlConfig

    raw = json.loads(dev_spec(1).to_json())
    raw["genesis"]["mlCompute"] = {"config": {"attest_window": "4", "challenge_window": 6}}
    _header, state, _ = ChainSpec.from_json(json.dumps(raw)).build_genesis()
    config = MlConfig.from_scale(ml.Config.value_type.decode(state[ml.Config.key()]))
    assert (config.attest_window, config.challenge_window, config.move_window) == (4, 6, MlConfig().move_window)


def test_load_chain_spec_names_unknown_chain(tmp_path):
    with pytest.raises(ChainSpecError, match="no chain spec"):
        load_chain_spec(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ChainSpecError, match="not valid JSON"):
        load_chain_spec(str(tmp_path / "bad.json"))
