"""Printing results for people (tables) and scripts (``--json``), and exit codes per error class."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from f8a_jobs_worker.access.principal import who
from f8a_jobs_worker.errors import JobsError

EX_NOT_FOUND = 3
EX_CONFLICT = 4
EX_INVALID = 5
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
#: a command the policy refused, or whose sender or signature could not be trusted (sysexits' EX_NOPERM)
EX_FORBIDDEN = 77

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
    "forbidden": EX_FORBIDDEN,
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
    for key, printer in _SHAPES:
        if key in result:
            printer(result)
            return
    click.echo(json.dumps(result, indent=2))


def _job(result: dict[str, Any]) -> None:
    for key, value in result["job"].items():
        click.echo(f"{key + ':':<22}{_cell(value)}")
    if "next_runs" in result:
        click.echo("\nnext runs:\n" + table(result["next_runs"], ["local", "at"]))


def _preview(result: dict[str, Any]) -> None:
    click.echo(result["description"])
    click.echo(table(result["runs"], ["local", "at"]))
    for change in result["changes"]:
        click.echo(f"{change['at']}: {change['effect']}")


def _jobs(result: dict[str, Any]) -> None:
    jobs = result["jobs"]
    if jobs and "failed_job_id" in jobs[0]:
        click.echo(table(jobs, ["job_id", "failed_job_id", "handler", "failed_at", "error"]))
    else:
        columns = ["job_id", "handler", "state", "next_run_time", "periodically", "default"]
        click.echo(table(jobs, columns))
    click.echo(f"\n{len(jobs)} of {result['jobs_count']} shown")
    if "next" in result:
        click.echo(f"next page: --after {result['next']}")


def _audit(result: dict[str, Any]) -> None:
    rows = [entry | {"by": who(entry["by"])} for entry in result["entries"]]
    click.echo(table(rows, ["at", "by", "command", "job_id", "outcome", "message"]))
    if result.get("next"):
        click.echo(f"\nolder entries: --after {result['next']}")


def _runs(result: dict[str, Any]) -> None:
    runs = [run | {"started_by": who(run.get("started_by"))} for run in result["runs"]]
    columns = ["finished_at", "outcome", "duration_s", "started_by", "summary", "error"]
    click.echo(table(runs, columns))
    if "next" in result:
        click.echo(f"\nolder runs: --after {result['next']}")


def _removed(result: dict[str, Any]) -> None:
    click.echo(f"removed: {', '.join(result['removed']) or 'nothing'}")


def _state(result: dict[str, Any]) -> None:
    click.echo(f"scheduler: {result['state']}")
    if "runs_in_progress" in result:
        outbox = result["outbox"]
        click.echo(f"runs in progress: {result['runs_in_progress']}")
        click.echo(f"outbox: {outbox['pending']} to send, oldest {outbox['oldest_age_s']}s")
    if "access" in result:
        access = result["access"]
        click.echo(f"policy: {access['policy']}; signed commands: {access['signing']}")
    if result.get("replicas"):
        replicas = [
            r
            | {
                "id": r["id"] + (" *" if r["this"] else ""),
                "heartbeat": f"{r['heartbeat_age_s']}s ago",
            }
            for r in result["replicas"]
        ]
        columns = ["id", "host", "pid", "version", "started_at", "heartbeat", "runs_in_progress"]
        click.echo("\n" + table(replicas, columns))


#: the result shapes, by the key that tells them, in the order they are looked for
_SHAPES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("job", _job),
    ("description", _preview),
    ("jobs", _jobs),
    ("entries", _audit),
    ("runs", _runs),
    ("removed", _removed),
    ("state", _state),
]
