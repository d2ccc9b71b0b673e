"""Models and ensembles: the applications an experiment runs."""

import itertools
import os
import random
import typing as t

from .error import SSConfigError
from .settings import BatchSettings, RunSettings

_PERM_STRATEGIES = ("all_perm", "step", "random")


class EntityFiles:
    """Files attached to an entity: copied, symlinked, or configured (``;name;`` tags
    replaced by the entity's parameters) into its directory by ``Experiment.generate``."""

    def __init__(self) -> None:
        self.copy: t.List[str] = []
        self.link: t.List[str] = []
        self.tagged: t.List[str] = []


class Model:
    """One application: an executable with run settings, parameters and attached files."""

    def __init__(
        self,
        name: str,
        params: t.Optional[t.Dict[str, t.Any]],
        path: str,
        run_settings: RunSettings,
        batch_settings: t.Optional[BatchSettings] = None,
        params_as_args: t.Optional[t.List[str]] = None,
    ) -> None:
        if not name or "/" in name:
            raise SSConfigError(f"entity name {name!r}: a non-empty name without '/'")
        if not isinstance(run_settings, RunSettings):
            raise SSConfigError(f"{name}: run_settings must be RunSettings, not {type(run_settings).__name__}")
        self.name = name
        self.params: t.Dict[str, str] = {k: str(v) for k, v in (params or {}).items()}
        self.path = path
        self.run_settings = run_settings
        self.batch_settings = batch_settings
        self.files = EntityFiles()
        self.incoming_entities: t.List[t.Any] = []
        self.query_key_prefixing_on = False
        self._params_as_args = list(params_as_args or [])
        for p in self._params_as_args:
            if p not in self.params:
                raise SSConfigError(f"{name}: params_as_args names {p!r}, which is not a parameter")
        self.colocated = False
        self._colocated: t.Dict[str, t.Any] = {}
        self.db_objects: t.List[t.Dict[str, t.Any]] = []

    @property
    def type(self) -> str:
        """``Model``."""
        return "Model"

    def attach_generator_files(
        self,
        to_copy: t.Optional[t.List[str]] = None,
        to_symlink: t.Optional[t.List[str]] = None,
        to_configure: t.Optional[t.List[str]] = None,
    ) -> None:
        """Files for ``Experiment.generate`` to copy, symlink or configure."""
        self.files.copy.extend(to_copy or [])
        self.files.link.extend(to_symlink or [])
        self.files.tagged.extend(to_configure or [])

    def enable_key_prefixing(self) -> None:
        """Prefix this model's keys with its name (``SSKEYOUT``)."""
        self.query_key_prefixing_on = True

    def register_incoming_entity(self, entity: t.Any) -> None:
        """Read keys written by ``entity`` with its prefix (``SSKEYIN``)."""
        if entity.name in (e.name for e in self.incoming_entities):
            raise SSConfigError(f"{self.name}: {entity.name} is already an incoming entity")
        self.incoming_entities.append(entity)

    def query_key_prefixing(self) -> bool:
        """Whether key prefixing is on."""
        return self.query_key_prefixing_on

    # --- colocated databases and objects to load (SmartSim's Model API) ---

    def colocate_db_uds(
        self,
        unix_socket: t.Optional[str] = None,
        socket_permissions: int = 700,
        db_cpus: int = 1,
        custom_pinning: t.Optional[t.Iterable[t.Union[int, t.Iterable[int]]]] = None,
        debug: bool = False,
        db_identifier: str = "",
        **kwargs: t.Any,
    ) -> None:
        """A database beside this model on each of its nodes, over a Unix socket (orc's
        private one under ``$TMPDIR`` unless ``unix_socket``)."""
        self._colocate({"unix": {"path": unix_socket}}, db_cpus, custom_pinning, db_identifier, kwargs)

    def colocate_db_tcp(
        self,
        port: int = 6379,
        ifname: t.Union[str, t.List[str]] = "lo",
        db_cpus: int = 1,
        custom_pinning: t.Optional[t.Iterable[t.Union[int, t.Iterable[int]]]] = None,
        debug: bool = False,
        db_identifier: str = "",
        **kwargs: t.Any,
    ) -> None:
        """A database beside this model on each of its nodes, over loopback TCP on
        ``port`` (also bound to ``ifname`` interfaces other than ``lo``)."""
        names = [ifname] if isinstance(ifname, str) else list(ifname)
        self._colocate({"tcp": {"port": int(port)}}, db_cpus, custom_pinning, db_identifier, kwargs, names)

    colocate_db = colocate_db_tcp

    def _colocate(
        self,
        transport: t.Dict[str, t.Any],
        db_cpus: int,
        pinning: t.Any,
        db_identifier: str,
        kwargs: t.Dict[str, t.Any],
        interfaces: t.Optional[t.List[str]] = None,
    ) -> None:
        if self.colocated:
            raise SSConfigError(f"{self.name} already has a colocated database")
        ai: t.Dict[str, int] = {}
        conf: t.Dict[str, str] = {}
        names = {"threads_per_queue": "threads_per_queue", "inter_op_parallelism": "inter_op_threads",
                 "intra_op_parallelism": "intra_op_threads", "inter_op_threads": "inter_op_threads",
                 "intra_op_threads": "intra_op_threads"}
        for k, v in kwargs.items():
            if k in names:
                ai[names[k]] = int(v)
            else:
                conf[k.replace("_", "-")] = str(v)
        pin = None
        if pinning is not None:
            flat: t.List[int] = []
            for p in pinning:
                flat.extend(p if isinstance(p, (list, range, tuple, set)) else [p])
            if any(not isinstance(c, int) or c < 0 for c in flat):
                raise SSConfigError(f"custom_pinning {pinning!r}: CPU numbers")
            pin = sorted(set(flat)) or None
        ifs = [i for i in (interfaces or []) if i != "lo"]
        self._colocated = {
            "transport": transport,
            "db_cpus": int(db_cpus),
            "pin": pin,
            "db_identifier": db_identifier or "orchestrator",
            "ai": ai,
            "redis_config": conf,
            "interfaces": ["lo"] + ifs if ifs else [],
        }
        self.colocated = True

    def _object_file(self, kind: str, name: str, data: t.Union[bytes, str]) -> str:
        d = os.path.join(self.path, ".orc-objects")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"{kind}-{name}")
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return path

    def add_ml_model(
        self,
        name: str,
        backend: str,
        model: t.Optional[bytes] = None,
        model_path: t.Optional[str] = None,
        device: str = "CPU",
        devices_per_node: int = 1,
        first_device: int = 0,
        batch_size: int = 0,
        min_batch_size: int = 0,
        min_batch_timeout: int = 0,
        tag: str = "",
        inputs: t.Optional[t.List[str]] = None,
        outputs: t.Optional[t.List[str]] = None,
    ) -> None:
        """A model to load into the database before this model starts (its colocated
        one, else every running database of the experiment)."""
        if (model is None) == (model_path is None):
            raise SSConfigError(f"{name}: give exactly one of model and model_path")
        path = model_path if model is None else self._object_file("model", name, model)
        self.db_objects.append({
            "kind": "model", "name": name, "path": os.path.abspath(path), "backend": backend.upper(),
            "device": _device(device, devices_per_node, first_device), "batch_size": int(batch_size),
            "min_batch_size": int(min_batch_size), "min_batch_timeout": int(min_batch_timeout),
            "tag": tag, "inputs": list(inputs or []), "outputs": list(outputs or []),
        })

    def add_script(
        self,
        name: str,
        script: t.Optional[str] = None,
        script_path: t.Optional[str] = None,
        device: str = "CPU",
        devices_per_node: int = 1,
        first_device: int = 0,
    ) -> None:
        """TorchScript source to load before this model starts."""
        if (script is None) == (script_path is None):
            raise SSConfigError(f"{name}: give exactly one of script and script_path")
        path = script_path if script is None else self._object_file("script", name, script)
        self.db_objects.append({"kind": "script", "name": name, "path": os.path.abspath(path),
                                "device": _device(device, devices_per_node, first_device)})

    def add_function(
        self,
        name: str,
        function: t.Optional[t.Callable[..., t.Any]] = None,
        device: str = "CPU",
        devices_per_node: int = 1,
        first_device: int = 0,
    ) -> None:
        """A Python function to load as a script (its source, as SmartRedis's
        ``set_function``), before this model starts."""
        import inspect
        import textwrap

        if function is None or not callable(function):
            raise SSConfigError(f"{name}: give a function")
        src = textwrap.dedent(inspect.getsource(function))
        path = self._object_file("function", name, src + "\n")
        self.db_objects.append({"kind": "function", "name": name, "path": os.path.abspath(path),
                                "function": function.__name__,
                                "device": _device(device, devices_per_node, first_device)})

    def _exe_args(self) -> t.List[str]:
        extra = []
        for p in self._params_as_args:
            extra += [f"--{p}={self.params[p]}"]
        return self.run_settings.exe_args + extra

    def __repr__(self) -> str:
        return f"Model(name={self.name!r})"


