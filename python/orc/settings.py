"""Run and batch settings, as SmartSim's ``RunSettings`` and ``BatchSettings``."""

import typing as t

from .error import SSConfigError


def walltime_seconds(time: str) -> t.Optional[int]:
    """Seconds in ``"HH:MM:SS"`` (or ``"D-HH:MM:SS"``, ``"MM:SS"``, minutes as a number)."""
    if time is None or time == "":
        return None
    if isinstance(time, (int, float)):
        return int(time) * 60
    days = 0
    text = str(time)
    try:
        if "-" in text:
            d, text = text.split("-", 1)
            days = int(d)
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts) or days < 0:
        raise SSConfigError(f"walltime {time!r}: expected HH:MM:SS")
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts
    return days * 86400 + h * 3600 + m * 60 + s


class RunSettings:
    """How one entity runs: its executable, arguments, environment, and the resources its
    launcher gives it (ranks, nodes, hosts, further launcher arguments)."""

    def __init__(
        self,
        exe: str,
        exe_args: t.Optional[t.Union[str, t.List[str]]] = None,
        run_command: str = "",
        run_args: t.Optional[t.Dict[str, t.Optional[str]]] = None,
        env_vars: t.Optional[t.Dict[str, t.Optional[str]]] = None,
        **_kwargs: t.Any,
    ) -> None:
        if not exe:
            raise SSConfigError("an executable is needed")
        self.exe = [str(exe)]
        self.exe_args = self._args(exe_args)
        self.run_command = run_command
        self.run_args: t.Dict[str, t.Optional[str]] = dict(run_args or {})
        self.env_vars: t.Dict[str, t.Optional[str]] = dict(env_vars or {})
        self.tasks: t.Optional[int] = None
        self.nodes: t.Optional[int] = None
        self.tasks_per_node: t.Optional[int] = None
        self.cpus_per_task: t.Optional[int] = None
        self.hosts: t.List[str] = []

    @staticmethod
    def _args(args: t.Optional[t.Union[str, t.List[str]]]) -> t.List[str]:
        if args is None:
            return []
        if isinstance(args, str):
            return args.split()
        if not all(isinstance(a, str) for a in args):
            raise SSConfigError(f"executable arguments must be strings: {args!r}")
        return list(args)

    def add_exe_args(self, args: t.Union[str, t.List[str]]) -> None:
        """Append arguments."""
        self.exe_args.extend(self._args(args))

    def set_tasks(self, tasks: int) -> None:
        """Number of ranks."""
        self.tasks = int(tasks)

    def set_nodes(self, nodes: int) -> None:
        """Number of nodes."""
        self.nodes = int(nodes)

    def set_tasks_per_node(self, tasks: int) -> None:
        """Ranks per node."""
        self.tasks_per_node = int(tasks)

    def set_cpus_per_task(self, cpus: int) -> None:
        """CPUs per rank."""
        self.cpus_per_task = int(cpus)

    def set_hostlist(self, hosts: t.Union[str, t.List[str]]) -> None:
        """Hosts to run on."""
        self.hosts = [hosts] if isinstance(hosts, str) else list(hosts)

    def set(self, arg: str, value: t.Optional[str] = None) -> None:
        """Another launcher argument (``--arg value``, or a flag)."""
        self.run_args[arg.lstrip("-")] = value

    def update_env(self, env_vars: t.Dict[str, t.Any]) -> None:
        """Add environment variables."""
        self.env_vars.update({k: str(v) for k, v in env_vars.items()})

    def to_orc(self) -> t.Dict[str, t.Any]:
        """orc's ``RunSettings`` (JSON)."""
        return {
            "nodes": self.nodes,
            "tasks": self.tasks,
            "tasks_per_node": self.tasks_per_node,
            "cpus_per_task": self.cpus_per_task,
            "hosts": self.hosts,
            "extra": {k: (None if v is None else str(v)) for k, v in self.run_args.items()},
            "allocation": None,
        }

    def __str__(self) -> str:
        return f"{' '.join(self.exe + self.exe_args)} (run args {self.run_args})"


class BatchSettings:
    """A batch job's request: nodes, walltime, queue, account, other directives."""

    def __init__(
        self,
        nodes: int = 1,
        time: str = "",
        queue: str = "",
        account: str = "",
        batch_args: t.Optional[t.Dict[str, t.Optional[str]]] = None,
        **_kwargs: t.Any,
    ) -> None:
        self.nodes = int(nodes)
        self.walltime = time
        self.queue = queue
        self.account = account
        self.batch_args: t.Dict[str, t.Optional[str]] = dict(batch_args or {})
        walltime_seconds(time)

    def set_nodes(self, nodes: int) -> None:
        """Number of nodes."""
        self.nodes = int(nodes)

    def set_walltime(self, time: str) -> None:
        """Walltime, ``HH:MM:SS``."""
        walltime_seconds(time)
        self.walltime = time

    def set_queue(self, queue: str) -> None:
        """Queue (Slurm partition)."""
        self.queue = queue

    def set_account(self, account: str) -> None:
        """Account to charge."""
        self.account = account

    def set_batch_command(self, _command: str) -> None:
        """Ignored: orc's launcher knows its scheduler's command."""

    def to_orc(self) -> t.Dict[str, t.Any]:
        """orc's ``BatchSettings`` (JSON)."""
        return {
            "nodes": self.nodes,
            "walltime_secs": walltime_seconds(self.walltime),
            "account": self.account or None,
            "queue": self.queue or None,
            "extra": {k.lstrip("-"): (None if v is None else str(v)) for k, v in self.batch_args.items()},
        }
