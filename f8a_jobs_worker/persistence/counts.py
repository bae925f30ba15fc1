"""Exact counts that do not scan: how many jobs of each type and how many failure records there are.

``job.list`` answers with the total of its listing; a ``count(*)`` over a million jobs for every page made the
first page cost as much as the whole store. Instead triggers keep counters in ``f8a_counts``, written in the
transaction of every insert and delete whoever makes it (a command, a scheduler pass removing a one-shot job,
APScheduler itself, a bulk load), so a count is a sum over a few rows and exact across replicas.

On PostgreSQL the triggers run once per statement (transition tables: a bulk insert adds one row per counter,
not one per job), and each session adds to a shard of its own (``pg_backend_pid() % SHARDS``), so replicas
removing one-shot jobs at the same time do not queue behind one counter row. SQLite, one worker, has one shard.
When the triggers are installed on a table that already has rows, the counters start from a count made in the
same transaction, after the trigger exists and under its lock, so no write falls between.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from f8a_jobs_worker.persistence.tables import counts, job_failures

# The trigger DDL below is built from this module's constants and table names only (S608 is noted there).

SHARDS = 64
#: the shard a PostgreSQL session adds to
SHARD = f"pg_backend_pid() % {SHARDS}"
USER_JOBS = "jobs:user"
DEFAULT_JOBS = "jobs:default"
FAILURES = "failures"


def install(connection: sa.Connection, jobs: sa.Table | None) -> None:
    """Create the counting triggers of ``f8a_job_failures`` and of ``jobs`` (the job store's table) if
    missing, and start their counters from the rows already there."""
    postgresql = connection.dialect.name == "postgresql"
    counted: list[tuple[sa.Table, Callable[[str], str]]] = [
        (job_failures, lambda _row: f"'{FAILURES}'")
    ]
    if jobs is not None:
        counted.append((jobs, lambda row: _kind(f"{row}.is_default")))
        _install(connection, *(_move_postgresql if postgresql else _move_sqlite)(jobs.name))
    for table, counter in counted:
        for event, sign in (("INSERT", 1), ("DELETE", -1)):
            trigger = f"{table.name}_count_{event.lower()}"
            render = _change_postgresql if postgresql else _change_sqlite
            statements = render(trigger, table.name, event, sign, counter)
            created = _install(connection, trigger, table.name, statements)
            if created and event == "INSERT":  # the rows before the trigger, counted under its lock
                _recount(connection, table)


def uninstall(connection: sa.Connection, tables: list[str]) -> None:
    """Drop the counting triggers of ``tables`` (on PostgreSQL with their functions)."""
    postgresql = connection.dialect.name == "postgresql"
    for table in tables:
        for change in ("insert", "delete", "move"):
            trigger = f"{table}_count_{change}"
            statement = (
                f"DROP FUNCTION IF EXISTS {trigger}() CASCADE"
                if postgresql
                else f"DROP TRIGGER IF EXISTS {trigger}"
            )
            connection.execute(sa.text(statement))


#: built once: building a statement and its cache key cost more than running this one
_TOTALS = sa.select(counts.c.counter, sa.func.sum(counts.c.n)).group_by(counts.c.counter)


def totals(connection: sa.Connection) -> dict[str, int]:
    """Every counter's value."""
    found = {counter: int(n or 0) for counter, n in connection.execute(_TOTALS)}
    return {name: found.get(name, 0) for name in (USER_JOBS, DEFAULT_JOBS, FAILURES)}


def _kind(is_default: str) -> str:
    return f"CASE WHEN {is_default} THEN '{DEFAULT_JOBS}' ELSE '{USER_JOBS}' END"


def _add(rows: str) -> str:
    """Add ``rows`` of (counter, shard, delta) to the counters."""
    return (
        f"INSERT INTO f8a_counts (counter, shard, n) {rows} "
        "ON CONFLICT (counter, shard) DO UPDATE SET n = f8a_counts.n + excluded.n"
    )


def _change_postgresql(
    trigger: str, table: str, event: str, sign: int, counter: Callable[[str], str]
) -> list[str]:
    """A statement trigger: one addition per counter for all the rows a statement inserted or deleted."""
    changed = "NEW TABLE" if event == "INSERT" else "OLD TABLE"
    rows = f"SELECT {counter('changed')}, {SHARD}, {sign} * count(*) FROM changed GROUP BY 1"  # noqa: S608
    return [
        f"CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {_add(rows)}; RETURN NULL; END $$",
        f"CREATE TRIGGER {trigger} AFTER {event} ON {table} REFERENCING {changed} AS changed "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {trigger}()",
    ]


def _change_sqlite(
    trigger: str, table: str, event: str, sign: int, counter: Callable[[str], str]
) -> list[str]:
    """A row trigger (SQLite has no statement triggers; one worker, one shard)."""
    row = "NEW" if event == "INSERT" else "OLD"
    return [
        f"CREATE TRIGGER {trigger} AFTER {event} ON {table} FOR EACH ROW "
        f"BEGIN {_add(f'VALUES ({counter(row)}, 0, {sign})')}; END"
    ]


def _move_postgresql(table: str) -> tuple[str, str, list[str]]:
    """A job that changes type (a user job replacing a default one, or the other way): a row trigger that
    fires only then, so the scheduler's many updates of next run times cost nothing."""
    trigger = f"{table}_count_move"
    rows = (
        f"VALUES ({_kind('OLD.is_default')}, {SHARD}, -1), ({_kind('NEW.is_default')}, {SHARD}, 1)"
    )
    return (
        trigger,
        table,
        [
            f"CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {_add(rows)}; RETURN NULL; END $$",
            f"CREATE TRIGGER {trigger} AFTER UPDATE OF is_default ON {table} FOR EACH ROW "
            f"WHEN (OLD.is_default IS DISTINCT FROM NEW.is_default) EXECUTE FUNCTION {trigger}()",
        ],
    )


def _move_sqlite(table: str) -> tuple[str, str, list[str]]:
    trigger = f"{table}_count_move"
    moves = [
        f"VALUES ({_kind('OLD.is_default')}, 0, -1)",
        f"VALUES ({_kind('NEW.is_default')}, 0, 1)",
    ]
    return (
        trigger,
        table,
        [
            f"CREATE TRIGGER {trigger} AFTER UPDATE OF is_default ON {table} FOR EACH ROW "
            f"WHEN OLD.is_default IS NOT NEW.is_default "
            f"BEGIN {'; '.join(_add(rows) for rows in moves)}; END"
        ],
    )


def _install(connection: sa.Connection, trigger: str, table: str, statements: list[str]) -> bool:
    """Run ``statements`` (which create ``trigger`` on ``table``) unless it exists; whether they ran."""
    if connection.dialect.name == "postgresql":
        query = (
            "SELECT 1 FROM pg_trigger WHERE tgname = :name AND tgrelid = CAST(:table AS regclass)"
        )
    else:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = :name"
    found = connection.execute(sa.text(query), {"name": trigger, "table": table}).first()
    if found is not None:
        return False
    for statement in statements:
        connection.execute(sa.text(statement))
    return True


def _recount(connection: sa.Connection, table: sa.Table) -> None:
    """Start the counters of ``table`` (the job store's, or the failure records) from a count of its rows."""
    if table.name != job_failures.name:
        names = [USER_JOBS, DEFAULT_JOBS]
        rows = connection.execute(
            sa.select(table.c.is_default, sa.func.count()).group_by(table.c.is_default)
        ).all()
        found = {DEFAULT_JOBS if is_default else USER_JOBS: n for is_default, n in rows}
    else:
        names = [FAILURES]
        found = {
            FAILURES: connection.execute(
                sa.select(sa.func.count()).select_from(job_failures)
            ).scalar_one()
        }
    connection.execute(counts.delete().where(counts.c.counter.in_(names)))
    connection.execute(
        counts.insert(), [{"counter": name, "shard": 0, "n": found.get(name, 0)} for name in names]
    )
