"""``f8a-jobs-worker health``: the worker's probes for scripts and Docker's HEALTHCHECK."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import click

from f8a_jobs_worker.cli.settings import EX_CONFIG, settings_from
from f8a_jobs_worker.config import PREFIX

EX_UNAVAILABLE = 69


def _probe(url: str, timeout: float) -> tuple[bool, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) only
            body = json.loads(response.read())
    except urllib.error.HTTPError as failing:  # 503: the body says which check failed
        body = json.loads(failing.read() or b"{}")
    return body.get("status") == "ok", dict(body.get("checks", {}))


@click.command()
@click.option(
    "--url",
    metavar="URL",
    help="The worker's operations server [default: http://127.0.0.1:$F8A_JOBS_METRICS_PORT].",
)
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds per probe.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_context
def health(ctx: click.Context, url: str | None, timeout: float, as_json: bool) -> None:
    """Whether a running worker is live (its threads run) and ready (store and broker answer).

    Exit 0 when both, 1 when a check fails, 69 when the worker does not answer.
    """
    if url is None:
        settings = settings_from(ctx)
        if settings.metrics_port is None:
            click.echo(
                f"error: {PREFIX}METRICS_PORT is not set: the worker serves no probes (or pass --url)",
                err=True,
            )
            raise SystemExit(EX_CONFIG)
        url = f"http://127.0.0.1:{settings.metrics_port}"
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("expected an http:// or https:// URL", param_hint="--url")
    base = url.rstrip("/")
    try:
        live, live_checks = _probe(f"{base}/livez", timeout)
        ready, ready_checks = _probe(f"{base}/readyz", timeout)
    except (OSError, ValueError) as exc:
        click.echo(f"unavailable: no answer from {base} ({exc})", err=True)
        raise SystemExit(EX_UNAVAILABLE) from None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "live": live,
                    "ready": ready,
                    "checks": {"live": live_checks, "ready": ready_checks},
                }
            )
        )
    else:
        for name, ok, checks in (("live", live, live_checks), ("ready", ready, ready_checks)):
            details = ", ".join(f"{check} {result}" for check, result in checks.items())
            click.echo(f"{name:<6} {'ok' if ok else 'FAILING'}: {details}")
    raise SystemExit(0 if live and ready else 1)
