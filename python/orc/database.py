"""The Orchestrator: SmartSim's database object, over orc's Rust lifecycle."""

import json
import os
import typing as t

from . import _orc
from .error import SSConfigError, SSUnsupportedError
from .settings import walltime_seconds


class Orchestrator:
    """A database of ``db_nodes`` Redis shards with orc-ai (standalone for one, a Redis
    Cluster for more), launched by ``launcher`` inside the current allocation or, with
    ``batch=True``, as a batch job of its own."""

    def __init__(
        self,
        port: int = 6379,
        interface: t.Optional[t.Union[str, t.List[str]]] = None,
        launcher: str = "local",
        run_command: str = "auto",
        db_nodes: int = 1,
        batch: bool = False,
        hosts: t.Optional[t.Union[str, t.List[str]]] = None,
        account: t.Optional[str] = None,
        time: t.Optional[str] = None,
        alloc: t.Optional[str] = None,
        single_cmd: bool = False,
        *,
        threads_per_queue: t.Optional[int] = None,
        inter_op_threads: t.Optional[int] = None,
        intra_op_threads: t.Optional[int] = None,
        db_identifier: str = "orchestrator",
        **kwargs: t.Any,
    ) -> None:
        if int(db_nodes) < 1:
            raise SSConfigError(f"db_nodes must be at least 1, not {db_nodes}")
        if not 0 <= int(port) < 65536:
            raise SSConfigError(f"port {port} is not a port")
        self.port = int(port)
        self.launcher = launcher
        self.run_command = run_command
        self.db_nodes = int(db_nodes)
        self.batch = bool(batch)
        self.single_cmd = bool(single_cmd)
        self.db_identifier = db_identifier
        self.name = db_identifier
        self._interfaces = [interface] if isinstance(interface, str) else list(interface or [])
        self._hosts = [hosts] if isinstance(hosts, str) else list(hosts or [])
        self._account = account
        self._walltime = time
        self._queue: t.Optional[str] = kwargs.pop("queue", None)
        self._alloc = alloc
        self._batch_args: t.Dict[str, t.Optional[str]] = {}
        self._run_args: t.Dict[str, t.Optional[str]] = {}
        self._cpus: t.Optional[int] = None
        self._ai = {
            "threads_per_queue": threads_per_queue,
            "inter_op_threads": inter_op_threads,
            "intra_op_threads": intra_op_threads,
        }
        self._db_conf: t.Dict[str, str] = {}
        # SmartSim turns every other keyword into a redis-server option.
        for key, value in kwargs.items():
            self._db_conf[key.replace("_", "-")] = str(value)
        self._state_dir: t.Optional[str] = None
        self._record: t.Optional[t.Dict[str, t.Any]] = None

    # --- what SmartSim's Orchestrator offers ---

    @property
    def num_shards(self) -> int:
        """Number of shards."""
        return self.db_nodes

    @property
    def hosts(self) -> t.List[str]:
        """The hosts the shards run on (once started), else the hosts asked for."""
        if self._record:
            return sorted({s["host"] for s in self._record["shards"]})
        return list(self._hosts)

    @property
    def type(self) -> str:
        """``Redis`` (orc runs redis-server shards)."""
        return "Redis"

    @property
    def checkpoint_file(self) -> str:
        """The reconnect file of a started database."""
        if not self._state_dir:
            return ""
        return os.path.join(self._state_dir, self.db_identifier, "orchestrator.json")

    def get_address(self) -> t.List[str]:
        """The shards' client addresses (``host:port``)."""
        if not self._record:
            raise SSConfigError("the database has not been started")
        return [f"{s['address']['host']}:{s['address']['port']}" for s in self._record["shards"]]

    def is_active(self) -> bool:
        """True while every shard answers."""
        if not self._state_dir:
            return False
        try:
            st = json.loads(_orc.database_status(self._state_dir, self.db_identifier))
        except _orc.OrcError:
            return False
        return st["state"] == "ready"

    def set_cpus(self, num_cpus: int) -> None:
        """CPUs per shard (its launcher step)."""
        self._cpus = int(num_cpus)

    def set_walltime(self, walltime: str) -> None:
        """Walltime of the database's batch job."""
        if not self.batch:
            raise SSUnsupportedError("set_walltime is for batch databases (batch=True)")
        walltime_seconds(walltime)
        self._walltime = walltime

    def set_hosts(self, host_list: t.Union[str, t.List[str]]) -> None:
        """Hosts to place shards on."""
        self._hosts = [host_list] if isinstance(host_list, str) else list(host_list)

    def set_batch_arg(self, arg: str, value: t.Optional[str] = None) -> None:
        """Another directive for the database's batch job."""
        if not self.batch:
            raise SSUnsupportedError("set_batch_arg is for batch databases (batch=True)")
        self._batch_args[arg.lstrip("-")] = value

    def set_run_arg(self, arg: str, value: t.Optional[str] = None) -> None:
        """Another argument for every shard's launcher step."""
        self._run_args[arg.lstrip("-")] = value

    def enable_checkpoints(self, frequency: int) -> None:
        """Snapshot every ``frequency`` seconds when a key changed."""
        self.set_db_conf("save", f"{int(frequency)} 1")

    def set_max_memory(self, mem: str) -> None:
        """``maxmemory`` (e.g. ``3gb``)."""
        self.set_db_conf("maxmemory", mem)

    def set_eviction_strategy(self, strategy: str) -> None:
        """``maxmemory-policy`` (e.g. ``allkeys-lru``)."""
        self.set_db_conf("maxmemory-policy", strategy)

    def set_max_clients(self, clients: int = 50_000) -> None:
        """``maxclients``."""
        self.set_db_conf("maxclients", str(int(clients)))

    def set_max_message_size(self, size: int = 1_073_741_824) -> None:
        """``proto-max-bulk-len``."""
        self.set_db_conf("proto-max-bulk-len", str(int(size)))

    def set_db_conf(self, key: str, value: str) -> None:
        """A Redis setting: kept for the start, or applied to every shard of a running
        database now (and kept for its restarts)."""
        if self._record and self._state_dir:
            _orc.database_config_set(self._state_dir, self.db_identifier, key, str(value))
        self._db_conf[key] = str(value)

    # --- what orc needs ---

    def _settings(self, launcher: str) -> t.Dict[str, t.Any]:
        ai = {k: v for k, v in self._ai.items() if v is not None}
        s: t.Dict[str, t.Any] = {
            "db_identifier": self.db_identifier,
            "shards": self.db_nodes,
            "port": self.port,
            "interfaces": self._interfaces,
            "hosts": self._hosts,
            "launcher": launcher,
            "single_step": self.single_cmd and self.db_nodes > 1 and launcher != "local",
            "ai": ai,
            "redis_config": self._db_conf,
            "run": {
                "nodes": None,
                "tasks": None,
                "tasks_per_node": None,
                "cpus_per_task": self._cpus,
                "hosts": [],
                "extra": self._run_args,
                "allocation": self._alloc,
            },
        }
        if launcher != "local" and self.db_nodes > 1:
            # Several shards per node are allowed, as many as the allocation needs.
            s["shards_per_host"] = self.db_nodes
            if self.batch or self._hosts:
                s["shards_per_host"] = 1
        if self.batch:
            s["batch"] = {
                "nodes": self.db_nodes,
                "walltime_secs": walltime_seconds(self._walltime or ""),
                "account": self._account,
                "queue": self._queue,
                "extra": self._batch_args,
                "queue_timeout_secs": 600,
            }
        return s

    def _started(self, state_dir: str, record: t.Dict[str, t.Any]) -> None:
        self._state_dir = state_dir
        self._record = record

    def __repr__(self) -> str:
        return f"{type(self).__name__}(db_identifier={self.db_identifier!r}, db_nodes={self.db_nodes}, port={self.port})"


class SlurmOrchestrator(Orchestrator):
    """An Orchestrator on Slurm (``srun`` steps, or an ``sbatch`` job with ``batch=True``)."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        kwargs["launcher"] = "slurm"
        super().__init__(*args, **kwargs)


class PBSOrchestrator(Orchestrator):
    """An Orchestrator on PBS Pro (``mpiexec``, or a ``qsub`` job)."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        kwargs["launcher"] = "pbs"
        super().__init__(*args, **kwargs)


class LSFOrchestrator(Orchestrator):
    """An Orchestrator on LSF (``jsrun``, or a ``bsub`` job)."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        kwargs["launcher"] = "lsf"
        super().__init__(*args, **kwargs)


class CobaltOrchestrator(Orchestrator):
    """An Orchestrator on Cobalt (``aprun``, or a ``qsub`` job)."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        kwargs["launcher"] = "cobalt"
        super().__init__(*args, **kwargs)
