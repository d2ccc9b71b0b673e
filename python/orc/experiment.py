"""The Experiment: SmartSim's driver object, over orc."""

import json
import os
import shutil
import signal
import threading
import time
import typing as t

from . import _orc, status
from .database import (
    CobaltOrchestrator,
    LSFOrchestrator,
    Orchestrator,
    PBSOrchestrator,
    SlurmOrchestrator,
)
from .entity import Ensemble, Model
from .error import LauncherError, SmartSimError, SSConfigError, SSDBIDConflictError
from .settings import BatchSettings, RunSettings

_ORCHESTRATORS = {
    "local": Orchestrator,
    "slurm": SlurmOrchestrator,
    "pbs": PBSOrchestrator,
    "lsf": LSFOrchestrator,
    "cobalt": CobaltOrchestrator,
}


def _find_ai_module() -> None:
    """orc-ai is found through ``ORC_AI_MODULE``; without it, next to an ``orc`` on PATH."""
    if os.environ.get("ORC_AI_MODULE"):
        return
    orc = shutil.which("orc")
    if orc:
        here = os.path.dirname(os.path.realpath(orc))
        for candidate in (os.path.join(here, "liborc_ai.so"), os.path.join(here, "..", "lib", "orc", "liborc_ai.so")):
            if os.path.isfile(candidate):
                os.environ["ORC_AI_MODULE"] = os.path.abspath(candidate)
                return


class _Job:
    """One launched model."""

    def __init__(self, entity: Model, step_id: str) -> None:
        self.entity = entity
        self.step_id = step_id
        self.status = status.STATUS_NEW
        self.returncode: t.Optional[int] = None
        self.started = time.time()
        self.ended: t.Optional[float] = None


