"""ML-compute pallet declaration."""

from runtime.codec.scale import u32
from runtime.frame import Pallet
from runtime.pallets.indices import ML_COMPUTE
from runtime.pallets.ml_compute import storage
from runtime.pallets.ml_compute.calls import CALLS
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.events import EVENTS
from runtime.pallets.ml_compute.genesis import genesis_build
from runtime.pallets.ml_compute.hooks import on_initialize
from runtime.pallets.ml_compute.types import MAX_AGENDA_ITEMS, MAX_BATCH, MAX_WORKERS

PALLET = Pallet(
    name="MlCompute",
    index=ML_COMPUTE,
    calls=CALLS,
    storage=storage.ITEMS,
    events=EVENTS,
    errors=ERRORS,
    constants=[
        ("MaxWorkers", u32, lambda params: MAX_WORKERS, "Registered solvers (and verifiers) at most."),
        ("MaxAgendaItems", u32, lambda params: MAX_AGENDA_ITEMS, "Timers due in one block at most."),
        ("MaxBatch", u32, lambda params: MAX_BATCH, "The largest batch a job may train with."),
    ],
    on_initialize=on_initialize,
    genesis_build=genesis_build,
)
