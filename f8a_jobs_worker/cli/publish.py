"""Client commands: ``jobs``, ``scheduler`` and ``send`` publish job commands and print the replies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from f8a_jobs_worker.access.signing import client_key
from f8a_jobs_worker.cli.output import EX_UNAVAILABLE, EXIT_CODES, fail, show
from f8a_jobs_worker.cli.settings import EX_CONFIG, settings_from
from f8a_jobs_worker.client import Client, raise_for
from f8a_jobs_worker.errors import BrokerUnavailable, ConfigError, JobsError, ReplyTimeout


def client_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--broker-url, --timeout and --json, shared by every command that talks to the worker."""
    command = click.option("--json", "as_json", is_flag=True, help="Print the raw result as JSON.")(
        command
    )
    command = click.option(
        "--timeout",
        type=float,
        default=30.0,
        show_default=True,
        help="Seconds to wait for the reply.",
    )(command)
    return click.option(
        "--broker-url",
        metavar="URL",
        help="Broker [env F8A_JOBS_BROKER_URL; default: the embedded broker in ./f8a-jobs-broker].",
    )(command)


@contextmanager
def connected(ctx: click.Context, broker_url: str | None, timeout: float) -> Iterator[Client]:
    settings = settings_from(ctx, broker_url=broker_url)
    try:
        key = client_key(settings.signing_key, settings.signing_key_file)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EX_CONFIG) from None
    try:
        with Client(
            settings.broker_url, names=settings.names(), timeout=timeout, signing_key=key
        ) as client:
            yield client
    except (ReplyTimeout, BrokerUnavailable) as exc:
        click.echo(
            f"error: no reply from the worker ({exc}); is it running on this broker?", err=True
        )
        raise SystemExit(EX_UNAVAILABLE) from None


def run_command(
    ctx: click.Context,
    command: str,
    args: dict[str, Any],
    broker_url: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    with connected(ctx, broker_url, timeout) as client:
        try:
            result = client.call(command, args)
        except JobsError as exc:
            fail(exc, as_json)
            return
    show(result, as_json)


def _json_arg(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"{what} is not JSON: {exc}") from None


@click.group()
def jobs() -> None:
    """Create, inspect and control jobs (job.* commands)."""


@jobs.command("create")
@click.argument("handler")
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="Handler arguments as a JSON object.")
@click.option("--job-id", help="Job id [default: a new uuid].")
@click.option("--periodically", metavar="SPAN", help='Run every SPAN: "1 week", "5:00:00", "32m".')
@click.option("--cron", metavar="EXPR", help='A 5-field crontab line, e.g. "0 5 * * 1-5".')
@click.option(
    "--calendar-interval",
    metavar="N UNIT",
    help='Every N days, weeks, months or years at the local time of the first run: "1 day".',
)
@click.option("--jitter", metavar="SPAN", help="Random delay added to periodic runs.")
@click.option(
    "--when", metavar="TIME", help='First run: ISO 8601 or "Mon Feb 20, 14:56" (in --timezone).'
)
@click.option(
    "--timezone",
    metavar="ZONE",
    help="IANA zone the cron line and --when are read in, e.g. Europe/Prague [default: UTC].",
)
@click.option("--misfire-grace-time", metavar="SPAN", help="How late a run may still start.")
@click.option("--paused", is_flag=True, help="Create the job paused.")
@click.option("--replace", is_flag=True, help="Overwrite a job with the same id.")
@client_options
@click.pass_context
def create(
    ctx: click.Context,
    /,
    handler: str,
    kwargs_json: str | None,
    paused: bool,
    replace: bool,
    broker_url: str | None,
    timeout: float,
    as_json: bool,
    **fields: Any,
) -> None:
    """Create a job that runs HANDLER."""
    args: dict[str, Any] = {
        "handler": handler,
        **{k: v for k, v in fields.items() if v is not None},
    }
    kwargs = _json_arg(kwargs_json, "--kwargs")
    if kwargs is not None:
        args["kwargs"] = kwargs
    if paused:
        args["state"] = "paused"
    if replace:
        args["replace"] = True
    run_command(ctx, "job.create", args, broker_url, timeout, as_json)


