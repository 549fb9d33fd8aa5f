"""What every vgen Hydra entry point (``vgen``, ``vgen.matte``) shares: error reporting, exit codes,
dry runs that write nothing, and the exit code of a multirun sweep.

A failure before the task function runs (config composition: unknown key, wrong type, unknown group
option, bad override syntax; or a run dir that cannot be created or written) is bad input: one line
on stderr and exit 2, with the full traceback only under ``hydra.verbose`` or ``VGEN_DEBUG=1``.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import traceback
from contextlib import nullcontext
from typing import Callable, ContextManager, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from vgen.errors import DiskFullError, VgenError, is_disk_full

RESOLVED_CONFIG_NAME = "resolved_config.yaml"
_DRY_RUN_VALUES = {"dry_run=true", "dry_run=True", "dry_run=1", "+dry_run=true"}
# Exit codes of the sweep points run in this process (the basic launcher runs them all here);
# hydra.main returns nothing in multirun mode, so this is how ``launch`` learns the worst one.
_multirun_exit_codes: list[int] = []
_task_started = False  # set by run_hydra_task: an OSError or OmegaConf error before it is a setup error
EXIT_BAD_INPUT = 2


def debug_enabled() -> bool:
    """Tracebacks for expected errors only with ``VGEN_DEBUG=1`` or ``hydra.verbose``."""
    if os.environ.get("VGEN_DEBUG", "") not in ("", "0"):
        return True
    try:
        return bool(HydraConfig.get().verbose)
    except ValueError:
        return False


def run_hydra_task(run: Callable[[DictConfig], int], cfg: DictConfig, log: logging.Logger) -> int:
    """Run one Hydra job; a :class:`VgenError` becomes one log line and its exit code.

    A single run exits with that code at once; a sweep point records it and lets the sweep go on.
    """
    global _task_started
    _task_started = True
    try:
        code = run(cfg)
    except VgenError as exc:
        if debug_enabled():
            log.exception("%s failed", log.name)
        else:
            log.error("%s", exc)
        code = exc.exit_code
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        log.error("%s stopped: %s", log.name, exc, exc_info=debug_enabled())
        code = DiskFullError.exit_code  # e.g. the error row itself could not be written
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        _multirun_exit_codes.append(code)
    elif code:
        sys.exit(code)
    return code


def dry_run_argv(argv: list[str]) -> tuple[list[str], str | None]:
    """A dry run writes nothing: Hydra's run dir goes to a temp dir that is removed afterwards."""
    if not any(arg in _DRY_RUN_VALUES for arg in argv) or "-m" in argv or "--multirun" in argv:
        return argv, None
    scratch = tempfile.mkdtemp(prefix="vgen-dry-run-")
    return [*argv, f"hydra.run.dir={scratch}", "hydra.output_subdir=null", "hydra/job_logging=stdout"], scratch


def argv_value(argv: Sequence[str], key: str) -> str | None:
    """The last ``key=value`` (also ``+key=``/``++key=``) on the command line, quotes removed."""
    for arg in reversed(argv):
        name, sep, value = arg.lstrip("+").partition("=")
        if sep and name == key:
            return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"" else value
    return None


def run_dir_lock(argv: list[str]) -> ContextManager[None]:
    """The lock on a run dir named on the command line, taken before Hydra writes into it.

    Sweeps, dry runs and run dirs Hydra has yet to resolve are locked by the run itself instead.
    """
    from vgen.rundir.lock import hold_run_dir

    run_dir = argv_value(argv, "hydra.run.dir")
    if not run_dir or "${" in run_dir or "-m" in argv or "--multirun" in argv:
        return nullcontext()
    return hold_run_dir(run_dir)


def _os_error(exc: BaseException | None) -> OSError | None:
    """The OSError behind ``exc`` (logging wraps a log file it cannot open in a ValueError)."""
    while exc is not None and not isinstance(exc, HydraException):
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__
    return None


