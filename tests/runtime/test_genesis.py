"""Genesis from a chain spec's config: deterministic, sensitive to every input, refusing configs
that cannot make a valid chain, and carrying the chain parameters intact into state."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gensyn_node.keyring import DEV_NAMES, dev_account
from runtime.block import compute_extrinsics_root
from runtime.executive import get_params, validate_transaction
from runtime.genesis import InvalidGenesis, build_genesis, build_genesis_state
from runtime.hashing import blake2_256
from runtime.pallets.balances.storage import TotalIssuance
from runtime.pallets.sudo.storage import Key as SudoKey
from runtime.pallets.system import storage as system
from runtime.pallets.system.account import get_account
from runtime.pallets.transaction_payment.storage import TreasuryAccount
from runtime.params import ChainParameters, ChainParametersType, InvalidParameters
from runtime.storage import MemoryState, OverlayState
from runtime.transaction_validity import InvalidTransaction
from runtime.trie import EMPTY_ROOT, Trie
from runtime.version import RUNTIMES

PARAMS = ChainParameters()
ED = PARAMS.existential_deposit
ALICE, BOB = dev_account("alice").public, dev_account("bob").public


def config(**overrides):
    base = {"balances": [(dev_account(n).public, 10**18) for n in DEV_NAMES], "sudo": ALICE,
            "spec_version": 1, "params": PARAMS}
    base.update(overrides)
    return base


def genesis_hash(cfg) -> bytes:
    return build_genesis(cfg)[0].hash


def test_genesis_is_deterministic():
    first, second = build_genesis(config()), build_genesis(config())
    assert first == second
    assert first[0].hash == second[0].hash


def test_genesis_header_shape():
    header, storage, nodes = build_genesis(config())
    assert header.number == 0 and header.parent_hash == bytes(32) and header.digest == ()
    assert header.extrinsics_root == compute_extrinsics_root([])
    assert header.hash == blake2_256(header.encode())
    root, rebuilt = Trie(EMPTY_ROOT, lambda _h: None).apply(storage)
    assert root == header.state_root and rebuilt == nodes


def test_genesis_state_holds_the_config():
    header, storage, nodes = build_genesis(config(treasury=BOB))
    state = MemoryState(storage)
    assert TotalIssuance.get(state) == 6 * 10**18
    for name in DEV_NAMES:
        record = get_account(state, dev_account(name).public)
        assert (record.free, record.reserved, record.nonce, record.providers) == (10**18, 0, 0, 1)
    assert SudoKey.get(state) == ALICE
    assert TreasuryAccount.get(state) == BOB
    assert system.SpecVersion.get(state) == 1
    assert system.Events.key() not in storage  # genesis deposits no events
    trie = Trie(header.state_root, nodes.get)
    assert all(trie.get(k) == v for k, v in storage.items())


@pytest.mark.parametrize("change", [
    "amount", "extra account", "fewer accounts", "sudo", "no sudo", "treasury",
])
def test_genesis_hash_changes_with_the_config(change):
    balances = config()["balances"]
    changed = {
        "amount": config(balances=[(balances[0][0], balances[0][1] + 1)] + balances[1:]),
        "extra account": config(balances=balances + [(dev_account("zed").public, ED)]),
        "fewer accounts": config(balances=balances[:-1]),
        "sudo": config(sudo=BOB),
        "no sudo": config(sudo=None),
        "treasury": config(treasury=BOB),
    }[change]
    assert genesis_hash(changed) != genesis_hash(config())


@pytest.mark.parametrize("name", [f.name for f in fields(ChainParameters)])
def test_genesis_hash_changes_with_every_parameter(name):
    value = getattr(PARAMS, name)
    bumped = value - 1 if name == "treasury_percent" else value + 1
    assert genesis_hash(config(params=replace(PARAMS, **{name: bumped}))) != genesis_hash(config())


def test_genesis_hash_independent_of_endowment_order():
    balances = config()["balances"]
    assert genesis_hash(config(balances=list(reversed(balances)))) == genesis_hash(config())


def test_transaction_for_another_genesis_rejected():
    """No replay across chains: the genesis hash is in every signing payload."""
    from runtime.extrinsic import encode_signed, signing_payload
    from runtime.types import Era
    from runtime.version import get_runtime

    chain_a, chain_b = build_genesis(config()), build_genesis(config(treasury=BOB))
    call = get_runtime(1).encode_call("Balances", "transfer_keep_alive", {"dest": ("Id", BOB), "value": ED})
    alice = dev_account("alice")
    payload = signing_payload(call, Era.encode(None), 0, 0, 1, 1, chain_a[0].hash, chain_a[0].hash)
    raw = encode_signed(call, alice.public, alice.scheme, alice.sign(payload), None, 0, 0)
    header_a, _, nodes_a = chain_a
    validate_transaction(OverlayState(Trie(header_a.state_root, nodes_a.get).get), header_a, raw)
    header_b, _, nodes_b = chain_b
    with pytest.raises(InvalidTransaction) as info:
        validate_transaction(OverlayState(Trie(header_b.state_root, nodes_b.get).get), header_b, raw)
    assert info.value.kind == "BadProof"


# --- invalid genesis ------------------------------------------------------------------------------


def test_genesis_duplicate_account_rejected():
    with pytest.raises(InvalidGenesis):
        build_genesis(config(balances=[(ALICE, 10**18), (BOB, 10**18), (ALICE, 10**18)]))


@pytest.mark.parametrize("amount", [ED - 1, 1, 0, -1])
def test_genesis_below_existential_deposit_rejected(amount):
    with pytest.raises(InvalidGenesis):
        build_genesis(config(balances=[(ALICE, 10**18), (BOB, amount)]))


def test_genesis_exactly_existential_deposit_accepted():
    state = MemoryState(build_genesis_state(config(balances=[(ALICE, ED)])))
    assert get_account(state, ALICE).free == ED


@pytest.mark.parametrize("bad", [
    {"slot_duration_ms": 99}, {"era_length": 0}, {"max_validators": 0}, {"treasury_percent": 101},
    {"treasury_percent": -1}, {"existential_deposit": -1}, {"base_fee": -1}, {"bonding_duration": -1},
])
def test_genesis_invalid_parameters_rejected(bad):
    with pytest.raises(InvalidParameters):
        build_genesis(config(params=replace(PARAMS, **bad)))


def test_genesis_unknown_spec_version_rejected():
    with pytest.raises(InvalidGenesis):
        build_genesis(config(spec_version=max(RUNTIMES) + 1))


@pytest.mark.parametrize("balances", [
    [(ALICE, 1 << 128)],
    [(ALICE, 1 << 127), (BOB, 1 << 127)],
])
def test_genesis_overflowing_endowment_rejected(balances):
    with pytest.raises(InvalidGenesis):
        build_genesis(config(balances=balances))


# --- chain parameters ---------------------------------------------------------------------------


def _param_strategy(name: str):
    kind = dict(ChainParametersType.fields)[name]
    top = kind.max
    if name == "treasury_percent":
        top = 100
    if name == "slot_duration_ms":
        return st.integers(min_value=100, max_value=top)
    if name in ("era_length", "max_validators"):
        return st.integers(min_value=1, max_value=top)
    return st.integers(min_value=0, max_value=top)


PARAMETERS = st.builds(ChainParameters, **{f.name: _param_strategy(f.name) for f in fields(ChainParameters)})


def _is_valid(params: ChainParameters) -> bool:
    try:
        params.validate()
    except InvalidParameters:
        return False
    return True


@settings(deadline=None)
@given(PARAMETERS)
def test_chain_parameters_scale_round_trip(params):
    assert ChainParameters.from_scale(params.to_scale()) == params


@settings(deadline=None)
@given(PARAMETERS.filter(_is_valid))
def test_genesis_stores_the_chain_parameters(params):
    storage = build_genesis_state(config(params=params, balances=[(ALICE, max(params.existential_deposit, 1))]))
    assert get_params(MemoryState(storage)) == params


def test_chain_parameters_decode_strictly():
    raw = PARAMS.to_scale()
    with pytest.raises(ValueError):
        ChainParameters.from_scale(raw + b"\x00")
    with pytest.raises(ValueError):
        ChainParameters.from_scale(raw[:-1])
