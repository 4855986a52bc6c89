"""ML-compute storage items. Everything a solver or verifier worker needs (its jobs, seeds,
duties, disputes and their deadlines) is readable here or through the `mlcompute_*` RPC."""

from runtime.codec.scale import H256, Vec, u32
from runtime.frame import StorageMap, StorageValue
from runtime.pallets.ml_compute.types import (
    MAX_AGENDA_ITEMS,
    MAX_CHECKPOINTS,
    MAX_WORKERS,
    AgendaItem,
    Architecture,
    DatasetInfo,
    Dispute,
    Job,
    JobId,
    MlConfigType,
    TrainedModel,
    Worker,
)
from runtime.types import AccountId, BlockNumber

_by_job = [("Twox64Concat", JobId)]
_by_account = [("Blake2_128Concat", AccountId)]

StorageVersion = StorageValue("PalletStorageVersion", u32, docs="The pallet's storage version; absent before its genesis or its upgrade build ran.")
Config = StorageValue("Config", MlConfigType, docs="Timers, bounds and dispute economics (set at genesis or on upgrade).")
Architectures = StorageMap("Architectures", [("Twox64Concat", u32)], Architecture,
                           docs="The model architectures a job may train, by model id.")
Datasets = StorageMap("Datasets", [("Identity", H256)], DatasetInfo,
                      docs="The registered data sets, by Merkle root of their training samples.")
NextJobId = StorageValue("NextJobId", JobId, default=0, docs="The id the next submitted job gets.")
Jobs = StorageMap("Jobs", _by_job, Job, docs="Every job, from submission to its final status.")
Solvers = StorageMap("Solvers", _by_account, Worker, docs="Registered solvers: stake, the part locked by jobs, open jobs.")
Verifiers = StorageMap("Verifiers", _by_account, Worker, docs="Registered verifiers: stake and open duties.")
SolverSet = StorageValue("SolverSet", Vec(AccountId, max_len=MAX_WORKERS), default=[],
                         docs="The solvers that take part in draws (not unbonding).")
VerifierSet = StorageValue("VerifierSet", Vec(AccountId, max_len=MAX_WORKERS), default=[],
                           docs="The verifiers that take part in draws (not unbonding).")
Disputes = StorageMap("Disputes", _by_job, Dispute, docs="The open dispute of a job (at most one at a time).")
TrainedModels = StorageMap("TrainedModels", _by_job, TrainedModel,
                           docs="The final state hash and metrics of each settled job.")
Agenda = StorageMap("Agenda", [("Twox64Concat", BlockNumber)], Vec(AgendaItem, max_len=MAX_AGENDA_ITEMS), default=[],
                    docs="Timers due at each block: job deadlines, dispute move deadlines, unbonding ends.")

PublishedCheckpoints = StorageMap("PublishedCheckpoints", _by_job, Vec(H256, max_len=MAX_CHECKPOINTS),
                                  docs="A job's checkpoint hashes, once its solver had to publish a withheld checkpoint.")

ITEMS = [StorageVersion, Config, Architectures, Datasets, NextJobId, Jobs, Solvers, Verifiers, SolverSet,
         VerifierSet, Disputes, TrainedModels, Agenda, PublishedCheckpoints]
