"""A small typed client of the node's JSON-RPC, used by the CLI and the tests: it signs
extrinsics locally (Substrate's payload: spec and tx version, genesis hash, era) and submits
them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from gensyn_node.keyring import Keypair
from gensyn_node.rpc.client import RpcClient, open_ws
from runtime.extrinsic import encode_signed, signing_payload
from runtime.pallets.system.account import AccountRecord, account_key
from runtime.types import Era, mortal_era
from runtime.version import get_runtime

MORTAL_PERIOD = 64  # blocks a signed transaction lives, from its era's birth block


@dataclass(frozen=True, slots=True)
class Balance:
    free: int
    reserved: int
    nonce: int


class NodeClient:
    def __init__(self, url: str = "http://127.0.0.1:9944", timeout: float = 30.0):
        self.url = url
        self.rpc = RpcClient(url, timeout=timeout)
        self._genesis: bytes | None = None

    def close(self) -> None:
        self.rpc.close()

    @property
    def genesis_hash(self) -> bytes:
        if self._genesis is None:
            self._genesis = bytes.fromhex(self.rpc.call("chain_getBlockHash", 0)[2:])
        return self._genesis

    def runtime_version(self) -> dict[str, Any]:
        return self.rpc.call("state_getRuntimeVersion")

    def best_number(self) -> int:
        return int(self.rpc.call("chain_getHeader")["number"], 16)

    def finalized_number(self) -> int:
        head = self.rpc.call("chain_getFinalizedHead")
        return int(self.rpc.call("chain_getHeader", head)["number"], 16)

    def balance(self, account: bytes) -> Balance:
        raw = self.rpc.call("state_getStorage", "0x" + account_key(account).hex())
        if raw is None:
            return Balance(0, 0, 0)
        record = AccountRecord.from_bytes(bytes.fromhex(raw[2:]))
        return Balance(record.free, record.reserved, record.nonce)

    def next_nonce(self, account: Keypair | bytes) -> int:
        public = account.public if isinstance(account, Keypair) else account
        return int(self.rpc.call("system_accountNextIndex", "0x" + public.hex()))

    def sign(self, key: Keypair, call: bytes, nonce: int | None = None, tip: int = 0, mortal: bool = True) -> bytes:
        """A signed extrinsic for `call` (mortal for 64 blocks by default, born at the finalized
        block: see below)."""
        version = self.runtime_version()
        nonce = self.next_nonce(key) if nonce is None else nonce
        era, era_hash = None, self.genesis_hash
        if mortal:
            # The era is born at the finalized block: its hash is in every node's chain for good.
            # Born at the best block, a fork that loses (frequent with short slots on a busy
            # network) takes the birth block with it, and the signature no longer checks
            # anywhere: the transaction ends `invalid`. While finality lags by more than half
            # the period, the best block it is (the finalized one would leave too little life).
            # The best block is read by number: a best-block hash read first may be a fork's,
            # pruned by finality before its header is asked for.
            finalized_hash = self.rpc.call("chain_getFinalizedHead")
            finalized = int(self.rpc.call("chain_getHeader", finalized_hash)["number"], 16)
            best = int(self.rpc.call("chain_getHeader")["number"], 16)
            birth, birth_hash = finalized, finalized_hash
            if best - finalized >= MORTAL_PERIOD // 2:
                best_hash = self.rpc.call("chain_getBlockHash", best)  # None if the best chain just got shorter
                if best_hash is not None:
                    birth, birth_hash = best, best_hash
            era, era_hash = mortal_era(birth, MORTAL_PERIOD), bytes.fromhex(birth_hash[2:])
        payload = signing_payload(call, Era.encode(era), nonce, tip, version["specVersion"],
                                  version["transactionVersion"], self.genesis_hash, era_hash)
        return encode_signed(call, key.public, key.scheme, key.sign(payload), era, nonce, tip)

    def encode_call(self, pallet: str, call: str, args: dict[str, Any] | None = None) -> bytes:
        return get_runtime(self.runtime_version()["specVersion"]).encode_call(pallet, call, args)

    def submit(self, extrinsic: bytes) -> bytes:
        return bytes.fromhex(self.rpc.call("author_submitExtrinsic", "0x" + extrinsic.hex())[2:])

    def submit_and_watch(self, extrinsic: bytes, until: str = "inBlock", timeout: float = 60.0) -> list[Any]:
        """Submit and follow the transaction's statuses until `until` (inBlock or finalized)."""
        ws_url = self.url.replace("http://", "ws://").replace("https://", "wss://")

        async def watch() -> list[Any]:
            statuses: list[Any] = []
            with trio.fail_after(timeout):
                async with open_ws(ws_url) as ws:
                    subscription = ws.subscribe("author_submitAndWatchExtrinsic", ["0x" + extrinsic.hex()],
                                                "author_unwatchExtrinsic")
                    async with subscription:
                        async for status in subscription:
                            statuses.append(status)
                            if isinstance(status, dict) and until in status:
                                return statuses
                            if status in ("dropped", "invalid") or (isinstance(status, dict) and "usurped" in status):
                                return statuses
            return statuses

        return trio.run(watch)
