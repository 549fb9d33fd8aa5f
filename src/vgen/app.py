"""``python -m vgen`` / ``vgen``: compose the config with Hydra, build a ProductionManager, drain the queue.

Exit codes: 0 every job succeeded, 1 some job failed (its error row is in the manifest), 2 bad
config/input or a missing checkpoint (nothing generated), 3 aborted by ``vgen-ctl abort`` (the
current job has an ``aborted`` row, later jobs did not run), 130 interrupted by SIGINT (Ctrl-C),
143 stopped by SIGTERM or a SLURM/submitit preemption warning (SIGUSR1/SIGUSR2). A stopped run
can be completed with ``hydra.run.dir=<its dir> queue.resume=true``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from vgen.config.locate import config_dir
from vgen.config.registry import register_all
from vgen.errors import VgenError

log = logging.getLogger("vgen")
RESOLVED_CONFIG_NAME = "resolved_config.yaml"
_DRY_RUN_VALUES = {"dry_run=true", "dry_run=True", "dry_run=1", "+dry_run=true"}
_multirun_exit_codes: list[int] = []

register_all()


def debug_enabled() -> bool:
    if os.environ.get("VGEN_DEBUG", "") not in ("", "0"):
        return True
    try:
        return bool(HydraConfig.get().verbose)
    except ValueError:
        return False


def run(cfg: DictConfig) -> int:
    """Run one configuration (one Hydra job) and return its exit code."""
    from vgen.plan import format_plan
    from vgen.production import ProductionManager

    hydra_cfg = HydraConfig.get()
    manager = ProductionManager(cfg, run_dir=cfg.run_dir, overrides=list(hydra_cfg.overrides.task))
    jobs = manager.jobs()
    manager.validate(jobs)
    if cfg.dry_run:
        print(format_plan(cfg, jobs, manager.planned_output))
        return 0

    from contextlib import ExitStack

    from vgen.queue_controller import ABORT, QueueController
    from vgen.resume import jobs_to_run
    from vgen.signals import SignalStop

    run_dir = Path(cfg.run_dir)
    jobs, skipped = jobs_to_run(cfg.queue, run_dir, jobs)
    (run_dir / RESOLVED_CONFIG_NAME).write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
    log.info("Run dir: %s (%d jobs, model %s)", run_dir, len(jobs), cfg.model.name)
    controller = QueueController(manager, jobs, skipped=skipped)
    with ExitStack() as stack:
        if cfg.control.enabled:
            from vgen.control.server import ControlServer

            stack.enter_context(ControlServer(controller, run_dir, host=cfg.control.host, port=cfg.control.port,
                                              allow_remote=cfg.control.allow_remote))
        stack.enter_context(SignalStop(controller.abort, temp_root=run_dir))
        manager.load_pipeline()  # fail fast (exit 2) on a missing checkpoint, before the queue starts
        summary = controller.run()
    log.info("Manifest: %s", manager.manifest.path)
    if summary.stop_reason not in (None, ABORT) and hydra_cfg.mode == RunMode.MULTIRUN:
        raise SystemExit(summary.exit_code)  # a signal stops the whole sweep, not just this point
    return summary.exit_code


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def hydra_entry(cfg: DictConfig) -> int:
    try:
        code = run(cfg)
    except VgenError as exc:
        if debug_enabled():
            log.exception("vgen failed")
        else:
            log.error("%s", exc)
        code = exc.exit_code
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        _multirun_exit_codes.append(code)
        return code
    if code:
        sys.exit(code)
    return code


def dry_run_argv(argv: list[str]) -> tuple[list[str], str | None]:
    """A dry run writes nothing: Hydra's run dir goes to a temp dir that is removed afterwards.

    Shared by every Hydra entry point with a ``dry_run`` key (``vgen``, ``vgen.matte``)."""
    if not any(arg in _DRY_RUN_VALUES for arg in argv) or "-m" in argv or "--multirun" in argv:
        return argv, None
    scratch = tempfile.mkdtemp(prefix="vgen-dry-run-")
    return [*argv, f"hydra.run.dir={scratch}", "hydra.output_subdir=null", "hydra/job_logging=stdout"], scratch


def main() -> None:
    import shutil

    sys.argv[1:], scratch = dry_run_argv(sys.argv[1:])
    try:
        hydra_entry()
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    if _multirun_exit_codes and max(_multirun_exit_codes):
        sys.exit(max(_multirun_exit_codes))


if __name__ == "__main__":
    main()
