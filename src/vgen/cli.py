"""What every vgen Hydra entry point (``vgen``, ``vgen.matte``) shares: error reporting, exit codes,
dry runs that write nothing, and the exit code of a multirun sweep."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from contextlib import nullcontext
from typing import Callable, ContextManager, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from vgen.errors import VgenError

RESOLVED_CONFIG_NAME = "resolved_config.yaml"
_DRY_RUN_VALUES = {"dry_run=true", "dry_run=True", "dry_run=1", "+dry_run=true"}
# Exit codes of the sweep points run in this process (the basic launcher runs them all here);
# hydra.main returns nothing in multirun mode, so this is how ``launch`` learns the worst one.
_multirun_exit_codes: list[int] = []


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
    try:
        code = run(cfg)
    except VgenError as exc:
        if debug_enabled():
            log.exception("%s failed", log.name)
        else:
            log.error("%s", exc)
        code = exc.exit_code
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
    from vgen.run_lock import hold_run_dir

    run_dir = argv_value(argv, "hydra.run.dir")
    if not run_dir or "${" in run_dir or "-m" in argv or "--multirun" in argv:
        return nullcontext()
    return hold_run_dir(run_dir)


def launch(hydra_entry: Callable[[], None]) -> None:
    """Call a ``@hydra.main`` function with dry-run handling and the run dir locked; a sweep exits with
    its worst point's code."""
    sys.argv[1:], scratch = dry_run_argv(sys.argv[1:])
    try:
        with nullcontext() if scratch else run_dir_lock(sys.argv[1:]):
            hydra_entry()
    except VgenError as exc:  # the run dir is busy or cannot be created: Hydra has not started
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    if _multirun_exit_codes and max(_multirun_exit_codes):
        sys.exit(max(_multirun_exit_codes))
