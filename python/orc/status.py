"""Entity and job statuses, as SmartSim names them."""

STATUS_NEW = "New"
STATUS_QUEUED = "Queued"
STATUS_RUNNING = "Running"
STATUS_PAUSED = "Paused"
STATUS_COMPLETED = "Completed"
STATUS_FAILED = "Failed"
STATUS_CANCELLED = "Cancelled"
STATUS_NEVER_STARTED = "NeverStarted"

#: Statuses that no longer change.
TERMINAL_STATUSES = {STATUS_COMPLETED, STATUS_FAILED, STATUS_CANCELLED, STATUS_NEVER_STARTED}

_FROM_ORC = {
    "new": STATUS_NEW,
    "queued": STATUS_QUEUED,
    "running": STATUS_RUNNING,
    "paused": STATUS_PAUSED,
    "completed": STATUS_COMPLETED,
    "failed": STATUS_FAILED,
    "cancelled": STATUS_CANCELLED,
    "never_started": STATUS_NEVER_STARTED,
}


def from_orc(name: str) -> str:
    """SmartSim's name for one of orc's job statuses (unknown ones count as failed)."""
    return _FROM_ORC.get(name, STATUS_FAILED)