@jobs.command("list")
@click.option(
    "--type",
    "job_type",
    type=click.Choice(["all", "user", "default", "failed"]),
    default="all",
    show_default=True,
)
@click.option("--limit", type=click.IntRange(0, 1000), default=100, show_default=True)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=None,
    help="Rows to skip (slow on large stores).",
)
@click.option("--after", help="The next key a previous page printed: the page after it.")
@click.option("--all", "every", is_flag=True, help="Every page, following each page's next key.")
@click.option(
    "--state", type=click.Choice(["running", "paused", "broken"]), help="Only jobs in it."
)
@click.option("--handler", help="Only jobs of this handler.")
@click.option("--prefix", help="Only jobs whose id starts with this.")
@click.option("--failing", is_flag=True, help="Only jobs whose last run failed.")
@client_options
@click.pass_context
def list_jobs(
    ctx: click.Context,
    /,
    job_type: str,
    limit: int,
    offset: int | None,
    after: str | None,
    every: bool,
    broker_url: str | None,
    timeout: float,
    as_json: bool,
    **filters: Any,
) -> None:
    """List jobs, or failed runs with --type failed. A page ends with the key of the next one."""
    if offset is not None and (after is not None or every):
        raise click.UsageError("--offset cannot go with --after or --all")
    args: dict[str, Any] = {"job_type": job_type, "limit": limit}
    args |= {name: value for name, value in filters.items() if value}
    if offset is not None:
        args["offset"] = offset
    if after is not None:
        args["after"] = after
    if not every:
        run_command(ctx, "job.list", args, broker_url, timeout, as_json)
        return
    with connected(ctx, broker_url, timeout) as client:
        try:
            result = client.call("job.list", args)
            while "next" in result and limit > 0:
                following = client.call("job.list", args | {"after": result["next"]})
                following["jobs"] = result["jobs"] + following["jobs"]
                result = following
        except JobsError as exc:
            fail(exc, as_json)
            return
    show(result, as_json)


def _by_id(name: str, command: str, summary: str) -> None:
    @jobs.command(name, help=summary)
    @click.argument("job_id")
    @client_options
    @click.pass_context
    def by_id(
        ctx: click.Context, job_id: str, broker_url: str | None, timeout: float, as_json: bool
    ) -> None:
        run_command(ctx, command, {"job_id": job_id}, broker_url, timeout, as_json)


