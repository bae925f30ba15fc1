"""Settings for CLI commands: the environment, the root group's options, then the command's own."""

from __future__ import annotations

import os
from typing import Any

import click

from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.errors import ConfigError

EX_CONFIG = 78


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    """Settings for this invocation; a bad setting prints its error and exits 78."""
    try:
        return Settings.from_env(os.environ, **(ctx.obj or {}), **overrides)
    except (ConfigError, TypeError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EX_CONFIG) from None
