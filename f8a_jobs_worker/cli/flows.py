"""``f8a-jobs-worker flows``: the flow backend's view of flow runs, and the relay as a process of its own."""

from __future__ import annotations

import click

from f8a_jobs_worker import logs
from f8a_jobs_worker.cli.settings import EX_CONFIG, settings_from
from f8a_jobs_worker.cli.signals import install_signal_handlers
from f8a_jobs_worker.config import PREFIX, Settings
from f8a_jobs_worker.errors import ConfigError
from f8a_jobs_worker.flows.backend import FlowBackend
from f8a_jobs_worker.flows.loading import backend_for
from f8a_jobs_worker.relays.flow_relay import relay_for


@click.group()
def flows() -> None:
    """Flow runs: relay them to Selinon or Celery, check the flow backend's configuration."""


def _backend(settings: Settings) -> FlowBackend:
    try:
        backend = backend_for(settings)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EX_CONFIG) from None
    if backend is None:
        click.echo(
            f"error: {PREFIX}FLOW_BACKEND is 'exchange': flow runs stay on the flows exchange for a "
            "flow engine of your own; set it to selinon or celery to relay them",
            err=True,
        )
        raise SystemExit(EX_CONFIG)
    return backend


@flows.command("relay")
@click.option(
    "--prefetch",
    type=click.IntRange(1, 10000),
    help="Flow runs taken at once, confirmed by the Celery broker together "
    "[env F8A_JOBS_FLOW_RELAY_PREFETCH; default 500].",
)
@click.pass_context
def relay(ctx: click.Context, prefetch: int | None) -> None:
    """Relay flow runs to the Celery broker until SIGTERM or Ctrl-C.

    Every worker with a Selinon or Celery flow backend relays already; run this to add relays elsewhere
    (several share the queue). A run is acknowledged once the Celery broker confirmed its task message.
    """
    settings = settings_from(ctx, flow_relay_prefetch=prefetch)
    logs.configure(settings.log_level, settings.log_format)
    backend = _backend(settings)
    stop = install_signal_handlers()
    relay = relay_for(settings, backend)
    relay.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        relay.stop()
    click.echo(f"relayed {relay.relayed}, dead-lettered {relay.dead_lettered}")


@flows.command("check")
@click.argument("flow_name")
@click.option("--task", "task_names", multiple=True, help="A task of a selective run (repeatable).")
@click.option("--run-subsequent", is_flag=True)
@click.option("--no-follow-subflows", is_flag=True)
@click.pass_context
def check(
    ctx: click.Context,
    flow_name: str,
    task_names: tuple[str, ...],
    run_subsequent: bool,
    no_follow_subflows: bool,
) -> None:
    """Whether the flow backend can run FLOW_NAME (and --task ...): exit 0 if so, else 1 with the reason."""
    settings = settings_from(ctx)
    logs.configure("WARNING")
    backend = _backend(settings)
    problems = backend.problems(
        flow_name, list(task_names) or None, not no_follow_subflows, run_subsequent
    )
    for key, message in problems:
        click.echo(f"error  {key}: {message}")
    if problems:
        raise SystemExit(1)
    click.echo(f"ok     {flow_name} can run on {backend.name}")
