"""The store's schema versions: an empty store is created at head, a store that release 0.1.0 wrote (its
tables and rows kept in tests/data/store_0_1_0/) is upgraded by ``run`` and loses nothing, a store behind is
refused when upgrades are manual, a store ahead always, and ``db`` goes down and up again."""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from f8a_jobs_worker.cli.main import cli
from f8a_jobs_worker.commands.applier import CommandApplier
from f8a_jobs_worker.commands.envelope import Envelope
from f8a_jobs_worker.errors import SchemaMismatch
from f8a_jobs_worker.events import MemoryEventSink
from f8a_jobs_worker.persistence import schema, tables
from f8a_jobs_worker.persistence.database import create_engine
from f8a_jobs_worker.worker import Worker

DATA = Path(__file__).parent / "data" / "store_0_1_0"
REVISIONS = Path(schema.__file__).with_name("revisions") / "versions"
#: the default job file the 0.1.0 store was written with (make_store.py)
NIGHTLY = """job_id: nightly-default
handler: noop
kwargs: {message: from the default job file}
cron: "30 2 * * *"
misfire_grace_time: 600
"""
JOBS_0_1_0 = {
    "broken-by-deploy",
    "failing",
    "flows",
    "from-command",
    "hourly",
    "nightly-default",
    "once",
    "paused",
    "weekdays",
}


