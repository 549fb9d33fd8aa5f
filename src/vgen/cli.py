"""What every vgen Hydra entry point (``vgen``, ``vgen.matte``) shares: error reporting, exit codes,
dry runs that write nothing, and the exit code of a multirun sweep."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from typing import Callable

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


def launch(hydra_entry: Callable[[], None]) -> None:
    """Call a ``@hydra.main`` function with dry-run handling; a sweep exits with its worst point's code.

    The sweep summary is written here, after Hydra returned or raised (a point ending in an
    exception makes Hydra raise before its own ``on_multirun_end``), and knows every point's
    outcome, wherever the launcher ran it.
    """
    from vgen.sweep_summary import finish_started_sweeps

    sys.argv[1:], scratch = dry_run_argv(sys.argv[1:])
    try:
        hydra_entry()
    except BaseException as exc:  # Hydra's SystemExit, or its exception itself with HYDRA_FULL_ERROR=1
        sweep_code = finish_started_sweeps()
        if isinstance(exc, SystemExit) and isinstance(exc.code, int) and sweep_code > exc.code:
            sys.exit(sweep_code)
        raise
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    code = max(0, finish_started_sweeps(), *_multirun_exit_codes)
    if code:
        sys.exit(code)
