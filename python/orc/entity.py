"""Models and ensembles: the applications an experiment runs."""

import itertools
import random
import typing as t

from .error import SSConfigError, SSUnsupportedError
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

    def _unsupported(self, what: str) -> SSUnsupportedError:
        return SSUnsupportedError(
            f"{self.name}: {what} is not available from Python yet; use `orc run --colocated` "
            "(with --model/--script/--function) from the command line"
        )

    def colocate_db_uds(self, *_args: t.Any, **_kwargs: t.Any) -> None:
        """A colocated database over a Unix socket (command line only for now)."""
        raise self._unsupported("colocate_db_uds")

    def colocate_db_tcp(self, *_args: t.Any, **_kwargs: t.Any) -> None:
        """A colocated database over TCP (command line only for now)."""
        raise self._unsupported("colocate_db_tcp")

    colocate_db = colocate_db_tcp

    def add_ml_model(self, *_args: t.Any, **_kwargs: t.Any) -> None:
        """A model to preload (command line only for now)."""
        raise self._unsupported("add_ml_model")

    def add_script(self, *_args: t.Any, **_kwargs: t.Any) -> None:
        """A script to preload (command line only for now)."""
        raise self._unsupported("add_script")

    def add_function(self, *_args: t.Any, **_kwargs: t.Any) -> None:
        """A function to preload (command line only for now)."""
        raise self._unsupported("add_function")

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
