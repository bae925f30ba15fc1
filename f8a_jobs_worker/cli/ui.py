"""``ui``: the dashboard, a client of the message contract (it needs the broker, never the job store)."""

from __future__ import annotations

import getpass
import logging
from functools import partial

import click
import uvicorn

from f8a_jobs_worker import logs
from f8a_jobs_worker.cli.settings import EX_CONFIG, settings_from
from f8a_jobs_worker.client import Client
from f8a_jobs_worker.config import redact_url
from f8a_jobs_worker.errors import ConfigError
from f8a_jobs_worker.messaging.connect import transport_for
from f8a_jobs_worker.ui.app import create_app
from f8a_jobs_worker.ui.people import People

log = logging.getLogger("f8a_jobs_worker.ui")


@click.command("ui")
@click.option("--host", help="Address to listen on [env F8A_JOBS_UI_HOST; default 127.0.0.1].")
@click.option("--port", type=int, help="Port [env F8A_JOBS_UI_PORT; default 8080].")
@click.option(
    "--actions/--no-actions",
    default=None,
    help="Offer pause, resume, run now and delete [env F8A_JOBS_UI_ACTIONS; default off].",
)
@click.option("--broker-url", metavar="URL", help="Broker [env F8A_JOBS_BROKER_URL].")
@click.pass_context
def ui(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    actions: bool | None,
    broker_url: str | None,
) -> None:
    """Serve the dashboard: jobs, next runs, history, failures, live events."""
    settings = settings_from(
        ctx, ui_host=host, ui_port=port, ui_actions=actions, broker_url=broker_url
    )
    logs.configure(settings.log_level, settings.log_format)
    try:
        people = People(
            settings.ui_host,
            settings.ui_auth_header,
            settings.ui_operators,
            settings.ui_actions,
            getpass.getuser(),
        )
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EX_CONFIG) from None
    app = create_app(
        people,
        partial(Client, settings.broker_url, settings.names(), 30.0),
        partial(transport_for, settings.broker_url),
        settings.names().events,
        settings.names().dead,
    )
    log.info(
        "dashboard on http://%s:%d/ for the workers on %s; actions %s",
        settings.ui_host,
        settings.ui_port,
        redact_url(settings.broker_url or "the embedded broker"),
        "on" if settings.ui_actions else "off",
    )
    uvicorn.run(app, host=settings.ui_host, port=settings.ui_port, log_level="warning")
