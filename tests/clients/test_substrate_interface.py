"""py-substrate-interface, unchanged, against a real node process: it reads the chain through
our metadata V14, composes, signs (sr25519 and ed25519) and submits transactions, waits for
inclusion, and reads the outcome (success, module errors by name, events by name)."""

from __future__ import annotations

from typing import Any

import pytest
from substrateinterface import ExtrinsicReceipt, Keypair, KeypairType, SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException

from gensyn_node.chain_spec import UNIT, dev_spec
from runtime.pallets.ml_compute.registry import MNIST_ROOT
from tests.integration.nodeproc import NodeProcess

DEV = dev_spec()
ALICE, BOB, CHARLIE = (Keypair.create_from_uri(f"//{n}") for n in ("Alice", "Bob", "Charlie"))
DAVE, EVE, FERDIE = (Keypair.create_from_uri(f"//{n}") for n in ("Dave", "Eve", "Ferdie"))
ED25519_KEY = Keypair.create_from_seed("0x" + "42" * 32, crypto_type=KeypairType.ED25519)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    proc = NodeProcess(tmp_path_factory.mktemp("si") / "alice").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def si(node):
    substrate = SubstrateInterface(url=f"ws://127.0.0.1:{node.rpc_port}", ss58_format=42)
    substrate.init_runtime()
    yield substrate
    substrate.close()


def free(si: SubstrateInterface, who: Keypair, block_hash: str | None = None) -> int:
    info = si.query("System", "Account", [who.ss58_address], block_hash=block_hash)
    return info.value["data"]["free"] if info.value else 0


def submit(si: SubstrateInterface, signer: Keypair, module: str, function: str, params: dict[str, Any],
           **signing: Any) -> ExtrinsicReceipt:
    call = si.compose_call(module, function, params)
    extrinsic = si.create_signed_extrinsic(call, signer, **signing)
    return si.submit_extrinsic(extrinsic, wait_for_inclusion=True)


def events_of(receipt: ExtrinsicReceipt) -> list[tuple[str, str, Any]]:
    return [(e.value["module_id"], e.value["event_id"], e.value["attributes"]) for e in receipt.triggered_events]


def parent_of(si: SubstrateInterface, block_hash: str) -> str:
    return si.get_block_header(block_hash)["header"]["parentHash"]


# --- reading --------------------------------------------------------------------------------------------


def test_si_connects_and_reads_the_chain(si):
    assert si.chain == "Development"
    assert si.properties == {"ss58Format": 42, "tokenDecimals": 12, "tokenSymbol": "GSYN"}
    assert si.runtime_version == 2 and si.transaction_version == 1
    assert si.get_constant("Balances", "ExistentialDeposit").value == DEV.params.existential_deposit
    assert si.get_metadata_call_function("Balances", "transfer_keep_alive") is not None


def test_si_reads_alice_account(si):
    alice = si.query("System", "Account", [ALICE.ss58_address]).value
    assert alice["providers"] == 1 and alice["data"]["free"] > 0
    assert alice["data"]["reserved"] == 10_000 * UNIT  # her genesis validator bond
    assert si.query("Balances", "TotalIssuance").value >= alice["data"]["free"]


def test_si_query_map_lists_the_dev_accounts(si):
    accounts = {key.value: info.value["data"]["free"] for key, info in si.query_map("System", "Account", max_results=100)}
    assert {k.ss58_address for k in (ALICE, BOB, CHARLIE, DAVE, EVE, FERDIE)} <= set(accounts)


def test_si_runtime_calls_nonce_and_payment_info(si):
    assert si.get_account_nonce(BOB.ss58_address) == si.query("System", "Account", [BOB.ss58_address]).value["nonce"]
    call = si.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": UNIT})
    info = si.get_payment_info(call, ALICE)
    assert info["class"] == "Normal" and info["partialFee"] > DEV.params.base_fee and info["weight"]["ref_time"] > 0


def test_si_storage_subscription_sees_new_blocks(si):
    seen: list[int] = []

    def on_number(value: Any, update_nr: int, subscription_id: str) -> Any:
        seen.append(value.value)
        return value.value if len(seen) == 2 else None

    last = si.query("System", "Number", subscription_handler=on_number)
    assert seen[1] > seen[0] and last == seen[1]


# --- signing and submitting ------------------------------------------------------------------------------


def test_si_sr25519_transfer_keep_alive_moves_the_balance(si):
    # Charlie, not Alice: Alice authors every block and gets most of the fee back.
    amount = 3 * UNIT
    call = si.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": amount})
    quoted = si.get_payment_info(call, CHARLIE)["partialFee"]
    receipt = si.submit_extrinsic(si.create_signed_extrinsic(call, CHARLIE), wait_for_inclusion=True)
    assert receipt.is_success, receipt.error_message
    parent = parent_of(si, receipt.block_hash)
    assert free(si, BOB, receipt.block_hash) - free(si, BOB, parent) == amount
    assert free(si, CHARLIE, parent) - free(si, CHARLIE, receipt.block_hash) == amount + receipt.total_fee_amount
    assert receipt.total_fee_amount == quoted
    transfer = [a for m, e, a in events_of(receipt) if (m, e) == ("Balances", "Transfer")]
    assert transfer == [{"from": CHARLIE.ss58_address, "to": BOB.ss58_address, "amount": amount}]


