"""Signed extrinsics (format v4) as Substrate clients make them, and every way
`validate_transaction` must refuse one: with the right InvalidTransaction kind and no state change."""

from __future__ import annotations

import hashlib

import pytest
from scalecodec.base import RuntimeConfiguration, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset
from substrateinterface import Keypair as SubstrateKeypair
from substrateinterface import KeypairType

from gensyn_node.keyring import DEV_NAMES, dev_account, keypair_from_seed
from runtime.codec.errors import CodecError
from runtime.codec.scale import encode_compact
from runtime.crypto import ss58_decode, ss58_encode
from runtime.executive import validate_transaction
from runtime.extrinsic import (
    MAX_EXTRINSIC_BYTES,
    decode_extrinsic,
    encode_signed,
    encode_unsigned,
    signing_payload,
)
from runtime.hashing import blake2_256
from runtime.params import ChainParameters
from runtime.storage import OverlayState
from runtime.transaction_validity import InvalidTransaction
from runtime.types import Era, mortal_era
from runtime.version import TRANSACTION_VERSION as TX_VERSION

SPEC_VERSION = 1  # the genesis of conftest runs spec 1
ED = ChainParameters().existential_deposit


@pytest.fixture(scope="module")
def oracle() -> RuntimeConfiguration:
    config = RuntimeConfiguration()
    config.update_type_registry(load_type_registry_preset("legacy"))
    return config


def _enc(oracle: RuntimeConfiguration, type_string: str, value: object) -> bytes:
    return bytes(oracle.create_scale_object(type_string).encode(value).data)


def validate(trie, best, raw):
    """validate_transaction on a fresh overlay of `trie`; asserts that it wrote nothing."""
    state = OverlayState(trie.get)
    try:
        return validate_transaction(state, best, raw)
    finally:
        assert state.changes == {}


def assert_invalid(trie, best, raw, kinds):
    kinds = {kinds} if isinstance(kinds, str) else set(kinds)
    state = OverlayState(trie.get)
    with pytest.raises(InvalidTransaction) as info:
        validate_transaction(state, best, raw)
    assert info.value.kind in kinds, str(info.value)
    assert state.changes == {}
    return info.value


@pytest.fixture
def pay_bob(transfer, bob):
    return transfer(bob.public, 10**15)


# --- Substrate clients' view -------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEV_NAMES)
def test_dev_account_address_matches_substrate_interface(name):
    theirs = SubstrateKeypair.create_from_uri("//" + name.capitalize())
    ours = dev_account(name)
    assert ours.address == theirs.ss58_address
    assert ours.public == theirs.public_key
    assert ss58_decode(theirs.ss58_address) == ours.public
    assert ss58_encode(ours.public) == theirs.ss58_address


def test_alice_is_the_well_known_address():
    assert dev_account("alice").address == "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def test_ss58_bad_checksum_and_prefix_rejected():
    address = dev_account("alice").address
    flipped = address[:-1] + ("1" if address[-1] != "1" else "2")
    with pytest.raises(CodecError):
        ss58_decode(flipped)
    with pytest.raises(CodecError):
        ss58_decode(ss58_encode(dev_account("alice").public, prefix=0))
    with pytest.raises(CodecError):
        ss58_decode("0OIl")


def test_ed25519_seed_keys_match_substrate_interface():
    seed = bytes(range(32))
    theirs = SubstrateKeypair.create_from_seed(seed.hex(), crypto_type=KeypairType.ED25519)
    ours = keypair_from_seed(seed, "Ed25519")
    assert ours.public == theirs.public_key
    assert theirs.verify(b"payload", ours.sign(b"payload"))


def test_our_sr25519_signature_verifies_in_substrate_interface(alice):
    theirs = SubstrateKeypair.create_from_uri("//Alice")
    assert theirs.verify(b"payload", alice.sign(b"payload"))
    assert not theirs.verify(b"payload!", alice.sign(b"payload"))