class Ensemble:
    """Models made from one run settings and a parameter space (or replicas)."""

    def __init__(
        self,
        name: str,
        params: t.Dict[str, t.Any],
        path: str,
        params_as_args: t.Optional[t.List[str]] = None,
        batch_settings: t.Optional[BatchSettings] = None,
        run_settings: t.Optional[RunSettings] = None,
        perm_strat: str = "all_perm",
        replicas: t.Optional[int] = None,
        **kwargs: t.Any,
    ) -> None:
        if perm_strat not in _PERM_STRATEGIES:
            raise SSConfigError(f"perm_strategy {perm_strat!r}: one of {', '.join(_PERM_STRATEGIES)}")
        self.name = name
        self.path = path
        self.params = dict(params or {})
        self.batch_settings = batch_settings
        self.run_settings = run_settings
        self.models: t.List[Model] = []
        if run_settings is None:
            if params or replicas:
                raise SSConfigError(f"{name}: an ensemble with parameters or replicas needs run_settings")
            return
        if replicas is not None:
            if int(replicas) < 1:
                raise SSConfigError(f"{name}: replicas must be at least 1")
            combos: t.List[t.Dict[str, t.Any]] = [dict() for _ in range(int(replicas))]
            if self.params:
                combos = [c for c in self._combinations(perm_strat, kwargs) for _ in range(int(replicas))]
        elif self.params:
            combos = self._combinations(perm_strat, kwargs)
        else:
            raise SSConfigError(f"{name}: give params or replicas")
        for i, combo in enumerate(combos):
            m = Model(f"{name}_{i}", combo, f"{path}/{name}_{i}", _copy(run_settings), batch_settings, params_as_args)
            self.models.append(m)

    def _combinations(self, strategy: str, kwargs: t.Dict[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
        names = list(self.params)
        values = [v if isinstance(v, list) else [v] for v in self.params.values()]
        if strategy == "step":
            if len({len(v) for v in values}) != 1:
                raise SSConfigError(f"{self.name}: the step strategy needs equally long value lists")
            return [dict(zip(names, vs)) for vs in zip(*values)]
        every = [dict(zip(names, vs)) for vs in itertools.product(*values)]
        if strategy == "random":
            n = int(kwargs.get("n_models", len(every)))
            return random.sample(every, min(n, len(every)))
        return every

    @property
    def type(self) -> str:
        """``Ensemble``."""
        return "Ensemble"

    @property
    def entities(self) -> t.List[Model]:
        """Its models."""
        return self.models

    def add_model(self, model: Model) -> None:
        """Add a model of your own."""
        if any(m.name == model.name for m in self.models):
            raise SSConfigError(f"{self.name}: a model named {model.name} is already in it")
        self.models.append(model)

    def enable_key_prefixing(self) -> None:
        """Prefix each member's keys with its name."""
        for m in self.models:
            m.enable_key_prefixing()

    def register_incoming_entity(self, entity: t.Any) -> None:
        """Every member reads ``entity``'s keys."""
        for m in self.models:
            m.register_incoming_entity(entity)

    def attach_generator_files(self, **kwargs: t.Any) -> None:
        """Files for every member."""
        for m in self.models:
            m.attach_generator_files(**kwargs)

    def __repr__(self) -> str:
        return f"Ensemble(name={self.name!r}, models={len(self.models)})"


def _copy(rs: RunSettings) -> RunSettings:
    new = RunSettings(rs.exe[0], list(rs.exe_args), rs.run_command, dict(rs.run_args), dict(rs.env_vars))
    new.exe = list(rs.exe)
    new.tasks, new.nodes, new.tasks_per_node = rs.tasks, rs.nodes, rs.tasks_per_node
    new.cpus_per_task, new.hosts = rs.cpus_per_task, list(rs.hosts)
    return new


def _device(device: str, per_node: int, first: int) -> t.Dict[str, t.Any]:
    kind = device.upper().split(":")[0]
    if kind not in ("CPU", "GPU"):
        raise SSConfigError(f"device {device!r}: CPU or GPU")
    if ":" in device:
        first = int(device.split(":")[1])
    return {"kind": kind, "devices_per_node": int(per_node), "first_device": int(first)}