def test_si_ed25519_account_is_funded_then_signs(si):
    funding = submit(si, ALICE, "Balances", "transfer_keep_alive", {"dest": ED25519_KEY.ss58_address, "value": 50 * UNIT})
    assert funding.is_success, funding.error_message
    assert ("System", "NewAccount", {"account": ED25519_KEY.ss58_address}) in events_of(funding)
    receipt = submit(si, ED25519_KEY, "Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": 7 * UNIT})
    assert receipt.is_success, receipt.error_message
    extrinsic = si.get_extrinsics(block_hash=receipt.block_hash)[receipt.extrinsic_idx]
    assert "Ed25519" in extrinsic.value["signature"]
    assert free(si, ED25519_KEY, receipt.block_hash) == 50 * UNIT - 7 * UNIT - receipt.total_fee_amount


def test_si_mortal_transaction_is_accepted(si):
    receipt = submit(si, CHARLIE, "Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": UNIT},
                     era={"period": 64})
    assert receipt.is_success, receipt.error_message
    extrinsic = si.get_extrinsics(block_hash=receipt.block_hash)[receipt.extrinsic_idx]
    assert extrinsic.value["era"] != "00"


def test_si_failed_dispatch_names_the_module_error(si):
    receipt = submit(si, FERDIE, "Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": 10**30})
    assert receipt.is_success is False
    assert receipt.error_message["type"] == "Module" and receipt.error_message["name"] == "InsufficientBalance"
    assert receipt.total_fee_amount > 0  # the fee is charged all the same


def test_si_bad_signature_raises_the_clients_error(si):
    call = si.compose_call("Balances", "transfer_keep_alive", {"dest": BOB.ss58_address, "value": UNIT})
    forged = si.create_signed_extrinsic(call, EVE, signature="0x" + "11" * 64)
    with pytest.raises(SubstrateRequestException) as watched:
        si.submit_extrinsic(forged, wait_for_inclusion=True)
    assert watched.value.args[0]["code"] == 1010 and "BadProof" in watched.value.args[0]["data"]
    with pytest.raises(SubstrateRequestException):
        si.submit_extrinsic(forged)


# --- a call of every pallet -------------------------------------------------------------------------------


def _remark(si: SubstrateInterface) -> None:
    receipt = submit(si, BOB, "System", "remark_with_event", {"remark": "0x" + b"hello gensyn".hex()})
    assert receipt.is_success, receipt.error_message
    (remarked,) = [a for m, e, a in events_of(receipt) if (m, e) == ("System", "Remarked")]
    assert remarked["sender"] == BOB.ss58_address


def _timestamp(si: SubstrateInterface) -> None:
    # Timestamp.set is an inherent: every block's author puts it first, unsigned. A signed one
    # composes from the metadata but the pool refuses it with 1010.
    call = si.compose_call("Timestamp", "set", {"now": 1})
    with pytest.raises(SubstrateRequestException) as refused:
        si.submit_extrinsic(si.create_signed_extrinsic(call, BOB))
    assert refused.value.args[0]["code"] == 1010
    inherent = si.get_extrinsics(block_hash=si.get_chain_head())[0]
    assert inherent.value["call"]["call_module"] == "Timestamp" and inherent.value["call"]["call_function"] == "set"


def _balances(si: SubstrateInterface) -> None:
    receipt = submit(si, FERDIE, "Balances", "transfer_allow_death", {"dest": DAVE.ss58_address, "value": UNIT})
    assert receipt.is_success, receipt.error_message
    assert ("Balances", "Transfer") in [(m, e) for m, e, _ in events_of(receipt)]


def _transaction_payment(si: SubstrateInterface) -> None:
    # TransactionPayment has no calls; its event comes with every signed transaction.
    assert not si.metadata.get_metadata_pallet("TransactionPayment").calls
    receipt = submit(si, BOB, "System", "remark", {"remark": "0x00"})
    (paid,) = [a for m, e, a in events_of(receipt) if (m, e) == ("TransactionPayment", "TransactionFeePaid")]
    assert paid["who"] == BOB.ss58_address and paid["actual_fee"] == receipt.total_fee_amount


def _staking(si: SubstrateInterface) -> None:
    receipt = submit(si, DAVE, "Staking", "bond", {"value": 1000 * UNIT, "payee": "Staked"})
    assert receipt.is_success, receipt.error_message
    events = events_of(receipt)
    assert ("Staking", "Bonded", {"stash": DAVE.ss58_address, "amount": 1000 * UNIT}) in events
    ledger = si.query("Staking", "Ledger", [DAVE.ss58_address], block_hash=receipt.block_hash).value
    assert ledger["active"] == 1000 * UNIT


