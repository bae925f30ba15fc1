"""``audit list``: who did what, newest first (the ``audit.list`` command)."""

from __future__ import annotations

from typing import Any

import click

from f8a_jobs_worker.cli.publish import client_options, run_command


@click.group()
def audit() -> None:
    """The audit trail: every write and every refusal, with who sent it."""


@audit.command("list")
@click.option("--job-id", help="Only the entries of this job.")
@click.option(
    "--principal", help="Only the entries of this principal (a broker user, a key's principal)."
)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--after", metavar="KEY", help="The next page: the key the previous page printed.")
@client_options
@click.pass_context
def list_entries(
    ctx: click.Context,
    job_id: str | None,
    principal: str | None,
    limit: int,
    after: str | None,
    broker_url: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """List audit entries (``audit.list``)."""
    args: dict[str, Any] = {"limit": limit}
    for name, value in (("job_id", job_id), ("principal", principal), ("after", after)):
        if value is not None:
            args[name] = value
    run_command(ctx, "audit.list", args, broker_url, timeout, as_json)
