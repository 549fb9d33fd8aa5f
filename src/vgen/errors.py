"""Errors a user can act on.

Every error vgen raises on purpose derives from :class:`VgenError`; the entry points print its
message (no traceback unless ``hydra.verbose`` / ``VGEN_DEBUG=1``) and exit with ``exit_code``.
"""


class VgenError(Exception):
    """Base class for expected, user-facing failures."""

    exit_code = 1


class ConfigError(VgenError):
    """A config value, job spec or input file is invalid; raised before any model loads."""

    exit_code = 2


class CheckpointNotFoundError(VgenError):
    """A model checkpoint is not available locally (vgen never downloads at run time)."""

    exit_code = 2


class MediaWriteError(VgenError):
    """Writing an artifact failed after every retry."""

    exit_code = 1


class JobAborted(VgenError):
    """The current job was aborted (control command or signal) at a step boundary."""

    exit_code = 130
