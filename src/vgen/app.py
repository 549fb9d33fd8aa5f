"""``python -m vgen`` / ``vgen``: compose the config with Hydra, build a ProductionManager, drain the queue.

Exit codes: 0 every job succeeded, 1 some job failed (its error row is in the manifest), 2 bad
config/input or a missing checkpoint (nothing generated), 3 aborted by ``vgen-ctl abort`` (the
current job has an ``aborted`` row, later jobs did not run), 130 interrupted by SIGINT (Ctrl-C),
143 stopped by SIGTERM or a SLURM/submitit preemption warning (SIGUSR1/SIGUSR2). A stopped run
can be completed with ``hydra.run.dir=<its dir> queue.resume=true``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from vgen.cli import RESOLVED_CONFIG_NAME, launch, run_hydra_task
from vgen.config.locate import config_dir
from vgen.config.registry import register_all
from vgen.sweep.gpu_pinning import pin_one_gpu

log = logging.getLogger("vgen")

register_all()


def run(cfg: DictConfig) -> int:
    """Run one configuration (one Hydra job) and return its exit code."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        pin_one_gpu(hydra_cfg.job.num)  # before anything sets up CUDA (hydra/launcher=local_gpus)

    from vgen.plan import format_plan
    from vgen.production import ProductionManager

    manager = ProductionManager(cfg, run_dir=cfg.run_dir, overrides=list(hydra_cfg.overrides.task))
    jobs = manager.jobs()
    manager.validate(jobs)
    if cfg.dry_run:
        print(format_plan(cfg, jobs, manager.planned_output, manager.resolve_loras, manager.overrides))
        return 0

    from contextlib import ExitStack

    from vgen.queue.controller import ABORT, QueueController
    from vgen.queue.resume import jobs_to_run, write_run_config
    from vgen.rundir.lock import hold_run_dir
    from vgen.queue.signals import SignalStop

    run_dir = Path(cfg.run_dir)
    with ExitStack() as stack:
        stack.enter_context(hold_run_dir(run_dir))  # before anything in it is read or written
        plan = jobs_to_run(cfg.queue, run_dir, jobs, manager.job_output_key)
        write_run_config(run_dir, plan, manager.overrides, OmegaConf.to_yaml(cfg, resolve=True), RESOLVED_CONFIG_NAME)
        log.info("Run dir: %s (%d jobs, model %s)", run_dir, len(plan.todo), cfg.model.name)
        controller = QueueController(manager, plan.todo, skipped=plan.skipped)
        if cfg.control.enabled:
            from vgen.control.server import ControlServer

            stack.enter_context(ControlServer(controller, run_dir, host=cfg.control.host, port=cfg.control.port,
                                              allow_remote=cfg.control.allow_remote))
        stack.enter_context(SignalStop(controller.abort, temp_root=run_dir))
        if plan.todo:  # an empty shard or a finished resume loads nothing
            manager.load_pipeline()  # fail fast (exit 2) on a missing checkpoint, before the queue starts
        summary = controller.run()
    wrote_rows = manager.manifest.path.is_file()
    if wrote_rows:
        log.info("Manifest: %s", manager.manifest.path)
    else:  # an empty shard: nothing to merge from here, nothing to report
        log.info("No manifest: no job ran in this run dir")
    if wrote_rows and summary.stop_reason in (None, ABORT) and hydra_cfg.mode != RunMode.MULTIRUN:
        from vgen.report import write_report_after_run

        write_report_after_run(run_dir, cfg.report)  # a sweep gets one report, from its sweep callback
        from vgen.sweep.summary import write_grid_summary

        if cfg.queue.grid and (table := write_grid_summary(run_dir, list(hydra_cfg.overrides.task), summary.exit_code)):
            log.info("Grid summary: %s", table)
    if summary.stop_reason not in (None, ABORT) and hydra_cfg.mode == RunMode.MULTIRUN:
        raise SystemExit(summary.exit_code)  # a signal stops the whole sweep, not just this point
    return summary.exit_code


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def hydra_entry(cfg: DictConfig) -> int:
    return run_hydra_task(run, cfg, log)


def main() -> None:
    from vgen.queue.resume import resume_in_place_argv

    sys.argv[1:] = resume_in_place_argv(sys.argv[1:])
    launch(hydra_entry, "vgen")


if __name__ == "__main__":
    main()