def test_signing_payload_matches_scalecodec_layout(oracle, chain, pay_bob):
    """call ++ era ++ Compact nonce ++ Compact tip ++ u32 spec ++ u32 tx ++ genesis ++ era block."""
    era_hash = bytes(range(32))
    for call, era, nonce, tip in [(pay_bob, None, 0, 0), (pay_bob, (64, 5), 70000, 10**20),
                                  (b"\x00\x00" + encode_compact(300) + bytes(300), (4, 1), 1, 1)]:
        expected = b"".join([
            call,
            _enc(oracle, "Era", era if era is not None else "00"),
            _enc(oracle, "Compact<u32>", nonce),
            _enc(oracle, "Compact<u128>", tip),
            _enc(oracle, "u32", SPEC_VERSION),
            _enc(oracle, "u32", TX_VERSION),
            _enc(oracle, "H256", "0x" + chain.hash.hex()),
            _enc(oracle, "H256", "0x" + era_hash.hex()),
        ])
        if len(expected) > 256:
            expected = hashlib.blake2b(expected, digest_size=32).digest()
        ours = signing_payload(call, Era.encode(era), nonce, tip, SPEC_VERSION, TX_VERSION, chain.hash, era_hash)
        assert ours == expected


def test_signed_extrinsic_layout_matches_scalecodec(oracle, rt, alice, pay_bob):
    signature = bytes(range(64))
    era = (128, 17)
    raw = encode_signed(pay_bob, alice.public, "Sr25519", signature, era, 9, 1000)
    body = b"".join([
        b"\x84",
        _enc(oracle, "MultiAddress", {"Id": "0x" + alice.public.hex()}),
        _enc(oracle, "MultiSignature", {"Sr25519": "0x" + signature.hex()}),
        _enc(oracle, "Era", era),
        _enc(oracle, "Compact<u32>", 9),
        _enc(oracle, "Compact<u128>", 1000),
        pay_bob,
    ])
    assert raw == _enc(oracle, "Compact<u32>", len(body)) + body
    xt = decode_extrinsic(raw, rt)
    assert (xt.signer, xt.scheme, xt.signature, xt.era, xt.nonce, xt.tip) == (
        alice.public, "Sr25519", signature, era, 9, 1000)
    assert xt.call_bytes == pay_bob and xt.hash == blake2_256(raw)
    assert xt.call[1] == "transfer_keep_alive"


@pytest.mark.parametrize("scheme", ["Sr25519", "Ed25519"])
def test_signed_extrinsic_decodes_in_scalecodec(oracle, rt, sign, alice, bob, transfer, scheme):
    """scalecodec reads our transfer field by field as Substrate's UncheckedExtrinsic v4 of
    Balances.transfer_keep_alive(MultiAddress, Compact<Balance>)."""
    keypair = alice if scheme == "Sr25519" else dev_account("alice", "Ed25519")
    raw = sign(keypair, transfer(bob.public, 10**15), 7, tip=99, era=(64, 12))
    data = ScaleBytes(raw)
    fields = ["Compact<u32>", "u8", "MultiAddress", "MultiSignature", "Era", "Compact<u32>", "Compact<u128>",
              "u8", "u8", "MultiAddress", "Compact<u128>"]
    values = [oracle.create_scale_object(t, data=data).decode(check_remaining=False) for t in fields]
    assert data.offset == len(raw)
    length, version, signer, signature, era, nonce, tip, pallet, call, dest, value = values
    assert length == len(raw) - len(encode_compact(length)) and version == 0x84
    assert signer == "0x" + keypair.public.hex() and list(signature) == [scheme]
    assert (era, nonce, tip) == ((64, 12), 7, 99)
    assert (pallet, call) == (rt.pallets_by_name["Balances"].index, 3)
    assert dest == "0x" + bob.public.hex() and value == 10**15


def _sign_with_substrate_interface(keypair: SubstrateKeypair, scheme: str, chain, call: bytes, nonce: int) -> bytes:
    payload = signing_payload(call, Era.encode(None), nonce, 0, SPEC_VERSION, TX_VERSION, chain.hash, chain.hash)
    return encode_signed(call, keypair.public_key, scheme, keypair.sign(payload), None, nonce, 0)