def revision_module(prefix: str) -> ModuleType:
    """A revision file (their names start with digits: not importable by name)."""
    path = next(REVISIONS.glob(f"{prefix}_*.py"))
    spec = importlib.util.spec_from_file_location(f"revision_{prefix}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_0_1_0(url: str) -> None:
    """Put the 0.1.0 store (its dump) where ``url`` points: the URL's schema on PostgreSQL, its file on
    SQLite."""
    if url.startswith("sqlite"):
        database = sqlite3.connect(sa.make_url(url).database or "")
        database.executescript((DATA / "sqlite.sql").read_text())
        database.close()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        target = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
    engine.dispose()
    dump = (DATA / "postgresql.sql").read_text().replace("CREATE SCHEMA store_0_1_0;", "")
    with psycopg.connect(
        sa.make_url(url).set(drivername="postgresql").render_as_string(False)
    ) as c:
        c.execute(dump.replace("store_0_1_0", target))  # one script, no parameters


@pytest.fixture(params=["postgresql", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("database_url"))
    return f"sqlite:///{tmp_path}/store.sqlite"


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    made = create_engine(store_url)
    yield made
    made.dispose()


def test_the_release_head_is_the_head_of_its_revision_files() -> None:
    assert schema.scripted_head() == schema.HEAD, "a revision was added: set schema.HEAD to it"


def test_a_start_on_a_store_at_head_never_loads_alembic(engine: sa.Engine, store_url: str) -> None:
    """The check at start reads the version row; Alembic's imports are for upgrades."""
    schema.upgrade(engine)
    program = (
        "import sys\n"
        "from f8a_jobs_worker.persistence import schema\n"
        "from f8a_jobs_worker.persistence.database import create_engine\n"
        f"found = schema.ensure(create_engine({store_url!r}), upgrade_allowed=True)\n"
        "print(found.current, found.at_head, any(m.startswith('alembic') for m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [schema.HEAD, "True", "False"]


def test_an_empty_store_is_created_at_head_with_every_table(engine: sa.Engine) -> None:
    assert schema.state(engine).current is None
    before = schema.upgrade(engine)
    assert (before.current, schema.state(engine).current) == (None, schema.head())
    baseline = revision_module("0001").tables()
    assert set(baseline.tables) | {schema.VERSION_TABLE} <= set(
        sa.inspect(engine).get_table_names()
    )


def test_the_tables_of_0_1_0_keep_every_column_at_head(engine: sa.Engine) -> None:
    """Expand, then contract: an older release's replicas keep working beside this one's, so no revision up
    to head removes or narrows a column 0.1.0 reads (a contracting revision would change this test)."""
    schema.upgrade(engine)
    inspector = sa.inspect(engine)
    for table in revision_module("0001").tables().tables.values():
        found = {column["name"]: column for column in inspector.get_columns(table.name)}
        for column in table.columns:
            assert column.name in found, f"{table.name}.{column.name}"
            assert found[column.name]["nullable"] or not column.nullable, (
                f"{table.name}.{column.name} became NOT NULL: 0.1.0 does not always write it"
            )


def test_a_store_of_0_1_0_is_upgraded_at_start_and_loses_nothing(
    store_url: str, make_worker: Callable[..., Worker], empty_jobs_dir: Path
) -> None:
    load_0_1_0(store_url)
    (empty_jobs_dir / "nightly.yaml").write_text(NIGHTLY)
    sink = MemoryEventSink()
    worker = make_worker(sink=sink, database_url=store_url)
    assert (worker.schema.current, schema.state(worker.engine).current) == (None, schema.head())
    service = worker.service

    listed = service.list_jobs()
    assert listed["jobs_count"] == len(JOBS_0_1_0)
    views = {job["job_id"]: job for job in listed["jobs"]}
    assert set(views) == JOBS_0_1_0
    assert views["broken-by-deploy"]["state"] == "broken"
    assert "gone_module_of_an_old_release" in views["broken-by-deploy"]["error"]
    assert (views["hourly"]["periodically_seconds"], views["hourly"]["kwargs"]) == (
        3600,
        {"message": "hourly"},
    )
    assert (views["weekdays"]["cron"], views["weekdays"]["jitter"]) == ("0 6 * * 1-5", 30)
    failing = views["failing"]
    assert (failing["on_interrupt"], failing["pause_after_failures"], failing["overlap"]) == (
        "retry",
        5,
        "buffer_one",
    )
    assert failing["misfire_grace_time"] is None
    assert (views["flows"]["state"], views["flows"]["overlap_limit"]) == ("paused", 3)
    assert (views["nightly-default"]["default"], views["nightly-default"]["cron"]) == (
        True,
        "30 2 * * *",
    )
    assert worker.default_jobs is not None and worker.default_jobs.unchanged == ["nightly-default"]

    runs = service.job_history("from-command")["runs"]
    assert [run["outcome"] for run in runs] == ["executed"] * 3
    failures = service.list_jobs(job_type="failed")["jobs"]
    assert [(f["failed_job_id"], f["error"]) for f in failures] == [
        ("failing", "RuntimeError: boom")
    ]
    assert "Traceback" in failures[0]["traceback"]

    # a command sent again is answered from the reply 0.1.0 stored, and not applied twice
    again = Envelope("cmd-create-1", "replies_a", "corr-1", "job.create", {"handler": "noop"})
    applied = CommandApplier(service).apply_many([again])[0]
    assert applied.duplicate and applied.reply is not None
    assert applied.reply["result"]["job"]["job_id"] == "from-command"

    # what a replica killed under 0.1.0 left: its run reported interrupted, its unsent event sent
    sink.wait_for("job.interrupted", "hourly")
    assert "interrupted" in [run["outcome"] for run in service.job_history("hourly")["runs"]]
    created = sink.wait_for("job.created", "hourly")
    assert [event.event_id for event in created] == ["unsent-event-1"]
    # the backfill left pending runs its run
    backfilled = sink.wait_for("job.executed", "hourly")[0]
    assert (
        backfilled.fields["scheduled_run_time"] == datetime(2026, 12, 6, 22, tzinfo=UTC).isoformat()
    )

    # the run buffer_one kept starts when the next run of the job ends; the failure streak goes on
    service.run_job_now("failing")
    sink.wait_for("job.failed", "failing", count=2)
    assert len(service.list_jobs(job_type="failed")["jobs"]) == 3
    state = service.scheduler_state()
    assert state["schema"] == {"store": schema.head(), "release": schema.head()}


def test_manual_upgrades_refuse_a_store_behind_and_name_the_command(
    store_url: str, make_worker: Callable[..., Worker]
) -> None:
    load_0_1_0(store_url)
    worker = make_worker(start=False, database_url=store_url, schema_upgrade="manual")
    with pytest.raises(SchemaMismatch, match="f8a-jobs-worker db upgrade"):
        worker.start()
    worker.stop()
    runner = CliRunner()
    env = {"F8A_JOBS_DATABASE_URL": store_url, "F8A_JOBS_SCHEMA_UPGRADE": "manual"}
    refused = runner.invoke(cli, ["run", "--no-default-jobs"], env=env)
    assert refused.exit_code == 78, refused.output
    assert "f8a-jobs-worker db upgrade" in refused.output
    behind = runner.invoke(cli, ["db", "current"], env=env)
    assert (behind.exit_code, "behind" in behind.output) == (1, True), behind.output
    upgraded = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"no revision -> {schema.head()}" in upgraded.output
    assert runner.invoke(cli, ["db", "current"], env=env).exit_code == 0


def test_a_store_a_newer_release_upgraded_is_refused(
    engine: sa.Engine, store_url: str, make_worker: Callable[..., Worker]
) -> None:
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = 'f999'"))
    worker = make_worker(start=False, database_url=store_url)
    with pytest.raises(SchemaMismatch, match="does not know"):
        worker.start()
    worker.stop()
    shown = CliRunner().invoke(cli, ["db", "current"], env={"F8A_JOBS_DATABASE_URL": store_url})
    assert (shown.exit_code, "newer release" in shown.output) == (1, True), shown.output


def test_db_goes_down_to_no_tables_and_up_again(engine: sa.Engine, store_url: str) -> None:
    runner = CliRunner()
    env = {"F8A_JOBS_DATABASE_URL": store_url}
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    refused = runner.invoke(cli, ["db", "downgrade", "base"], env=env)
    assert refused.exit_code == 2 and "--yes" in refused.output
    down = runner.invoke(cli, ["db", "downgrade", "base", "--yes"], env=env)
    assert down.exit_code == 0, down.output
    assert set(sa.inspect(engine).get_table_names()) <= {schema.VERSION_TABLE}
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    assert "f8a_jobs" in sa.inspect(engine).get_table_names()
    history = runner.invoke(cli, ["db", "history"])
    assert history.exit_code == 0 and history.output.startswith("0001  ")


def test_a_store_upgraded_to_head_is_the_schema_the_worker_declares(engine: sa.Engine) -> None:
    """The revisions and ``persistence/tables.py`` describe one schema: every table, column and index the
    worker's queries count on is what an upgrade builds (Alembic's autogenerate comparison finds nothing)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    schema.upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), tables.metadata)
    assert [d for d in differences if not _ignored(d)] == []


def _ignored(difference: tuple[object, ...]) -> bool:
    """What tables.py leaves out on purpose: Alembic's version table, and the PostgreSQL-only index of job
    ids in the "C" collation (revision 0004; SQLite has no such collation)."""
    kind, item = difference[0], difference[1]
    name = getattr(item, "name", None)
    return (kind, name) in {
        ("remove_table", schema.VERSION_TABLE),
        ("remove_index", "ix_f8a_jobs_id_prefix"),
    }
