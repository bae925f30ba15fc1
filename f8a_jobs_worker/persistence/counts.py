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

import sqlalchemy as sa

from f8a_jobs_worker.persistence.tables import counts, job_failures

# The trigger DDL below is built from this module's constants and table names only (S608 is noted there).

SHARDS = 64
USER_JOBS = "jobs:user"
DEFAULT_JOBS = "jobs:default"
FAILURES = "failures"


def install(connection: sa.Connection, jobs: sa.Table | None) -> None:
    """Create the counting triggers of ``f8a_job_failures`` and of ``jobs`` (the job store's table) if
    missing, and start their counters from the rows already there."""
    if connection.dialect.name == "postgresql":
        _install_postgresql(connection, jobs)
    else:
        _install_sqlite(connection, jobs)


def totals(connection: sa.Connection) -> dict[str, int]:
    """Every counter's value."""
    query = sa.select(counts.c.counter, sa.func.sum(counts.c.n)).group_by(counts.c.counter)
    found = {counter: int(n or 0) for counter, n in connection.execute(query)}
    return {name: found.get(name, 0) for name in (USER_JOBS, DEFAULT_JOBS, FAILURES)}


def _kind(is_default: str) -> str:
    return f"CASE WHEN {is_default} THEN '{DEFAULT_JOBS}' ELSE '{USER_JOBS}' END"


def _installed(connection: sa.Connection, trigger: str, table: str) -> bool:
    if connection.dialect.name == "postgresql":
        query = (
            "SELECT 1 FROM pg_trigger WHERE tgname = :name AND tgrelid = CAST(:table AS regclass)"
        )
        return (
            connection.execute(sa.text(query), {"name": trigger, "table": table}).first()
            is not None
        )
    query = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = :name"
    return connection.execute(sa.text(query), {"name": trigger}).first() is not None


def _install_postgresql(connection: sa.Connection, jobs: sa.Table | None) -> None:
    shard = f"pg_backend_pid() % {SHARDS}"
    add = (
        "INSERT INTO f8a_counts (counter, shard, n) {rows} "
        "ON CONFLICT (counter, shard) DO UPDATE SET n = f8a_counts.n + excluded.n"
    )
    bodies = (
        {}
        if jobs is None
        else {
            f"{jobs.name}_count_insert": (
                jobs.name,
                "INSERT",
                "NEW TABLE AS changed",
                add.format(
                    rows=f"SELECT {_kind('is_default')}, {shard}, count(*) FROM changed "  # noqa: S608
                    f"GROUP BY {_kind('is_default')}"
                ),
            ),
            f"{jobs.name}_count_delete": (
                jobs.name,
                "DELETE",
                "OLD TABLE AS changed",
                add.format(
                    rows=f"SELECT {_kind('is_default')}, {shard}, -count(*) FROM changed "  # noqa: S608
                    f"GROUP BY {_kind('is_default')}"
                ),
            ),
        }
    )
    bodies |= {
        f"{job_failures.name}_count_insert": (
            job_failures.name,
            "INSERT",
            "NEW TABLE AS changed",
            add.format(rows=f"SELECT '{FAILURES}', {shard}, count(*) FROM changed"),  # noqa: S608
        ),
        f"{job_failures.name}_count_delete": (
            job_failures.name,
            "DELETE",
            "OLD TABLE AS changed",
            add.format(rows=f"SELECT '{FAILURES}', {shard}, -count(*) FROM changed"),  # noqa: S608
        ),
    }
    if jobs is not None:
        _install_postgresql_moves(connection, jobs.name, shard, add)
    for trigger, (table, event, transition, body) in bodies.items():
        if _installed(connection, trigger, table):
            continue
        connection.execute(
            sa.text(
                f"CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {body}; RETURN NULL; END $$"
            )
        )
        connection.execute(
            sa.text(
                f"CREATE TRIGGER {trigger} AFTER {event} ON {table} REFERENCING {transition} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {trigger}()"
            )
        )
        if event == "INSERT":  # the table's rows before the trigger, counted under its lock
            _recount(connection, jobs if table != job_failures.name else None)


def _install_postgresql_moves(connection: sa.Connection, table: str, shard: str, add: str) -> None:
    """A job that changes type (a user job replacing a default one, or the other way): a row trigger that
    fires only then, so the scheduler's many updates of next run times cost nothing."""
    trigger = f"{table}_count_move"
    if _installed(connection, trigger, table):
        return
    move = add.format(
        rows=f"VALUES ({_kind('OLD.is_default')}, {shard}, -1), "
        f"({_kind('NEW.is_default')}, {shard}, 1)"
    )
    connection.execute(
        sa.text(
            f"CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {move}; RETURN NULL; END $$"
        )
    )
    connection.execute(
        sa.text(
            f"CREATE TRIGGER {trigger} AFTER UPDATE OF is_default ON {table} FOR EACH ROW "
            f"WHEN (OLD.is_default IS DISTINCT FROM NEW.is_default) EXECUTE FUNCTION {trigger}()"
        )
    )


def _install_sqlite(connection: sa.Connection, jobs: sa.Table | None) -> None:
    add = (
        "INSERT INTO f8a_counts (counter, shard, n) VALUES ({counter}, 0, {delta}) "
        "ON CONFLICT (counter, shard) DO UPDATE SET n = n + excluded.n"
    )
    triggers = (
        {}
        if jobs is None
        else {
            f"{jobs.name}_count_insert": (
                jobs.name,
                "INSERT",
                add.format(counter=_kind("NEW.is_default"), delta=1),
            ),
            f"{jobs.name}_count_delete": (
                jobs.name,
                "DELETE",
                add.format(counter=_kind("OLD.is_default"), delta=-1),
            ),
        }
    )
    if jobs is not None:
        move = (
            add.format(counter=_kind("OLD.is_default"), delta=-1)
            + "; "
            + add.format(counter=_kind("NEW.is_default"), delta=1)
        )
        trigger = f"{jobs.name}_count_move"
        if not _installed(connection, trigger, jobs.name):
            connection.execute(
                sa.text(
                    f"CREATE TRIGGER {trigger} AFTER UPDATE OF is_default ON {jobs.name} FOR EACH ROW "
                    f"WHEN OLD.is_default IS NOT NEW.is_default BEGIN {move}; END"
                )
            )
    triggers |= {
        f"{job_failures.name}_count_insert": (
            job_failures.name,
            "INSERT",
            add.format(counter=f"'{FAILURES}'", delta=1),
        ),
        f"{job_failures.name}_count_delete": (
            job_failures.name,
            "DELETE",
            add.format(counter=f"'{FAILURES}'", delta=-1),
        ),
    }
    for trigger, (table, event, body) in triggers.items():
        if _installed(connection, trigger, table):
            continue
        connection.execute(
            sa.text(
                f"CREATE TRIGGER {trigger} AFTER {event} ON {table} FOR EACH ROW BEGIN {body}; END"
            )
        )
        if event == "INSERT":
            _recount(connection, jobs if table != job_failures.name else None)


def _recount(connection: sa.Connection, jobs: sa.Table | None) -> None:
    """Start the counters of ``jobs`` (or, with None, of the failure records) from a count of the rows."""
    if jobs is not None:
        names = [USER_JOBS, DEFAULT_JOBS]
        rows = connection.execute(
            sa.select(jobs.c.is_default, sa.func.count()).group_by(jobs.c.is_default)
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