def test_substrate_interface_sr25519_signature_accepted(chain, trie, make_block, commit, store, account, pay_bob, bob):
    alice_si = SubstrateKeypair.create_from_uri("//Alice")
    raw = _sign_with_substrate_interface(alice_si, "Sr25519", chain, pay_bob, 0)
    valid, xt = validate(trie, chain.header, raw)
    assert xt.signer == alice_si.public_key and valid.provides and not valid.requires
    built = make_block(trie, chain.header, [raw])
    assert built.outcomes[0].success
    after = commit(store, built)
    assert account(after, bob.public).free == account(trie, bob.public).free + 10**15


def test_substrate_interface_ed25519_signature_accepted(chain, trie, make_block, commit, store, account, sign,
                                                        alice, transfer, bob):
    ed_si = SubstrateKeypair.create_from_seed(bytes(range(32)).hex(), crypto_type=KeypairType.ED25519)
    fund = sign(alice, transfer(ed_si.public_key, 10**16), 0)
    block1 = make_block(trie, chain.header, [fund])
    trie1 = commit(store, block1)
    raw = _sign_with_substrate_interface(ed_si, "Ed25519", chain, transfer(bob.public, 10**15), 0)
    validate(trie1, block1.header, raw)
    block2 = make_block(trie1, block1.header, [raw])
    assert block2.outcomes[0].success
    trie2 = commit(store, block2)
    assert account(trie2, ed_si.public_key).nonce == 1
    assert account(trie2, bob.public).free == account(trie1, bob.public).free + 10**15


def test_substrate_interface_signature_under_wrong_scheme_rejected(chain, trie, pay_bob):
    alice_si = SubstrateKeypair.create_from_uri("//Alice")
    raw = _sign_with_substrate_interface(alice_si, "Ed25519", chain, pay_bob, 0)
    assert_invalid(trie, chain.header, raw, "BadProof")


# --- valid transactions --------------------------------------------------------------------------------


def test_validate_valid_transfer_tags_and_longevity(chain, trie, sign, alice, pay_bob):
    valid, xt = validate(trie, chain.header, sign(alice, pay_bob, 0))
    assert valid.provides == (alice.public + (0).to_bytes(4, "little"),)
    assert valid.requires == ()
    assert valid.longevity == 2**64 - 1 - 1  # immortal, seen from block 1
    assert xt.nonce == 0 and xt.call[1] == "transfer_keep_alive"


def test_validate_mortal_era_longevity(chain, trie, sign, alice, pay_bob):
    era = mortal_era(0, 64)
    valid, _ = validate(trie, chain.header, sign(alice, pay_bob, 0, era=era))
    assert valid.longevity == 64 - 1


def test_validate_tip_raises_priority(chain, trie, sign, alice, pay_bob):
    low, _ = validate(trie, chain.header, sign(alice, pay_bob, 0, tip=0))
    high, _ = validate(trie, chain.header, sign(alice, pay_bob, 0, tip=10**12))
    assert high.priority > low.priority


def test_validate_future_nonce_is_valid_with_requires_tag(chain, trie, sign, alice, pay_bob):
    valid, _ = validate(trie, chain.header, sign(alice, pay_bob, 3))
    assert valid.requires == (alice.public + (2).to_bytes(4, "little"),)
    assert valid.provides == (alice.public + (3).to_bytes(4, "little"),)


# --- invalid transactions --------------------------------------------------------------------------------


def test_validate_bad_signature_rejected(chain, trie, alice, pay_bob):
    raw = encode_signed(pay_bob, alice.public, "Sr25519", bytes(64), None, 0, 0)
    assert_invalid(trie, chain.header, raw, "BadProof")


def test_validate_signature_by_another_key_rejected(chain, trie, alice, bob, pay_bob):
    payload = signing_payload(pay_bob, b"\x00", 0, 0, SPEC_VERSION, TX_VERSION, chain.hash, chain.hash)
    raw = encode_signed(pay_bob, alice.public, "Sr25519", bob.sign(payload), None, 0, 0)
    assert_invalid(trie, chain.header, raw, "BadProof")


def test_validate_ecdsa_signature_rejected(chain, trie, alice, pay_bob):
    raw = encode_signed(pay_bob, alice.public, "Ecdsa", bytes(65), None, 0, 0)
    assert_invalid(trie, chain.header, raw, "BadProof")


