"""``f8a-jobs-worker``: run the worker and check its configuration.

Exit codes: 0 success, 1 a check failed, 2 bad usage, 69 a dependency is unavailable, 78 bad configuration.
"""

from __future__ import annotations

import gc
import importlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from f8a_jobs_worker import __version__, logs, retry
from f8a_jobs_worker.cli.settings import EX_CONFIG, settings_from
from f8a_jobs_worker.cli.signals import install_signal_handlers
from f8a_jobs_worker.clock import SYSTEM
from f8a_jobs_worker.config import redact_url
from f8a_jobs_worker.errors import ConfigError, SchemaMismatch, StoreInUse, Unavailable
from f8a_jobs_worker.filters.demo import create_demo_data
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.persistence.database import create_engine
from f8a_jobs_worker.scheduling.default_jobs import load_definitions
from f8a_jobs_worker.scheduling.migration import migrate_directory
from f8a_jobs_worker.scheduling.preview import describe
from f8a_jobs_worker.worker import Worker

EX_UNAVAILABLE = 69

log = logging.getLogger("f8a_jobs_worker.cli")


#: commands in modules of their own, imported when named: their libraries (the dashboard's web stack, the
#: client's) are no part of a worker's start-up
SUBCOMMANDS = {
    "jobs": "publish",
    "scheduler": "publish",
    "send": "publish",
    "events": "monitor",
    "dlq": "monitor",
    "flows": "flows",
    "health": "health",
    "db": "db",
    "audit": "audit",
    "ui": "ui",
}


class _Commands(click.Group):
    """This module's commands, and :data:`SUBCOMMANDS` loaded by name (click's lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return super().get_command(ctx, cmd_name)
        module = importlib.import_module(f"f8a_jobs_worker.cli.{SUBCOMMANDS[cmd_name]}")
        command = getattr(module, cmd_name)
        assert isinstance(command, click.Command), command
        return command


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="f8a-jobs-worker")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Log verbosity [env F8A_JOBS_LOG_LEVEL; default INFO].",
)
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """The job service of the fabric8-analytics pipeline: runs periodic and one-shot jobs from a persistent
    scheduler, driven by job commands on a queue.

    Settings come from F8A_JOBS_* environment variables; the options of each command override them.
    Start with `f8a-jobs-worker run` (SQLite and no broker needed).
    """
    ctx.obj = {"log_level": log_level.upper() if log_level else None}


@cli.command()
@click.option(
    "--database-url",
    metavar="URL",
    help="Job store [env F8A_JOBS_DATABASE_URL; default sqlite:///f8a-jobs.sqlite].",
)
@click.option("--broker-url", metavar="URL", help="Message broker [env F8A_JOBS_BROKER_URL].")
@click.option(
    "--analytics-database-url",
    metavar="URL",
    help="Where $filter queries run [env F8A_JOBS_ANALYTICS_DATABASE_URL; default: the job store].",
)
@click.option(
    "--default-jobs-dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="YAML default jobs [env F8A_JOBS_DEFAULT_JOBS_DIR; default default_jobs/].",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Jobs run at once [env F8A_JOBS_THREADS; default 10].",
)
@click.option("--no-default-jobs", is_flag=True, help="Do not load default_jobs/ at start.")
@click.pass_context
def run(ctx: click.Context, /, no_default_jobs: bool, **options: Any) -> None:
    """Run the worker until SIGTERM or Ctrl-C.

    The first signal stops firing, lets running jobs finish and exits 0; a second one exits at once.
    """
    settings = settings_from(ctx, **options)
    logs.configure(settings.log_level, settings.log_format, background=True)

    stop = install_signal_handlers()
    try:
        worker = _start_with_retry(
            lambda: Worker(settings, load_default_jobs=not no_default_jobs, messaging=True), stop
        )
    except (StoreInUse, ConfigError, SchemaMismatch) as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(EX_CONFIG)
        return
    if worker is None:
        ctx.exit(EX_UNAVAILABLE)
        return
    settle_heap()
    signal.signal(signal.SIGHUP, lambda *_: worker.access.reload())
    try:
        while not stop.wait(1.0):
            pass
    finally:
        worker.stop(wait=True)


def settle_heap() -> None:
    """Once started: what start-up built (modules, the scheduler, the engines) lives as long as the process,
    so it is moved out of the collector's sight (``gc.freeze``), after one collection of start-up's garbage.
    A full collection then walks only what was made since: under load they took 20-70 ms each, a pause of
    every thread, and about 2 % of the worker's CPU."""
    gc.collect()
    gc.freeze()


