"""Chain specs: the JSON a network is started from (Substrate's habits: name, id, chainType,
bootNodes, properties, genesis), the built-in `dev` and `local` specs, and the parsing that
turns a spec into the runtime's genesis config. The genesis hash is a pure function of the spec.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from gensyn_node.keyring import DEV_NAMES, dev_account
from runtime.block import Header
from runtime.codec.errors import CodecError
from runtime.crypto import ED25519, ss58_decode, ss58_encode
from runtime.genesis import InvalidGenesis, build_genesis
from runtime.params import ChainParameters, InvalidParameters

UNIT = 10**12  # tokenDecimals = 12
DEV_ENDOWMENT = 1_000_000 * UNIT
DEV_BOND = 10_000 * UNIT


class ChainSpecError(ValueError):
    """A chain spec that cannot be used; the message names the field."""


@dataclass
class ChainSpec:
    name: str
    id: str
    chain_type: str
    genesis: dict[str, Any]
    boot_nodes: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=lambda: {"ss58Format": 42, "tokenDecimals": 12, "tokenSymbol": "GSYN"})
    protocol_id: str = "gsyn"

    def to_json(self) -> str:
        return json.dumps({
            "name": self.name,
            "id": self.id,
            "chainType": self.chain_type,
            "bootNodes": self.boot_nodes,
            "protocolId": self.protocol_id,
            "properties": self.properties,
            "genesis": self.genesis,
        }, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ChainSpec:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ChainSpecError(f"chain spec is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ChainSpecError("chain spec must be a JSON object")
        for key in ("name", "id", "genesis"):
            if key not in raw:
                raise ChainSpecError(f"chain spec has no {key!r}")
        spec = cls(name=str(raw["name"]), id=str(raw["id"]), chain_type=str(raw.get("chainType", "Live")),
                   genesis=raw["genesis"], boot_nodes=list(raw.get("bootNodes", [])),
                   properties=dict(raw.get("properties", {})), protocol_id=str(raw.get("protocolId", "gsyn")))
        spec.genesis_config()  # verify it now, with a clear message
        return spec

    def genesis_config(self) -> dict[str, Any]:
        """The runtime's genesis config; raises ChainSpecError naming the bad field."""
        g = self.genesis
        if not isinstance(g, dict):
            raise ChainSpecError("genesis must be an object")
        try:
            params = ChainParameters(**{k: int(v) for k, v in g.get("params", {}).items()})
            params.validate()
        except (TypeError, ValueError, InvalidParameters) as exc:
            raise ChainSpecError(f"genesis.params: {exc}") from None
        config: dict[str, Any] = {"params": params, "spec_version": int(g.get("specVersion", 1))}
        config["balances"] = [(_account(a, "genesis.balances"), _amount(v, "genesis.balances")) for a, v in g.get("balances", [])]
        if g.get("sudo"):
            config["sudo"] = _account(g["sudo"], "genesis.sudo")
        if g.get("treasury"):
            config["treasury"] = _account(g["treasury"], "genesis.treasury")
        config["validators"] = [
            {"account": _account(v.get("account"), "genesis.validators[].account"),
             "session_key": _hex32(v.get("sessionKey"), "genesis.validators[].sessionKey"),
             "bond": _amount(v.get("bond"), "genesis.validators[].bond")}
            for v in g.get("validators", [])
        ]
        if not config["validators"]:
            raise ChainSpecError("genesis.validators: a chain needs at least one validator")
        ml = g.get("mlCompute")
        if ml is not None:
            # The pallet's config overrides (timers in blocks, bounds), e.g. short windows for a devnet.
            if not isinstance(ml, dict) or not isinstance(ml.get("config", {}), dict):
                raise ChainSpecError("genesis.mlCompute: expected {\"config\": {field: integer}}")
            try:
                config["ml_compute"] = {"config": {k: int(v) for k, v in ml.get("config", {}).items()}}
            except (TypeError, ValueError):
                raise ChainSpecError("genesis.mlCompute.config: every value must be an integer") from None
        return config

    def build_genesis(self) -> tuple[Header, dict[bytes, bytes], dict[bytes, bytes]]:
        try:
            return build_genesis(self.genesis_config())
        except (InvalidGenesis, InvalidParameters, LookupError, ValueError) as exc:
            raise ChainSpecError(f"genesis cannot be built: {exc}") from None

    @property
    def params(self) -> ChainParameters:
        return self.genesis_config()["params"]


def _account(value: Any, what: str) -> bytes:
    if isinstance(value, str) and value.startswith("0x"):
        return _hex32(value, what)
    try:
        return ss58_decode(str(value))
    except CodecError as exc:
        raise ChainSpecError(f"{what}: {exc}") from None


def _hex32(value: Any, what: str) -> bytes:
    try:
        raw = bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError:
        raise ChainSpecError(f"{what}: {value!r} is not hex") from None
    if len(raw) != 32:
        raise ChainSpecError(f"{what}: expected 32 bytes, got {len(raw)}")
    return raw


def _amount(value: Any, what: str) -> int:
    try:
        amount = int(value)
    except (TypeError, ValueError):
        raise ChainSpecError(f"{what}: {value!r} is not an integer amount") from None
    if not 0 <= amount < 2**128:
        raise ChainSpecError(f"{what}: {amount} is out of range")
    return amount


def _validator(name: str) -> dict[str, str]:
    return {"account": dev_account(name).address,
            "sessionKey": "0x" + dev_account(name, ED25519).public.hex(),
            "bond": str(DEV_BOND)}


def validator_names(count: int) -> list[str]:
    """alice, bob, charlie, dave, eve, ferdie, then validator7, validator8, ... (//Validator7)."""
    return [*DEV_NAMES[:count], *(f"validator{i}" for i in range(len(DEV_NAMES) + 1, count + 1))]


def dev_spec(validators: int = 1, slot_ms: int = 1000) -> ChainSpec:
    """`--dev` (one validator, alice), `local` (alice and bob), or a devnet of N validators with
    equal bonds: dev accounts pre-funded."""
    names = validator_names(validators)
    params = asdict(ChainParameters(slot_duration_ms=slot_ms, era_length=600, min_validator_bond=1000 * UNIT))
    funded = [*DEV_NAMES, *names[len(DEV_NAMES):]]
    genesis = {
        "specVersion": 2,
        "params": {k: str(v) for k, v in params.items()},
        "balances": [[dev_account(n).address, str(DEV_ENDOWMENT)] for n in funded],
        "sudo": dev_account("alice").address,
        "treasury": ss58_encode(b"modlpy/trsry".ljust(32, b"\x00")),
        "validators": [_validator(n) for n in names],
    }
    if validators == 1:
        return ChainSpec("Development", "dev", "Development", genesis)
    return ChainSpec("Local Testnet", "local_testnet", "Local", genesis)


def load_chain_spec(chain: str) -> ChainSpec:
    """`dev`, `local`, or a path to a JSON spec."""
    if chain == "dev":
        return dev_spec(1)
    if chain == "local":
        return dev_spec(2)
    path = Path(chain)
    if not path.is_file():
        raise ChainSpecError(f"no chain spec {chain!r}: use dev, local or a path to a JSON file")
    return ChainSpec.from_json(path.read_text())


PARAM_NAMES = [f.name for f in fields(ChainParameters)]