def _regions(raw: bytes, call_len: int) -> dict[str, range]:
    """Byte ranges of a signed extrinsic with a 2-byte length, Id signer, 64-byte signature,
    immortal era and one-byte nonce and tip."""
    return {
        "length": range(2), "version": range(2, 3), "signer": range(3, 36), "signature": range(36, 101),
        "era": range(101, 102), "nonce": range(102, 103), "tip": range(103, 104),
        "call": range(104, 104 + call_len),
    }


EXPECTED_ON_FLIP = {
    "length": {"Call"}, "version": {"Call"}, "signer": {"Call", "BadProof"}, "signature": {"Call", "BadProof"},
    "era": {"Call", "BadProof", "AncientBirthBlock"}, "nonce": {"Call", "BadProof"}, "tip": {"Call", "BadProof"},
    "call": {"Call", "BadProof"},
}


@pytest.mark.parametrize("scheme", ["Sr25519", "Ed25519"])
def test_validate_every_single_bit_flip_rejected(chain, trie, sign, alice, pay_bob, scheme):
    """No bit of a signed extrinsic can change without making it invalid (and never by a crash)."""
    # The ed25519 //Alice has no account: fine, every flip must fail before the fee check.
    keypair = alice if scheme == "Sr25519" else dev_account("alice", "Ed25519")
    raw = sign(keypair, pay_bob, 0)
    regions = _regions(raw, len(pay_bob))
    assert regions["call"].stop == len(raw)
    seen: dict[str, set[str]] = {}
    for region, positions in regions.items():
        for pos in positions:
            for bit in range(8):
                flipped = bytearray(raw)
                flipped[pos] ^= 1 << bit
                error = assert_invalid(trie, chain.header, bytes(flipped), EXPECTED_ON_FLIP[region])
                seen.setdefault(region, set()).add(error.kind)
    assert seen["signature"] >= {"BadProof"} and seen["call"] >= {"BadProof"}


def test_validate_stale_nonce_rejected(chain, trie, store, sign, alice, pay_bob, make_block, commit):
    block = make_block(trie, chain.header, [sign(alice, pay_bob, 0)])
    after = commit(store, block)
    assert_invalid(after, block.header, sign(alice, pay_bob, 0), "Stale")
    valid, _ = validate(after, block.header, sign(alice, pay_bob, 1))
    assert valid.requires == ()


def test_validate_wrong_genesis_hash_rejected(chain, trie, sign, alice, pay_bob):
    assert_invalid(trie, chain.header, sign(alice, pay_bob, 0, genesis_hash=blake2_256(b"other chain")), "BadProof")


@pytest.mark.parametrize("field, value", [("spec_version", SPEC_VERSION + 1), ("spec_version", 0),
                                          ("tx_version", TX_VERSION + 1)])
def test_validate_wrong_runtime_version_rejected(chain, trie, sign, alice, pay_bob, field, value):
    assert_invalid(trie, chain.header, sign(alice, pay_bob, 0, **{field: value}), "BadProof")


def test_validate_expired_era_rejected(chain, trie, store, sign, alice, pay_bob, make_block, commit):
    """A transaction of era (4, 0) signed at genesis is valid while blocks 1..3 are built, then
    never again: at block 4 its birth block is unknown, later the birth block's hash differs."""
    raw = sign(alice, pay_bob, 0, era=(4, 0))
    view, best = trie, chain.header
    for number in range(1, 7):
        if number <= 3:
            valid, _ = validate(view, best, raw)
            assert valid.longevity == 4 - number
        elif number == 4:
            assert_invalid(view, best, raw, "AncientBirthBlock")
        else:
            assert_invalid(view, best, raw, "BadProof")
        block = make_block(view, best, [])
        view, best = commit(store, block), block.header


def test_validate_era_born_in_the_future_rejected(chain, trie, sign, alice, pay_bob):
    assert_invalid(trie, chain.header, sign(alice, pay_bob, 0, era=(64, 10)), "AncientBirthBlock")


def test_validate_mortal_era_on_a_later_block_accepted(chain, trie, store, sign, alice, pay_bob, make_block, commit):
    view, best = trie, chain.header
    for _ in range(5):
        block = make_block(view, best, [])
        view, best = commit(store, block), block.header
    era = mortal_era(best.number, 16)
    raw = sign(alice, pay_bob, 0, era=era, era_hash=best.hash)
    valid, _ = validate(view, best, raw)
    assert valid.longevity == 16 - 1
    assert_invalid(view, best, sign(alice, pay_bob, 0, era=era, era_hash=chain.hash), "BadProof")


