"""System storage items."""

from runtime.codec.scale import Lazy, Vec, u32
from runtime.frame import StorageMap, StorageValue
from runtime.params import ChainParametersType
from runtime.types import AccountId, AccountInfo, BlockNumber, Hash, Header

# A never-seen account reads as the zero AccountInfo (Substrate's ValueQuery); balances' new-logic
# flag (1 << 127) is set in the default as Substrate's ExtraFlags::default() sets it.
EMPTY_ACCOUNT_INFO = {"nonce": 0, "consumers": 0, "providers": 0, "sufficients": 0,
                      "data": {"free": 0, "reserved": 0, "frozen": 0, "flags": 1 << 127}}
Account = StorageMap("Account", [("Blake2_128Concat", AccountId)], AccountInfo, default=EMPTY_ACCOUNT_INFO,
                     docs="The full account information for a particular account ID.")
BlockHash = StorageMap("BlockHash", [("Twox64Concat", BlockNumber)], Hash, default=bytes(32), docs="Map of block numbers to block hashes.")
Number = StorageValue("Number", BlockNumber, default=0, docs="The current block number being processed.")
ParentHash = StorageValue("ParentHash", Hash, default=bytes(32), docs="Hash of the previous block.")
Digest = StorageValue("Digest", Header.fields[4][1], default={"logs": []}, docs="Digest of the current block.")
# EventRecord {phase, event: RuntimeEvent, topics}: RuntimeEvent is built from the pallets, so the
# runtime table (runtime/version.py) points this at the newest runtime's record type.
EventRecord = Lazy()
# The executive writes the block's Vec<EventRecord> bytes at once (records are encoded as deposited).
Events = StorageValue("Events", Vec(EventRecord), default=[], docs="Events deposited for the current block.")
EventCount = StorageValue("EventCount", u32, default=0, docs="The number of events in the `Events<T>` list.")
ExtrinsicCount = StorageValue("ExtrinsicCount", u32, default=0, docs="Total extrinsics count for the current block.")
Randomness = StorageValue("Randomness", Hash, default=bytes(32), docs="Randomness mixed from every block's parent hash, for ML-compute draws "
                                                                      "(slot leaders use Staking's EraRandomness).")
SpecVersion = StorageValue("SpecVersion", u32, default=0, docs="The spec_version of the runtime in force.")
PendingSpecVersion = StorageValue("PendingSpecVersion", u32, docs="A runtime upgrade enacted from the next block.")
ChainParameters = StorageValue("ChainParameters", ChainParametersType, docs="The chain spec's parameters.")
ExtrinsicLengths = StorageValue("AllExtrinsicsLen", u32, default=0, docs="Total length (in bytes) of the extrinsics of the current block.")

ITEMS = [Account, Number, ParentHash, BlockHash, Digest, Events, EventCount, ExtrinsicCount, ExtrinsicLengths,
         Randomness, SpecVersion, PendingSpecVersion, ChainParameters]
