"""Printing results for people (tables) and scripts (``--json``), and exit codes per error class."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from f8a_jobs_worker.errors import JobsError

EX_NOT_FOUND = 3
EX_CONFLICT = 4
EX_INVALID = 5
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70

EXIT_CODES = {
    "job_not_found": EX_NOT_FOUND,
    "job_exists": EX_CONFLICT,
    "job_busy": EX_CONFLICT,
    "job_broken": EX_CONFLICT,
    "invalid_json": EX_INVALID,
    "validation_error": EX_INVALID,
    "unknown_command": EX_INVALID,
    "unknown_handler": EX_INVALID,
    "invalid_schedule": EX_INVALID,
    "filter_error": EX_INVALID,
    "unavailable": EX_UNAVAILABLE,
    "internal_error": EX_SOFTWARE,
}


def fail(error: JobsError, as_json: bool) -> None:
    """Print an error reply and exit with the code of its class."""
    if as_json:
        click.echo(json.dumps({"ok": False, "error": error.to_dict()}, indent=2))
    else:
        click.echo(f"error: {error.code}: {error.message}", err=True)
        for detail in error.details:
            click.echo(f"  {detail.get('path', '$')}: {detail.get('message', '')}", err=True)
    raise SystemExit(EXIT_CODES.get(error.code, 1))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned table, like kubectl's."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(r[i]) for r in cells)]) for i, column in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def show(result: dict[str, Any], as_json: bool) -> None:
    """A command's result: JSON as it came, or the best human form for its shape."""
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if "job" in result:
        for key, value in result["job"].items():
            click.echo(f"{key + ':':<22}{_cell(value)}")
        if "next_runs" in result:
            click.echo("\nnext runs:\n" + table(result["next_runs"], ["local", "at"]))
    elif "description" in result:
        click.echo(result["description"])
        click.echo(table(result["runs"], ["local", "at"]))
        for change in result["changes"]:
            click.echo(f"{change['at']}: {change['effect']}")
    elif "jobs" in result:
        jobs = result["jobs"]
        if jobs and "failed_job_id" in jobs[0]:
            click.echo(table(jobs, ["job_id", "failed_job_id", "handler", "failed_at", "error"]))
        else:
            click.echo(
                table(
                    jobs, ["job_id", "handler", "state", "next_run_time", "periodically", "default"]
                )
            )
        click.echo(f"\n{len(jobs)} of {result['jobs_count']} shown")
        if "next" in result:
            click.echo(f"next page: --after {result['next']}")
    elif "runs" in result:
        click.echo(
            table(result["runs"], ["finished_at", "outcome", "duration_s", "summary", "error"])
        )
        if "next" in result:
            click.echo(f"\nolder runs: --after {result['next']}")
    elif "removed" in result:
        click.echo(f"removed: {', '.join(result['removed']) or 'nothing'}")
    elif "state" in result:
        click.echo(f"scheduler: {result['state']}")
        if "runs_in_progress" in result:
            outbox = result["outbox"]
            click.echo(f"runs in progress: {result['runs_in_progress']}")
            click.echo(f"outbox: {outbox['pending']} to send, oldest {outbox['oldest_age_s']}s")
        if result.get("replicas"):
            replicas = [
                r
                | {
                    "id": r["id"] + (" *" if r["this"] else ""),
                    "heartbeat": f"{r['heartbeat_age_s']}s ago",
                }
                for r in result["replicas"]
            ]
            click.echo("")
            click.echo(
                table(
                    replicas,
                    ["id", "host", "pid", "version", "started_at", "heartbeat", "runs_in_progress"],
                )
            )
    else:
        click.echo(json.dumps(result, indent=2))
