"""orc: SmartSim's Orchestrator and Experiment API over orc.

A SmartSim driver ports by changing its imports::

    from orc import Experiment

    exp = Experiment("demo", launcher="local")
    db = exp.create_database(port=6780, db_nodes=3)
    exp.start(db)
    settings = exp.create_run_settings("python", exe_args=["sim.py"])
    model = exp.create_model("sim", settings)
    exp.start(model, block=True)
    print(exp.get_status(model))
    exp.stop(db)

Databases are real Redis shards with orc-ai, started, watched and stopped by orc's Rust
core (no `orc` command is run); entities run through orc's launchers (local processes,
Slurm steps inside an allocation, batch jobs outside one, PBS, LSF, Cobalt).
"""

from . import status
from ._orc import OrcError
from .database import (
    CobaltOrchestrator,
    LSFOrchestrator,
    Orchestrator,
    PBSOrchestrator,
    SlurmOrchestrator,
)
from .entity import Ensemble, Model
from .error import (
    LauncherError,
    SmartSimError,
    SSConfigError,
    SSDBIDConflictError,
    SSUnsupportedError,
)
from .experiment import Experiment
from .settings import BatchSettings, RunSettings

__all__ = [
    "BatchSettings",
    "CobaltOrchestrator",
    "Ensemble",
    "Experiment",
    "LauncherError",
    "LSFOrchestrator",
    "Model",
    "OrcError",
    "Orchestrator",
    "PBSOrchestrator",
    "RunSettings",
    "SlurmOrchestrator",
    "SmartSimError",
    "SSConfigError",
    "SSDBIDConflictError",
    "SSUnsupportedError",
    "status",
]