def setup_error_line(exc: BaseException) -> str:
    """Hydra's multi-line report of a composition error, or a run dir OSError, as one line."""
    if (os_error := _os_error(exc)) is not None:
        return f"cannot create or write the run dir ({os_error.filename or os_error}): {os_error.strerror or os_error}"
    parts: list[str] = []
    options: list[str] = []
    for line in str(exc).splitlines():
        if line.startswith("Config search path"):
            break  # Hydra's search path listing ends the useful part
        if line.startswith("\t"):  # an option of "Available options in 'group':"
            if not line.strip().startswith("base_"):  # the schema nodes (vgen.config.schema) are no options
                options.append(line.strip())
        elif line.strip() and not line.startswith("See https://"):
            parts.append(line.strip().rstrip("."))
    if options:
        parts[-1] += " " + ", ".join(options)
    if isinstance(exc.__cause__, OmegaConfBaseException):
        parts.append(str(exc.__cause__).splitlines()[0])
    line = "; ".join(parts)
    if isinstance(exc, OverrideParseException) and exc.override not in line:
        line = f"bad override {exc.override!r}: {line}"
    return line


def is_setup_error(exc: BaseException) -> bool:
    """Bad input rather than a failed job: a Hydra composition error (also a sweep point's), or a
    config/run dir error raised before any task ran."""
    if isinstance(exc, HydraException):
        return True
    return not _task_started and (isinstance(exc, OmegaConfBaseException) or _os_error(exc) is not None)


CONFIG_ERRORS = (HydraException, OmegaConfBaseException, VgenError)


def config_error_exit(error: BaseException) -> int:
    """For plain (non-Hydra-app) entry points that compose the config: print ``error`` (one of
    :data:`CONFIG_ERRORS`) as one line and return its exit code."""
    if isinstance(error, VgenError):
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"error: {setup_error_line(error)}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _verbose_requested(argv: list[str]) -> bool:
    """``hydra.verbose=<anything but false/null>`` on the command line, or VGEN_DEBUG / HYDRA_FULL_ERROR set."""
    for arg in argv:
        if arg.startswith("hydra.verbose=") and arg.split("=", 1)[1] not in ("", "false", "False", "null", "[]"):
            return True
    return debug_enabled() or os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def launch(hydra_entry: Callable[[], None], prog: str) -> None:
    """Call a ``@hydra.main`` function with dry-run handling and the run dir locked; a sweep exits with
    its worst point's code.

    ``HYDRA_FULL_ERROR=1`` makes Hydra raise its errors here instead of printing them and exiting 1,
    so a setup error (before the task runs) becomes one line and exit 2. The sweep summary is written
    here, after Hydra returned or raised (a point ending in an exception makes Hydra raise before its
    own ``on_multirun_end``), and knows every point's outcome, wherever the launcher ran it.
    """
    from vgen.sweep.summary import finish_started_sweeps

    argv, scratch = dry_run_argv(sys.argv[1:])
    sys.argv[1:] = argv
    verbose = _verbose_requested(argv)
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with nullcontext() if scratch else run_dir_lock(argv):
            hydra_entry()
    except VgenError as exc:  # the run dir is busy or cannot be created: Hydra has not started
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except SystemExit as exc:  # a sweep point stopped the whole sweep (a signal)
        sweep_code = finish_started_sweeps()
        if isinstance(exc.code, int) and sweep_code > exc.code:
            sys.exit(sweep_code)
        raise
    except Exception as exc:
        sweep_code = finish_started_sweeps()
        if is_setup_error(exc):
            line, code = setup_error_line(exc), EXIT_BAD_INPUT
        elif sweep_code:  # a sweep point raised (e.g. submitit's "not requeued"): the summary has it
            line, code = f"a sweep point failed: {type(exc).__name__}: {exc}".splitlines()[0], sweep_code
        else:
            raise
        if verbose:
            traceback.print_exc()
        print(f"{prog}: error: {line}", file=sys.stderr)
        sys.exit(code)
    finally:
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    code = max(0, finish_started_sweeps(), *_multirun_exit_codes)
    if code:
        sys.exit(code)