def test_validate_unaffordable_fee_rejected(chain, trie, sign, transfer, alice, pay_bob):
    nobody = dev_account("nobody")
    assert_invalid(trie, chain.header, sign(nobody, transfer(alice.public, ED), 0), "Payment")
    assert_invalid(trie, chain.header, sign(alice, pay_bob, 0, tip=10**30), "Payment")


def test_validate_fee_that_would_reap_rejected(chain, trie, store, sign, transfer, alice, bob, make_block, commit):
    """An account holding exactly the existential deposit cannot pay any fee (keep-alive)."""
    poor = dev_account("poor")
    block = make_block(trie, chain.header, [sign(alice, transfer(poor.public, ED), 0)])
    after = commit(store, block)
    assert_invalid(after, block.header, sign(poor, transfer(bob.public, 1), 0), "Payment")


@pytest.mark.parametrize("call_bytes, why", [
    (b"\x63\x00", "unknown pallet index 99"),
    (b"\x03\x00", "TransactionPayment has no calls"),
    (None, "a gap in the pallet indices"),
    (b"\x02\x01" + b"\x00" + bytes(32) + b"\x04", "Balances has no call index 1"),
    (b"\x02\x63", "unknown call index 99"),
    (b"\x00", "a lone pallet byte"),
])
def test_validate_unknown_call_rejected(chain, trie, sign, alice, call_bytes, why):
    if call_bytes is None:
        gap = min(set(range(256)) - set(chain.runtime.pallets_by_index))
        call_bytes = bytes((gap, 0))
    assert_invalid(trie, chain.header, sign(alice, call_bytes, 0), "Call")


def test_validate_malformed_args_rejected(chain, trie, sign, alice, pay_bob):
    for call_bytes in (pay_bob[:-1], pay_bob[:3], pay_bob + b"\x00", pay_bob + b"\xff" * 8):
        assert_invalid(trie, chain.header, sign(alice, call_bytes, 0), "Call")
    non_canonical = pay_bob[:-len(encode_compact(10**15))] + b"\x03" + (10**15).to_bytes(4 + 4, "little")
    assert_invalid(trie, chain.header, sign(alice, non_canonical, 0), "Call")


def test_validate_non_id_signer_rejected(chain, trie, alice, pay_bob):
    raw = encode_signed(pay_bob, alice.public, "Sr25519", bytes(64), None, 0, 0)
    body = raw[2:]
    body = body[:1] + b"\x01\x00" + body[34:]  # MultiAddress::Index(0) instead of ::Id
    assert_invalid(trie, chain.header, encode_compact(len(body)) + body, "Call")


@pytest.mark.parametrize("mutate, why", [
    (lambda raw: raw[1:], "length prefix removed"),
    (lambda raw: raw + b"\x00", "trailing byte after the declared length"),
    (lambda raw: raw[:-1], "shorter than the declared length"),
    (lambda raw: raw[:2] + b"\x85" + raw[3:], "extrinsic version 5"),
    (lambda raw: raw[:2] + b"\x83" + raw[3:], "extrinsic version 3"),
    (lambda raw: b"", "empty"),
    (lambda raw: b"\x00", "zero length"),
])
def test_validate_malformed_envelope_rejected(chain, trie, sign, alice, pay_bob, mutate, why):
    assert_invalid(trie, chain.header, mutate(sign(alice, pay_bob, 0)), "Call")


def test_validate_oversize_extrinsic_rejected(chain, trie, sign, alice):
    remark = b"\x00\x00" + encode_compact(MAX_EXTRINSIC_BYTES) + bytes(MAX_EXTRINSIC_BYTES)  # System.remark
    assert_invalid(trie, chain.header, sign(alice, remark, 0), "Call")


def test_validate_unsigned_non_inherent_rejected(chain, trie, pay_bob, rt):
    assert_invalid(trie, chain.header, encode_unsigned(pay_bob), "Call")
    assert_invalid(trie, chain.header, encode_unsigned(rt.encode_call("Timestamp", "set", {"now": 2000})), "Call")


