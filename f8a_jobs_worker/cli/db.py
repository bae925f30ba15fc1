"""``f8a-jobs-worker db``: the job store's schema versions (not to be confused with ``migrate-default-jobs``,
which rewrites the original service's job files)."""

from __future__ import annotations

import click

from f8a_jobs_worker import logs
from f8a_jobs_worker.cli.settings import EX_CONFIG, settings_from
from f8a_jobs_worker.config import redact_url
from f8a_jobs_worker.errors import SchemaMismatch, Unavailable
from f8a_jobs_worker.persistence import schema
from f8a_jobs_worker.persistence.database import create_engine

EX_UNAVAILABLE = 69

database_option = click.option(
    "--database-url",
    metavar="URL",
    help="Job store [env F8A_JOBS_DATABASE_URL; default sqlite:///f8a-jobs.sqlite].",
)


@click.group()
def db() -> None:
    """The job store's schema: which revision it is at, upgrade it, go back.

    `run` upgrades the store itself (F8A_JOBS_SCHEMA_UPGRADE=auto, the default); with
    F8A_JOBS_SCHEMA_UPGRADE=manual it refuses a store that is behind, and this is the command to run.
    """


def _migrate(ctx: click.Context, database_url: str | None, target: str, down: bool) -> None:
    settings = settings_from(ctx, database_url=database_url)
    logs.configure("INFO")
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        before = (schema.downgrade if down else schema.upgrade)(engine, target)
        after = schema.state(engine)
    except SchemaMismatch as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EX_CONFIG) from None
    except Unavailable as exc:
        click.echo(f"unavailable: {exc.message}", err=True)
        raise SystemExit(EX_UNAVAILABLE) from None
    finally:
        engine.dispose()
    where = redact_url(settings.database_url)
    if before.current == after.current:
        click.echo(f"{where}: at {after.current or 'no revision'} already")
    else:
        click.echo(
            f"{where}: {before.current or 'no revision'} -> {after.current or 'no revision'}"
        )


@db.command("upgrade")
@click.argument("revision", default="head")
@database_option
@click.pass_context
def upgrade(ctx: click.Context, revision: str, database_url: str | None) -> None:
    """Apply the revisions up to REVISION (default: head, this release's newest)."""
    _migrate(ctx, database_url, revision, down=False)


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do it: going back drops what later revisions added.")
@database_option
@click.pass_context
def downgrade(ctx: click.Context, revision: str, yes: bool, database_url: str | None) -> None:
    """Undo revisions down to REVISION (`base`: drop every table). Stop the workers first."""
    if not yes:
        click.echo(
            "error: going back drops what later revisions added; pass --yes to do it", err=True
        )
        raise SystemExit(2)
    _migrate(ctx, database_url, revision, down=True)


@db.command("current")
@database_option
@click.pass_context
def current(ctx: click.Context, database_url: str | None) -> None:
    """The store's revision and this release's; exit 1 when they differ."""
    settings = settings_from(ctx, database_url=database_url)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        found = schema.state(engine)
    except Unavailable as exc:
        click.echo(f"unavailable: {exc.message}", err=True)
        raise SystemExit(EX_UNAVAILABLE) from None
    finally:
        engine.dispose()
    status = (
        "up to date"
        if found.at_head
        else "ahead: a newer release's"
        if not found.known
        else (f"behind: run {schema.UPGRADE_COMMAND}")
    )
    click.echo(f"store {found.current or 'none'}, this release {found.head} ({status})")
    raise SystemExit(0 if found.at_head else 1)


@db.command("history")
def history() -> None:
    """The revisions this release knows, oldest first."""
    for revision in schema.history():
        title = revision.doc.splitlines()[0] if revision.doc else ""
        click.echo(f"{revision.revision}  {title}")