class Experiment:
    """An experiment: databases and the models that use them, started, watched and
    stopped together through one launcher."""

    def __init__(self, name: str, exp_path: t.Optional[str] = None, launcher: str = "local") -> None:
        if not name:
            raise SSConfigError("an experiment needs a name")
        self.name = name
        self.exp_path = os.path.abspath(exp_path or os.path.join(os.getcwd(), name))
        os.makedirs(self.exp_path, exist_ok=True)
        if launcher == "auto":
            launcher = _orc.detect_launcher(False)
        self._state_dir = os.path.join(self.exp_path, ".orc")
        try:
            self._launcher = _orc.Launcher(launcher, self._state_dir)
        except _orc.OrcError as e:
            raise SSConfigError(str(e)) from None
        self._launcher_name = launcher
        self._dbs: t.Dict[str, Orchestrator] = {}
        self._jobs: t.Dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._previous_sigint: t.Any = None
        self._kill_on_interrupt = True

    @property
    def launcher(self) -> str:
        """The launcher's name."""
        return self._launcher_name

    # --- creating things ---

    def create_database(
        self,
        port: int = 6379,
        db_nodes: int = 1,
        batch: bool = False,
        hosts: t.Optional[t.Union[str, t.List[str]]] = None,
        run_command: str = "auto",
        interface: t.Optional[t.Union[str, t.List[str]]] = None,
        account: t.Optional[str] = None,
        time: t.Optional[str] = None,
        queue: t.Optional[str] = None,
        single_cmd: bool = True,
        db_identifier: str = "orchestrator",
        **kwargs: t.Any,
    ) -> Orchestrator:
        """An Orchestrator for this experiment's launcher (not started yet)."""
        cls = _ORCHESTRATORS.get(self._launcher_name, Orchestrator)
        extra = dict(kwargs)
        if queue:
            extra["queue"] = queue
        db = cls(
            port=port,
            interface=interface,
            run_command=run_command,
            db_nodes=db_nodes,
            batch=batch,
            hosts=hosts,
            account=account,
            time=time,
            single_cmd=single_cmd,
            db_identifier=db_identifier,
            **extra,
        )
        db.launcher = self._launcher_name
        return db

    def create_run_settings(
        self,
        exe: str,
        exe_args: t.Optional[t.Union[str, t.List[str]]] = None,
        run_command: str = "auto",
        run_args: t.Optional[t.Dict[str, t.Optional[str]]] = None,
        env_vars: t.Optional[t.Dict[str, t.Optional[str]]] = None,
        container: t.Any = None,
        **kwargs: t.Any,
    ) -> RunSettings:
        """Run settings for a model."""
        if container is not None:
            raise SSConfigError("containers are not supported by orc")
        return RunSettings(exe, exe_args, run_command, run_args, env_vars, **kwargs)

    def create_batch_settings(
        self,
        nodes: int = 1,
        time: str = "",
        queue: str = "",
        account: str = "",
        batch_args: t.Optional[t.Dict[str, t.Optional[str]]] = None,
        **kwargs: t.Any,
    ) -> BatchSettings:
        """Batch settings for a model that runs as a job of its own."""
        return BatchSettings(nodes, time, queue, account, batch_args, **kwargs)

    def create_model(
        self,
        name: str,
        run_settings: RunSettings,
        params: t.Optional[t.Dict[str, t.Any]] = None,
        path: t.Optional[str] = None,
        enable_key_prefixing: bool = False,
        batch_settings: t.Optional[BatchSettings] = None,
    ) -> Model:
        """A model (its directory: ``exp_path/name`` unless ``path``)."""
        m = Model(name, params, os.path.abspath(path or os.path.join(self.exp_path, name)), run_settings, batch_settings)
        if enable_key_prefixing:
            m.enable_key_prefixing()
        return m

    def create_ensemble(
        self,
        name: str,
        params: t.Optional[t.Dict[str, t.Any]] = None,
        batch_settings: t.Optional[BatchSettings] = None,
        run_settings: t.Optional[RunSettings] = None,
        replicas: t.Optional[int] = None,
        perm_strategy: str = "all_perm",
        path: t.Optional[str] = None,
        **kwargs: t.Any,
    ) -> Ensemble:
        """An ensemble: a model per parameter combination (``all_perm``, ``step``,
        ``random``) and/or replica, each in ``exp_path/name/name_i``."""
        return Ensemble(
            name,
            params or {},
            os.path.abspath(path or os.path.join(self.exp_path, name)),
            batch_settings=batch_settings,
            run_settings=run_settings,
            perm_strat=perm_strategy,
            replicas=replicas,
            **kwargs,
        )

    def generate(self, *entities: t.Any, tag: t.Optional[str] = None, overwrite: bool = False) -> None:
        """Make each model's directory and put its attached files there: copied,
        symlinked, or configured (every ``;name;`` replaced by its parameter)."""
        tag = tag or ";"
        for model in self._models(entities):
            if os.path.exists(model.path) and overwrite:
                shutil.rmtree(model.path)
            os.makedirs(model.path, exist_ok=True)
            for src in model.files.copy:
                dst = os.path.join(model.path, os.path.basename(src.rstrip("/")))
                if os.path.isdir(src):
                    shutil.copytree(src, dst, dirs_exist_ok=True)
                else:
                    shutil.copy2(src, dst)
            for src in model.files.link:
                dst = os.path.join(model.path, os.path.basename(src.rstrip("/")))
                if os.path.lexists(dst):
                    os.remove(dst)
                os.symlink(os.path.abspath(src), dst)
            for src in model.files.tagged:
                with open(src, encoding="utf-8") as f:
                    text = f.read()
                for key, value in model.params.items():
                    text = text.replace(f"{tag}{key}{tag}", value)
                dst = os.path.join(model.path, os.path.basename(src))
                # Never write through a link (to the user's own file).
                if os.path.lexists(dst):
                    os.remove(dst)
                with open(dst, "w", encoding="utf-8") as f:
                    f.write(text)

    # --- running things ---

    def start(self, *entities: t.Any, block: bool = True, summary: bool = False) -> None:
        """Start databases first, then models (blocking until they end unless
        ``block=False``)."""
        self._catch_interrupt()
        dbs = [e for e in entities if isinstance(e, Orchestrator)]
        others = [e for e in entities if not isinstance(e, Orchestrator)]
        for db in dbs:
            self._start_database(db)
        models = self._models(others)
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise SSConfigError(f"two entities share a name: {names}")
        db_env: t.Dict[str, str] = {}
        for db in self._dbs.values():
            db_env.update(dict(_orc.database_env(self._state_dir, db.db_identifier)))
        for m in models:
            self._launch(m, db_env)
        if summary:
            print(self.summary())
        if block and models:
            self._wait(models, interval=0.2, verbose=False)

    def _start_database(self, db: Orchestrator) -> None:
        running = self._dbs.get(db.db_identifier)
        if running is not None and running.is_active():
            raise SSDBIDConflictError(
                f"a database with identifier {db.db_identifier!r} is already running in this experiment"
            )
        _find_ai_module()
        settings = db._settings(self._launcher_name if db.launcher in ("local", "auto") else db.launcher)
        record = _orc.start_database(json.dumps(settings), self._state_dir)
        db._started(self._state_dir, json.loads(record))
        self._dbs[db.db_identifier] = db

    def _env(self, m: Model, db_env: t.Dict[str, str]) -> t.Dict[str, str]:
        env = dict(db_env)
        if m.query_key_prefixing_on:
            env["SSKEYOUT"] = m.name
        if m.incoming_entities:
            env["SSKEYIN"] = ",".join(e.name for e in m.incoming_entities)
        env.update({k: str(v) for k, v in m.run_settings.env_vars.items() if v is not None})
        return env

    def _launch(self, m: Model, db_env: t.Dict[str, str]) -> None:
        if m.name in self._jobs and self._jobs[m.name].status not in status.TERMINAL_STATUSES:
            raise SSConfigError(f"{m.name} is already running")
        exe = m.run_settings.exe[0]
        found = exe if os.sep in exe else shutil.which(exe)
        if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
            raise SSConfigError(f"{m.name}: executable {exe!r} was not found or cannot be run")
        os.makedirs(m.path, exist_ok=True)
        run = m.run_settings.to_orc()
        if m.batch_settings is not None and self._launcher_name != "local":
            b = m.batch_settings.to_orc()
            for key, value in (("time", self._time(b)), ("account", b["account"]), ("partition", b["queue"])):
                if value:
                    run["extra"][key] = value
            run["nodes"] = run["nodes"] or b["nodes"]
            run["extra"].update(b["extra"])
        exe_path, args = os.path.abspath(found), m._exe_args()
        if m.colocated:
            exe_path, args = self._colocated_rank(m, exe_path, args)
        elif m.db_objects:
            for db in self._dbs.values():
                _orc.database_load(self._state_dir, db.db_identifier, json.dumps(m.db_objects))
        step = {
            "name": m.name,
            "exe": exe_path,
            "args": args,
            "env": self._env(m, db_env),
            "cwd": m.path,
            "stdout": os.path.join(m.path, f"{m.name}.out"),
            "stderr": os.path.join(m.path, f"{m.name}.err"),
            "run": run,
        }
        try:
            step_id = self._launcher.launch(json.dumps(step))
        except _orc.OrcError as e:
            raise LauncherError(str(e)) from None
        with self._lock:
            self._jobs[m.name] = _Job(m, step_id)
            self._jobs[m.name].status = status.STATUS_RUNNING

    def _colocated_rank(self, m: Model, exe: str, args: t.List[str]) -> t.Tuple[str, t.List[str]]:
        """The rank wrapper that gives each node of ``m`` its database first (``orc
        colocated-rank``, as ``orc run --colocated`` runs it)."""
        orc_bin = os.environ.get("ORC_BIN") or shutil.which("orc")
        if not orc_bin:
            raise SSConfigError(f"{m.name}: a colocated database needs the `orc` program on PATH (or ORC_BIN)")
        _find_ai_module()
        c = m._colocated
        run_id = _orc.new_run_id()
        settings = {
            "db_identifier": c["db_identifier"],
            "shards": 1,
            "deployment": "standalone",
            "ai": c["ai"],
            "interfaces": c["interfaces"],
            "preload": m.db_objects,
            "redis_config": c["redis_config"],
        }
        spec = {"run_id": run_id, "settings": settings, "transport": c["transport"],
                "db_cpus": c["db_cpus"], "pin": c["pin"], "env": []}
        run_dir = os.path.join(self._state_dir, "runs", run_id)
        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        os.chmod(self._state_dir, 0o700)
        path = _orc.write_colocated_spec(json.dumps(spec), os.path.join(run_dir, "spec.json"))
        return os.path.abspath(orc_bin), ["--state-dir", self._state_dir, "colocated-rank", path, "--", exe] + args

    @staticmethod
    def _time(b: t.Dict[str, t.Any]) -> t.Optional[str]:
        s = b["walltime_secs"]
        if not s:
            return None
        return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"

    def _refresh(self) -> None:
        with self._lock:
            live = [j for j in self._jobs.values() if j.status not in status.TERMINAL_STATUSES]
            if not live:
                return
            try:
                states = json.loads(self._launcher.status([j.step_id for j in live]))
            except _orc.OrcError as e:
                raise LauncherError(str(e)) from None
            for job, st in zip(live, states):
                job.status = status.from_orc(st["status"])
                job.returncode = st.get("exit_code")
                if job.status in status.TERMINAL_STATUSES and job.ended is None:
                    job.ended = time.time()

    def _wait(self, models: t.List[Model], interval: float, verbose: bool, stop_on_interrupt: bool = True) -> None:
        try:
            while True:
                self._refresh()
                left = [m for m in models if self._jobs[m.name].status not in status.TERMINAL_STATUSES]
                if verbose:
                    for m in left:
                        print(f"{m.name}: {self._jobs[m.name].status}")
                if not left:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            if stop_on_interrupt:
                self._stop_everything()
            raise

    def poll(self, interval: int = 10, verbose: bool = True, kill_on_interrupt: bool = True) -> None:
        """Wait until every launched model has ended, reporting each ``interval`` s; a
        Ctrl-C meanwhile stops everything unless ``kill_on_interrupt`` is false."""
        self._kill_on_interrupt = kill_on_interrupt
        try:
            self._wait([j.entity for j in self._jobs.values()], interval, verbose, kill_on_interrupt)
        finally:
            self._kill_on_interrupt = True

    def finished(self, entity: t.Any) -> bool:
        """Whether a launched model (or every model of an ensemble) has ended."""
        self._refresh()
        models = self._models([entity])
        for m in models:
            if m.name not in self._jobs:
                raise SmartSimError(f"{m.name} has not been launched in this experiment")
        return all(self._jobs[m.name].status in status.TERMINAL_STATUSES for m in models)

    def get_status(self, *entities: t.Any) -> t.List[str]:
        """The status of each model (an ensemble gives one per member; a database, one
        per shard)."""
        self._refresh()
        out: t.List[str] = []
        for e in entities:
            if isinstance(e, Orchestrator):
                out.extend(self._db_status(e))
                continue
            for m in self._models([e]):
                job = self._jobs.get(m.name)
                if job is None:
                    raise SmartSimError(f"{m.name} has not been launched in this experiment")
                out.append(job.status)
        return out

    def _db_status(self, db: Orchestrator) -> t.List[str]:
        if not db._state_dir:
            return [status.STATUS_NEW] * db.num_shards
        if db._record is None:
            return [status.STATUS_CANCELLED] * db.num_shards
        try:
            st = json.loads(_orc.database_status(db._state_dir, db.db_identifier))
        except _orc.OrcError:
            return [status.STATUS_CANCELLED] * db.num_shards
        result = []
        for step in st["steps"]:
            ok = step.get("Ok") if isinstance(step, dict) else None
            result.append(status.from_orc(ok["status"]) if ok else status.STATUS_FAILED)
        return result

    def stop(self, *entities: t.Any) -> None:
        """Stop models (their status becomes Cancelled) and databases (every shard shut
        down, nothing left)."""
        for e in entities:
            if isinstance(e, Orchestrator):
                if e._state_dir:
                    _orc.stop_database(e._state_dir, e.db_identifier)
                    e._record = None
                self._dbs.pop(e.db_identifier, None)
                continue
            for m in self._models([e]):
                job = self._jobs.get(m.name)
                if job is None:
                    raise SmartSimError(f"{m.name} has not been launched in this experiment")
                if job.status not in status.TERMINAL_STATUSES:
                    final = json.loads(self._launcher.cancel(job.step_id))
                    job.returncode = final.get("exit_code")
                    job.status = status.STATUS_CANCELLED
                    job.ended = time.time()

    def _stop_everything(self) -> None:
        """What a Ctrl-C does: stop every model, then every database this experiment started."""
        for job in list(self._jobs.values()):
            if job.status not in status.TERMINAL_STATUSES:
                try:
                    self.stop(job.entity)
                except Exception:  # noqa: BLE001 - best effort while interrupted
                    pass
        for db in list(self._dbs.values()):
            try:
                self.stop(db)
            except Exception:  # noqa: BLE001
                pass

    def _catch_interrupt(self) -> None:
        """On the first start: a Ctrl-C (SIGINT) stops everything started, then goes on as
        before (KeyboardInterrupt by default)."""
        if self._previous_sigint is not None or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: t.Any) -> None:
            if self._kill_on_interrupt:
                self._stop_everything()
            if callable(previous):
                previous(signum, frame)
            else:
                raise KeyboardInterrupt

        self._previous_sigint = previous
        signal.signal(signal.SIGINT, handler)

    def reconnect_orchestrator(self, checkpoint: str) -> Orchestrator:
        """The running database whose reconnect file (``orchestrator.json``, or its
        directory) is ``checkpoint``, as an Orchestrator of this experiment."""
        path = os.path.abspath(checkpoint)
        if os.path.isdir(path):
            path = os.path.join(path, "orchestrator.json")
        if not os.path.isfile(path):
            raise SmartSimError(f"no reconnect file at {path}")
        db_dir = os.path.dirname(path)
        state_dir, db_id = os.path.dirname(db_dir), os.path.basename(db_dir)
        record = json.loads(_orc.database_record(state_dir, db_id))
        s = record["settings"]
        db = Orchestrator(port=s.get("port", 0), db_nodes=s["shards"], db_identifier=db_id, launcher=record["launcher"])
        db._started(state_dir, record)
        if not db.is_active():
            raise SmartSimError(f"database {db_id!r} at {path} is not running")
        self._dbs[db_id] = db
        return db

    def summary(self, style: str = "github") -> str:
        """A table of every launched model and database."""
        self._refresh()
        rows = [["Name", "Entity-Type", "JobID", "RunID", "Time", "Status", "Returncode"]]
        for i, job in enumerate(self._jobs.values()):
            took = (job.ended or time.time()) - job.started
            rc = "" if job.returncode is None else str(job.returncode)
            rows.append([job.entity.name, "Model", job.step_id, str(i), f"{took:.2f}", job.status, rc])
        for db in self._dbs.values():
            for j, st in enumerate(self._db_status(db)):
                step = db._record["shards"][j]["step"] if db._record else ""
                rows.append([f"{db.db_identifier}_{j}", "DBNode", step, "0", "", st, ""])
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        line = lambda r: "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |"  # noqa: E731
        if style != "github":
            return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows)
        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(rows[0]), sep] + [line(r) for r in rows[1:]])

    @staticmethod
    def _models(entities: t.Iterable[t.Any]) -> t.List[Model]:
        out: t.List[Model] = []
        for e in entities:
            if isinstance(e, Ensemble):
                out.extend(e.models)
            elif isinstance(e, Model):
                out.append(e)
            elif isinstance(e, Orchestrator):
                continue
            else:
                raise SSConfigError(f"{e!r} is not a Model, Ensemble or Orchestrator")
        return out

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, launcher={self._launcher_name!r})"