@jobs.command("get")
@click.argument("job_id")
@click.option("--next-runs", type=click.IntRange(1, 1000), help="Also list its next N runs.")
@client_options
@click.pass_context
def get(
    ctx: click.Context,
    job_id: str,
    next_runs: int | None,
    broker_url: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Show one job."""
    args: dict[str, Any] = {"job_id": job_id}
    if next_runs is not None:
        args["next_runs"] = next_runs
    run_command(ctx, "job.get", args, broker_url, timeout, as_json)


@jobs.command("preview")
@click.option("--cron", metavar="EXPR", help='A 5-field crontab line, e.g. "0 6 * * 1-5".')
@click.option("--periodically", metavar="SPAN", help='Every SPAN of elapsed time: "1 day", "32m".')
@click.option(
    "--calendar-interval", metavar="N UNIT", help='Every N days, weeks, months, years: "1 day".'
)
@click.option("--timezone", metavar="ZONE", help="IANA zone, e.g. Europe/Prague [default: UTC].")
@click.option("--jitter", metavar="SPAN", help="Random delay added to each run.")
@click.option("--start", metavar="TIME", help="First run (as --when of create) [default: now].")
@click.option("--count", type=click.IntRange(1, 1000), default=10, show_default=True)
@client_options
@click.pass_context
def preview(
    ctx: click.Context,
    /,
    count: int,
    broker_url: str | None,
    timeout: float,
    as_json: bool,
    **fields: Any,
) -> None:
    """Show the next runs of a schedule, in words and across time-zone changes, without creating a job."""
    args = {"count": count, **{k: v for k, v in fields.items() if v is not None}}
    run_command(ctx, "schedule.preview", args, broker_url, timeout, as_json)


_by_id("pause", "job.pause", "Pause a job: no run until resumed.")
_by_id("resume", "job.resume", "Resume a paused job.")
_by_id("delete", "job.delete", "Delete a job.")
_by_id("run-now", "job.run_now", "Run a job's handler now; its schedule is unchanged.")


@jobs.command("history")
@click.argument("job_id")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--after", help="The key a previous page printed: the older runs after it.")
@client_options
@click.pass_context
def history(
    ctx: click.Context,
    job_id: str,
    limit: int,
    after: str | None,
    broker_url: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Show a job's latest runs, newest first."""
    args: dict[str, Any] = {"job_id": job_id, "limit": limit}
    if after is not None:
        args["after"] = after
    run_command(ctx, "job.history", args, broker_url, timeout, as_json)


@jobs.command("backfill")
@click.argument("job_id")
@click.option("--start", required=True, help="ISO 8601 (UTC without a zone): the window's start.")
@click.option(
    "--end", required=True, help="ISO 8601, not in the future: the window's end (excluded)."
)
@click.option("--concurrency", type=click.IntRange(1, 100), default=1, show_default=True)
@client_options
@click.pass_context
def backfill(
    ctx: click.Context,
    job_id: str,
    start: str,
    end: str,
    concurrency: int,
    broker_url: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Run every run a job's schedule had in a past window, in order (at most 1000)."""
    args = {"job_id": job_id, "start": start, "end": end, "concurrency": concurrency}
    run_command(ctx, "job.backfill", args, broker_url, timeout, as_json)


@jobs.command("clean-failed")
@client_options
@click.pass_context
def clean_failed(ctx: click.Context, broker_url: str | None, timeout: float, as_json: bool) -> None:
    """Remove every failure record."""
    run_command(ctx, "jobs.clean_failed", {}, broker_url, timeout, as_json)


@click.group()
def scheduler() -> None:
    """The whole scheduler: state, pause, resume (scheduler.* commands)."""


def _scheduler(name: str, summary: str) -> None:
    @scheduler.command(name, help=summary)
    @client_options
    @click.pass_context
    def control(ctx: click.Context, broker_url: str | None, timeout: float, as_json: bool) -> None:
        run_command(ctx, f"scheduler.{name}", {}, broker_url, timeout, as_json)


_scheduler("state", "Show whether the scheduler fires jobs.")
_scheduler("pause", "Stop firing jobs (survives restarts); commands still apply.")
_scheduler("resume", "Fire jobs again.")


@click.command()
@click.argument("command")
@click.option("--args", "args_json", metavar="JSON", help="The command's args as a JSON object.")
@click.option("--command-id", help="Idempotency key [default: a new uuid].")
@click.option("--no-wait", is_flag=True, help="Publish and exit without waiting for a reply.")
@client_options
@click.pass_context
def send(
    ctx: click.Context,
    command: str,
    args_json: str | None,
    command_id: str | None,
    no_wait: bool,
    broker_url: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Send any COMMAND (e.g. job.get) and print the whole reply."""
    args = _json_arg(args_json, "--args") or {}
    with connected(ctx, broker_url, timeout) as client:
        if no_wait:
            click.echo(client.send(command, args, command_id=command_id))
            return
        reply = client.request(command, args, command_id=command_id)
    click.echo(json.dumps(reply, indent=2))
    try:
        raise_for(reply)
    except JobsError as exc:
        raise SystemExit(EXIT_CODES.get(exc.code, 1)) from None
