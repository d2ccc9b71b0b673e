"""Exceptions: every error orc reports is an ``OrcError`` carrying orc's message;
SmartSim's names are kept so that ``except`` clauses port unchanged."""

from ._orc import OrcError

#: SmartSim's base error is orc's.
SmartSimError = OrcError


class SSConfigError(OrcError, ValueError):
    """Bad settings or parameters."""


class SSUnsupportedError(OrcError, NotImplementedError):
    """Something orc (or the chosen launcher) does not do."""


class LauncherError(OrcError):
    """A launcher could not launch, watch or stop an entity."""


class SSDBIDConflictError(OrcError):
    """Two databases with one identifier."""