def _start_with_retry(make_worker: Callable[[], Worker], stop: threading.Event) -> Worker | None:
    """Start a worker; while the job store is down, probe it about once a second instead of giving up
    (None if stopped meanwhile). Each attempt builds a new worker: a scheduler that was shut down cannot be
    started again."""

    def attempt() -> Worker:
        worker = make_worker()
        try:
            worker.start()
        except (Unavailable, StoreInUse, SchemaMismatch):
            worker.stop(wait=False)
            raise
        return worker

    return retry.until_available(attempt, Unavailable, retry.Outage("job store", log), stop)


@cli.command("check-default-jobs")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Directory to check [default: F8A_JOBS_DEFAULT_JOBS_DIR or default_jobs/].",
)
@click.pass_context
def check_default_jobs(ctx: click.Context, directory: Path | None) -> None:
    """Validate the default job YAML files without touching any database; exit 1 if one is bad."""
    settings = settings_from(ctx, default_jobs_dir=directory)
    logs.configure("WARNING")
    report = load_definitions(
        settings.default_jobs_dir,
        HandlerRegistry.discover(),
        settings.misfire_grace_time,
        SYSTEM.now(),
    )
    for definition in report.definitions:
        spec = definition.spec
        every = "once" if spec.schedule.one_shot else describe(spec.schedule)
        click.echo(
            f"ok     {definition.path.name}: {spec.job_id} ({spec.handler}, {every}"
            f"{', paused' if spec.paused else ''})"
        )
    for name, error in sorted(report.errors.items()):
        click.echo(f"error  {name}: {error}")
    click.echo(
        f"{len(report.definitions)} valid, {len(report.errors)} invalid in {settings.default_jobs_dir}"
    )
    sys.exit(1 if report.errors else 0)


@cli.command("migrate-default-jobs")
@click.argument("source", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("target", type=click.Path(path_type=Path, file_okay=False))
def migrate_default_jobs(source: Path, target: Path) -> None:
    """Rewrite the original service's default job files in SOURCE into this service's form in TARGET.

    Says per file what it changed, what it could not (handlers that do not exist here) and which behaviour
    differs; exit 1 if a file could not be migrated whole. Check the result with check-default-jobs --dir.
    """
    logs.configure("WARNING")
    registry = HandlerRegistry.discover()
    done, unreadable = migrate_directory(source, target, set(registry))
    for migrated in done:
        name = migrated.source.name
        status = "cannot" if migrated.problems else "changed" if migrated.changes else "same"
        click.echo(f"{status:<8}{name}: " + "; ".join(migrated.problems + migrated.changes))
        for note in migrated.notes:
            click.echo(f"{'note':<8}{name}: {note}")
    for name, why in sorted(unreadable.items()):
        click.echo(f"{'error':<8}{name}: {why}")
    failed = sum(1 for m in done if m.problems) + len(unreadable)
    click.echo(
        f"{len(done) - failed + len(unreadable)} migrated, {failed} need attention, in {target}"
    )
    sys.exit(1 if failed else 0)


@cli.command("demo-data")
@click.option(
    "--database-url",
    metavar="URL",
    help="Where to create the analytics tables [default: F8A_JOBS_ANALYTICS_DATABASE_URL, "
    "else the job store].",
)
@click.pass_context
def demo_data(ctx: click.Context, database_url: str | None) -> None:
    """Create the analytics tables with a small sample, to try $filter queries on.

    Existing rows of those tables are replaced: do not point this at a real analytics database.
    """
    settings = settings_from(ctx)
    url = database_url or settings.effective_analytics_database_url
    engine = create_engine(url)
    try:
        counts = create_demo_data(engine)
    finally:
        engine.dispose()
    click.echo(
        f"demo analytics data in {redact_url(url)}: "
        + ", ".join(f"{n} {table}" for table, n in counts.items())
    )


def main() -> None:
    started = time.monotonic()
    try:
        cli(prog_name="f8a-jobs-worker")
    finally:
        log.debug("exited after %.1fs", time.monotonic() - started)