def _sudo(si: SubstrateInterface) -> None:
    inner = si.compose_call("Balances", "force_transfer",
                            {"source": EVE.ss58_address, "dest": CHARLIE.ss58_address, "value": 2 * UNIT})
    receipt = submit(si, ALICE, "Sudo", "sudo", {"call": inner})
    assert receipt.is_success, receipt.error_message
    events = events_of(receipt)
    assert ("Sudo", "Sudid", {"sudo_result": {"Ok": ()}}) in events
    assert ("Balances", "Transfer", {"from": EVE.ss58_address, "to": CHARLIE.ss58_address, "amount": 2 * UNIT}) in events


def _ml_compute(si: SubstrateInterface) -> None:
    # A job composed from the metadata (structs, a hash, compacts), then read back from storage.
    params = {"model": 2, "dataset": "0x" + MNIST_ROOT.hex(),
              "hyper": {"lr_q16": 3277, "momentum_q16": 58982, "weight_decay_q16": 0, "batch_size": 64},
              "steps": 100, "checkpoint_every": 10, "bounty": 5 * UNIT,
              "verification": {"verifiers": 2, "segments": 3, "fee": UNIT // 10}, "deadline": 20}
    receipt = submit(si, EVE, "MlCompute", "submit_job", params)
    assert receipt.is_success, receipt.error_message
    (submitted,) = [a for m, e, a in events_of(receipt) if (m, e) == ("MlCompute", "JobSubmitted")]
    assert submitted["submitter"] == EVE.ss58_address and submitted["bounty"] == 5 * UNIT
    job = si.query("MlCompute", "Jobs", [submitted["job"]], block_hash=receipt.block_hash).value
    assert job["model"] == 2 and job["hyper"]["batch_size"] == 64 and job["status"] == "Pending"
    failed = submit(si, EVE, "MlCompute", "submit_job", {**params, "model": 9})
    assert failed.is_success is False and failed.error_message["name"] == "UnknownModel"


def _offences(si: SubstrateInterface) -> None:
    # Two different prevotes by alice's session key in one round: a report any account may send,
    # which earns the reporter a share of the slash; a report of two equal votes fails by name.
    from gensyn_node.keyring import dev_account
    from runtime.finality_vote import compute_vote_payload

    session = dev_account("alice", "Ed25519")
    genesis = bytes.fromhex(si.get_block_hash(0)[2:])

    def target(block: bytes) -> dict[str, Any]:
        signature = session.sign(compute_vote_payload(genesis, 0, 7, 0, block, 3))
        return {"target_hash": "0x" + block.hex(), "target_number": 3, "signature": "0x" + signature.hex()}

    def proof(second: bytes) -> dict[str, Any]:
        return {"equivocation": {"voter": "0x" + session.public.hex(), "set_id": 0, "round": 7, "step": 0,
                                 "first": target(b"\x01" * 32), "second": target(second)}}

    failed = submit(si, BOB, "Offences", "report_vote_equivocation", proof(b"\x01" * 32))
    assert not failed.is_success and failed.error_message["name"] == "InvalidEquivocationProof"
    receipt = submit(si, BOB, "Offences", "report_vote_equivocation", proof(b"\x02" * 32))
    assert receipt.is_success, receipt.error_message
    (event,) = [a for m, e, a in events_of(receipt) if (m, e) == ("Offences", "Equivocation")]
    assert event["offender"] == ALICE.ss58_address and event["kind"] == 0 and event["reward"] > 0


PALLET_CASES = {"System": _remark, "Timestamp": _timestamp, "Balances": _balances,
                "TransactionPayment": _transaction_payment, "Staking": _staking, "Sudo": _sudo,
                "Offences": _offences, "MlCompute": _ml_compute}


def test_si_every_pallet_has_a_client_case(si):
    pallets = [p.value["name"] for p in si.metadata.pallets]
    missing = sorted(set(pallets) - set(PALLET_CASES))
    assert not missing, f"add a substrate-interface case for pallet(s) {missing} to PALLET_CASES"


@pytest.mark.parametrize("pallet", list(PALLET_CASES))
def test_si_a_call_of_every_pallet_dispatches_and_its_events_decode(si, pallet):
    PALLET_CASES[pallet](si)


def test_si_events_phases_follow_the_body(si):
    receipt = submit(si, CHARLIE, "System", "remark_with_event", {"remark": "0x01"})
    extrinsics = si.get_extrinsics(block_hash=receipt.block_hash)
    events = si.get_events(block_hash=receipt.block_hash)
    outcomes = [e.value["extrinsic_idx"] for e in events
                if e.value["module_id"] == "System" and e.value["event_id"] in ("ExtrinsicSuccess", "ExtrinsicFailed")]
    assert outcomes == list(range(len(extrinsics)))
    assert all(e.value["phase"] in ("ApplyExtrinsic", "Finalization", "Initialization") for e in events)


def test_si_unknown_account_reads_as_the_default(si):
    """System.Account is a ValueQuery: a never-seen account reads as the zero AccountInfo."""
    nobody = Keypair.create_from_uri("//Nobody")
    assert si.query("System", "Account", [nobody.ss58_address]).value["nonce"] == 0