def test_validate_signed_inherent_rejected(chain, trie, sign, alice, rt):
    raw = sign(alice, rt.encode_call("Timestamp", "set", {"now": 2000}), 0)
    assert_invalid(trie, chain.header, raw, "Call")


def test_apply_signed_inherent_rejected(chain, trie, sign, alice, rt, make_block):
    with pytest.raises(InvalidTransaction) as info:
        make_block(trie, chain.header, [sign(alice, rt.encode_call("Timestamp", "set", {"now": 2000}), 0)])
    assert info.value.kind == "Call"


def _nested_sudo(rt, depth: int) -> bytes:
    sudo = rt.encode_call("Sudo", "sudo", {"call": ("System", ("remark", {"remark": b""}))})
    prefix = sudo[:2]
    return prefix * (depth - 1) + sudo


def test_validate_nested_sudo_within_depth_accepted(chain, trie, sign, alice, rt):
    validate(trie, chain.header, sign(alice, _nested_sudo(rt, 8), 0))


def test_validate_deeply_nested_call_rejected(chain, trie, sign, alice, rt):
    assert_invalid(trie, chain.header, sign(alice, _nested_sudo(rt, 1000), 0), "Call")


def test_validate_long_payload_is_signed_by_its_hash(chain, trie, alice, rt):
    """Payloads over 256 bytes are signed as their blake2-256; signing the raw bytes is a bad proof."""
    call = rt.encode_call("System", "remark", {"remark": bytes(300)})
    long_payload = b"".join([call, b"\x00", encode_compact(0), encode_compact(0),
                             SPEC_VERSION.to_bytes(4, "little"), TX_VERSION.to_bytes(4, "little"),
                             chain.hash, chain.hash])
    assert len(long_payload) > 256
    hashed = encode_signed(call, alice.public, "Sr25519", alice.sign(blake2_256(long_payload)), None, 0, 0)
    validate(trie, chain.header, hashed)
    raw_signed = encode_signed(call, alice.public, "Sr25519", alice.sign(long_payload), None, 0, 0)
    assert_invalid(trie, chain.header, raw_signed, "BadProof")


def test_validate_short_payload_is_signed_raw(chain, trie, alice, pay_bob):
    payload = signing_payload(pay_bob, b"\x00", 0, 0, SPEC_VERSION, TX_VERSION, chain.hash, chain.hash)
    assert len(payload) <= 256
    hashed = encode_signed(pay_bob, alice.public, "Sr25519", alice.sign(blake2_256(payload)), None, 0, 0)
    assert_invalid(trie, chain.header, hashed, "BadProof")


ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493


def test_validate_malleated_ed25519_signature_rejected(chain, trie, store, sign, transfer, alice, bob, make_block,
                                                       commit):
    """S + L verifies the same equation but is not canonical: it must not pass as a second,
    different extrinsic (with a different hash) for the same payment."""
    ed = keypair_from_seed(bytes(range(32)), "Ed25519")
    block = make_block(trie, chain.header, [sign(alice, transfer(ed.public, 10**16), 0)])
    after = commit(store, block)
    good = sign(ed, transfer(bob.public, 10**15), 0)
    xt = decode_extrinsic(good, chain.runtime)
    s = int.from_bytes(xt.signature[32:], "little") + ED25519_ORDER
    assert s < 2**256
    forged = xt.signature[:32] + s.to_bytes(32, "little")
    validate(after, block.header, good)
    bad = encode_signed(xt.call_bytes, ed.public, "Ed25519", forged, None, 0, 0)
    assert_invalid(after, block.header, bad, "BadProof")


@pytest.mark.parametrize("nonce, tip", [(1 << 32, 0), (0, 1 << 128)])
def test_validate_nonce_or_tip_out_of_range_rejected(chain, trie, alice, pay_bob, nonce, tip):
    body = b"".join([b"\x84", b"\x00" + alice.public, b"\x01" + bytes(64), b"\x00", encode_compact(nonce),
                     encode_compact(tip), pay_bob])
    assert_invalid(trie, chain.header, encode_compact(len(body)) + body, "Call")
