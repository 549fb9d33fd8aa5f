"""Errors a user can act on.

Every error vgen raises on purpose derives from :class:`VgenError`; the entry points print its
message (no traceback unless ``hydra.verbose`` / ``VGEN_DEBUG=1``) and exit with ``exit_code``.
"""

import errno

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


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


class DiskFullError(MediaWriteError):
    """No space left (or the quota is used up) where vgen writes: retrying cannot help, the queue stops."""


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` or an exception it was raised from is a full disk (ENOSPC) or an exhausted quota."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class JobAborted(VgenError):
    """The current job was aborted (control command or signal) at a step boundary."""

    exit_code = 130
