"""Group commit on RabbitMQ: commands that arrive together are applied in one transaction, in arrival order;
``job.create``s and ``job.get``s that follow one another with set-based statements, every other write command
in a savepoint of its own; and the scheduler fires a large catch-up in capped passes."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.commands.applier import CommandApplier
from f8a_jobs_worker.commands.envelope import Envelope
from f8a_jobs_worker.job import EXECUTOR, RUNNER_REF, JobOptions
from f8a_jobs_worker.job import Job as StoredJob
from f8a_jobs_worker.persistence import schema
from f8a_jobs_worker.persistence.tables import job_runs
from f8a_jobs_worker.scheduling import runner
from f8a_jobs_worker.scheduling.view import job_view
from tests.messaging import ReplyCollector, read_queue, until_taken

#: the queued commands reach the consumer as one batch, even when the broker delivers them in bursts
BATCH_WAIT = 1.0
LATER = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()

rabbitmq_only = pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)


def stock_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """What 0.1.0 had where the rows' ``func`` points: APScheduler imports it when it restores a row."""
    monkeypatch.setattr(runner, "run_job", lambda *_: None, raising=False)


def stock_store(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> SQLAlchemyJobStore:
    """APScheduler's own store on the worker's table, as a replica of 0.1.0 reads it."""
    stock_runner(monkeypatch)
    stock = SQLAlchemyJobStore(engine=engine, tablename="f8a_jobs")
    stock.start(BackgroundScheduler(timezone=UTC), "default")
    return stock


def restored(job: Job) -> StoredJob:
    """The worker's job from the state APScheduler restored."""
    return StoredJob.from_state(job.__getstate__())


def send_all(
    client: Client, reply_to: str, commands: list[tuple[str, dict[str, Any]]]
) -> list[str]:
    """Publish every command before any reply is read; return their command_ids in order."""
    ids = []
    for index, (command, args) in enumerate(commands):
        command_id = f"c{index:02d}-{uuid.uuid4().hex[:6]}"
        ids.append(client.send(command, args, command_id=command_id, reply_to=reply_to))
    return ids


def first_batch(
    worker: Any,
    client: Client,
    broker_url: str,
    commands: list[tuple[str, dict[str, Any]]],
    before_start: Callable[[list[str]], None] | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Queue ``commands`` before ``worker`` (not started yet) consumes, start it, and collect one reply per
    command: the command_ids in order and every reply that arrived. ``before_start`` gets the ids first."""
    collector = ReplyCollector(broker_url)
    try:
        ids = send_all(client, collector.name, commands)
        if before_start is not None:
            before_start(ids)
        worker.start()
        collector.until(lambda replies: len(replies) >= len(ids), timeout=30)
    finally:
        collector.close()
    return ids, collector.replies


def pipelined_with_a_repeat(
    worker: Any, client: Client, broker_url: str, commands: list[tuple[str, dict[str, Any]]]
) -> tuple[list[str], str, dict[str, list[dict[str, Any]]]]:
    """Queue ``commands`` and the first one again (same command_id) before ``worker`` consumes, start it,
    and collect the replies: the command_ids in order, the repeat's id, and the replies by command_id."""
    collector = ReplyCollector(broker_url)
    try:
        ids = send_all(client, collector.name, commands)  # all queued before the worker consumes
        again = client.send(*commands[0], command_id=ids[0], reply_to=collector.name)
        worker.start()
        collector.until(lambda replies: len(replies) >= len(ids) + 1, timeout=30)
    finally:
        collector.close()
    by_id: dict[str, list[dict[str, Any]]] = {}
    for reply in collector.replies:
        by_id.setdefault(reply["command_id"], []).append(reply)
    return ids, again, by_id


@rabbitmq_only
def test_pipelined_commands_apply_in_order_and_commit_together(
    messaging_worker, client: Client, broker_url: str, database_url: str
) -> None:
    worker = messaging_worker(start=False, batch_wait=BATCH_WAIT)
    create = ("job.create", {"handler": "noop", "job_id": "b", "periodically": "1 day"})
    commands = [
        create,
        ("job.pause", {"job_id": "b"}),
        ("job.get", {"job_id": "b"}),
        ("job.resume", {"job_id": "b"}),
        ("job.create", {"handler": "noop", "job_id": "b", "when": LATER}),  # job_exists
        ("job.delete", {"job_id": "b"}),
        ("job.get", {"job_id": "b"}),  # job_not_found
        ("job.create", {"handler": "noop", "job_id": "c", "when": LATER}),
    ]
    ids, again, by_id = pipelined_with_a_repeat(worker, client, broker_url, commands)
    first = [by_id[command_id][0] for command_id in ids]
    assert [r["ok"] for r in first] == [True, True, True, True, False, True, False, True]
    assert first[2]["result"]["job"]["state"] == "paused"  # the pause before it was applied first
    assert first[4]["error"]["code"] == "job_exists"
    assert first[6]["error"]["code"] == "job_not_found"  # the delete before it was applied first
    assert by_id[again] == [first[0], first[0]]  # the same command twice: one effect, same reply
    assert worker.service.get_job("c")["job"]["job_id"] == "c"

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:  # xmin: the id of the transaction that wrote the row
        writers = (
            connection.execute(sa.text("SELECT xmin::text FROM f8a_outbox WHERE kind = 'reply'"))
            .scalars()
            .all()
        )
    engine.dispose()
    assert len(writers) == len(ids)
    assert max(Counter(writers).values()) > 1, "replies of one batch share their transaction"


def refuse(database_url: str, table: str, column: str, value: str) -> None:
    """Make PostgreSQL refuse, with an error the worker cannot expect, rows of ``table`` whose ``column`` is
    ``value`` (a trigger): a fault of the database, not of the input."""
    engine = sa.create_engine(database_url)
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
            )
        )
        connection.execute(
            sa.text(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW "
                f"WHEN (NEW.{column} = '{value}') EXECUTE FUNCTION refuse()"
            )
        )
    engine.dispose()


@rabbitmq_only
def test_a_command_that_fails_unexpectedly_rolls_back_alone(
    messaging_worker, client: Client, broker_url: str, names, watcher, database_url: str
) -> None:
    """The database refuses one job's insert inside the batch's transaction (a create between commands of
    other kinds: in a savepoint of its own). Only that savepoint is rolled back; the command is
    dead-lettered with ``internal_error``, the others apply."""
    refuse(database_url, "f8a_jobs", "id", "refused")
    worker = messaging_worker(start=False, batch_wait=BATCH_WAIT)
    commands = [
        ("job.create", {"handler": "noop", "job_id": "before", "when": LATER}),
        ("job.pause", {"job_id": "before"}),
        ("job.create", {"handler": "noop", "job_id": "refused", "when": LATER}),
        ("job.resume", {"job_id": "before"}),
        ("job.create", {"handler": "noop", "job_id": "after", "when": LATER}),
    ]
    ids, received = first_batch(worker, client, broker_url, commands)
    replies = {reply["command_id"]: reply for reply in received}
    assert [replies[i]["ok"] for i in ids] == [True, True, False, True, True]
    assert replies[ids[2]]["error"]["code"] == "internal_error"
    assert [j["job_id"] for j in worker.service.list_jobs()["jobs"]] == ["after", "before"]
    dead = read_queue(broker_url, names.dead, 1)
    assert dead[0].headers["x-f8a-reason"] == "internal_error"
    rejected = watcher.wait_for("command.rejected")
    assert [e["command_id"] for e in rejected] == [ids[2]]


def test_a_catch_up_larger_than_a_pass_fires_every_job_once(make_worker, database_url) -> None:
    """250 due jobs: three scheduler passes (100 per pass, one commit each), each job run exactly once."""
    worker = make_worker(start=False)
    worker.jobs.due_per_pass = 100
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    worker.start()
    worker.service.pause_scheduler()
    for n in range(250):
        worker.service.create_job("noop", job_id=f"due-{n:03d}", when=past, misfire_grace_time=None)
    worker.service.resume_scheduler()
    engine = sa.create_engine(database_url)
    query = sa.select(job_runs.c.job_id, job_runs.c.outcome)
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    rows: list[Any] = []
    while datetime.now(UTC) < deadline:
        with engine.connect() as connection:
            rows = list(connection.execute(query))
        if len(rows) >= 250:
            break
        time.sleep(0.2)
    worker.stop()
    with engine.connect() as connection:
        rows = list(connection.execute(query))
        left = connection.execute(sa.text("SELECT count(*) FROM f8a_jobs")).scalar_one()
    engine.dispose()
    assert Counter(outcome for _, outcome in rows) == {"executed": 250}
    assert len({job_id for job_id, _ in rows}) == 250
    assert left == 0


@rabbitmq_only
@pytest.mark.parametrize("refused", ["reply", "job"])
def test_a_batch_that_fails_as_a_whole_is_applied_again_one_by_one(
    refused: str,
    messaging_worker,
    client: Client,
    broker_url: str,
    names,
    caplog,
    database_url: str,
) -> None:
    """The replies of a batch are stored in one statement (into the outbox) at its end, and a run of creates
    is one insert, both outside any savepoint: when the database refuses one reply, or one job (as it would
    an id another replica inserted meanwhile), the batch's transaction is rolled back and each command is
    applied on its own; only the culprit is dead-lettered."""
    worker = messaging_worker(start=False, batch_wait=BATCH_WAIT)
    commands = [
        ("job.create", {"handler": "noop", "job_id": "one", "when": LATER}),
        ("job.create", {"handler": "noop", "job_id": "refused", "when": LATER}),
        ("job.create", {"handler": "noop", "job_id": "two", "when": LATER}),
    ]

    def refuse_one(ids: list[str]) -> None:
        if refused == "reply":
            refuse(database_url, "f8a_outbox", "command_id", ids[1])
        else:
            refuse(database_url, "f8a_jobs", "id", "refused")

    ids, received = first_batch(worker, client, broker_url, commands, refuse_one)
    replies = {reply["command_id"]: reply for reply in received}
    assert len(received) == 3
    assert replies[ids[0]]["ok"] and replies[ids[2]]["ok"]
    assert replies[ids[1]]["error"]["code"] == "internal_error"
    assert [j["job_id"] for j in worker.service.list_jobs()["jobs"]] == ["one", "two"]
    assert read_queue(broker_url, names.dead, 1)[0].headers["x-f8a-reason"] == "internal_error"
    assert "a batch of 3 commands failed" in caplog.text


@rabbitmq_only
def test_creates_in_a_row_are_one_insert_with_each_outcome_in_order(
    messaging_worker, client: Client, broker_url: str, database_url: str, names, monkeypatch
) -> None:
    """A run of ``job.create``s: each gets the reply it would have got alone (a bad one its
    validation_error, an existing id and an id repeated in the run job_exists, a command_id repeated the
    first one's reply), all in one statement; the rows are what APScheduler's stock store reads."""
    worker = messaging_worker(start=False, batch_wait=BATCH_WAIT)
    engine = sa.create_engine(database_url)
    schema.upgrade(engine)
    engine.dispose()
    with worker.service.unit_of_work() as uow:  # stored before the worker starts
        worker.service.create_jobs([{"handler": "noop", "job_id": "old", "when": LATER}], uow=uow)
    commands = [
        ("job.create", {"handler": "noop", "job_id": "a", "when": LATER}),
        ("job.create", {"handler": "noop", "job_id": "old", "when": LATER}),  # job_exists
        ("job.create", {"handler": "noop", "job_id": "b", "cron": "0 3 * * *", "state": "paused"}),
        ("job.create", {"handler": "noop", "job_id": "c", "periodically": "nonsense"}),
        ("job.create", {"handler": "noop", "job_id": "a", "periodically": "1 day"}),  # job_exists
        (
            "job.create",
            {"handler": "noop", "job_id": "d", "periodically": "2 hours", "when": LATER},
        ),
        ("job.create", {"handler": "teleport", "job_id": "e"}),  # unknown_handler
        ("job.get", {"job_id": "d"}),  # sees the create before it
        ("job.get", {"job_id": "c"}),  # job_not_found
    ]
    ids, again, by_id = pipelined_with_a_repeat(worker, client, broker_url, commands)
    first = [by_id[command_id][0] for command_id in ids]
    codes = [r["error"]["code"] if not r["ok"] else "ok" for r in first]
    assert codes == [
        "ok",
        "job_exists",
        "ok",
        "invalid_schedule",
        "job_exists",
        "ok",
        "unknown_handler",
        "ok",
        "job_not_found",
    ]
    assert by_id[again] == [first[0], first[0]]
    assert first[2]["result"]["job"]["state"] == "paused"
    assert first[7]["result"]["job"] == first[5]["result"]["job"]
    created = {r["result"]["job"]["job_id"]: r["result"]["job"] for r in first[:7] if r["ok"]}
    assert set(created) == {"a", "b", "d"}

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:  # one transaction wrote the three rows
            writers = connection.execute(
                sa.text("SELECT DISTINCT xmin::text FROM f8a_jobs WHERE id IN ('a', 'b', 'd')")
            ).all()
        assert len(writers) == 1
        read = {job.id: job for job in stock_store(engine, monkeypatch).get_all_jobs()}
    finally:
        engine.dispose()
    assert set(read) == {"a", "b", "d", "old"}
    for job_id, view in created.items():
        job = read[job_id]
        assert job_view(restored(job)) == view  # the stock store restores exactly what was answered
        ours = worker.service.get_job(job_id)["job"]
        assert ours == view
    assert read["d"].trigger.interval == timedelta(hours=2)
    assert read["b"].next_run_time is None
    assert read["a"].next_run_time == datetime.fromisoformat(LATER)


@rabbitmq_only
def test_pauses_resumes_and_deletes_in_a_row_each_get_their_own_outcome(
    messaging_worker, client: Client, broker_url: str, database_url: str, watcher, monkeypatch
) -> None:
    """Runs of job.pause, job.resume and job.delete are applied with set-based statements; each command
    still gets the reply and the event it would have got alone, in order (a job named twice in a run is
    applied after the first, as if sent one by one)."""
    worker = messaging_worker(start=False, batch_wait=BATCH_WAIT)
    engine = sa.create_engine(database_url)
    schema.upgrade(engine)
    with worker.service.unit_of_work() as uow:
        worker.service.create_jobs(
            [
                {"handler": "noop", "job_id": job_id, "periodically": "1 day", "when": LATER}
                for job_id in ("p1", "p2", "p3")
            ],
            uow=uow,
        )
    commands = [
        ("job.pause", {"job_id": "p1"}),
        ("job.pause", {"job_id": "p2"}),
        ("job.pause", {"job_id": "nope"}),  # job_not_found
        ("job.pause", {"job_id": "p1"}),  # again: paused still
        ("job.resume", {"job_id": "p1"}),
        ("job.resume", {"job_id": "p2"}),
        ("job.delete", {"job_id": "p2"}),
        ("job.delete", {"job_id": "nope"}),  # job_not_found
        ("job.delete", {"job_id": "p3"}),
        ("job.get", {"job_id": "p2"}),  # job_not_found: deleted before it
    ]
    ids, again, by_id = pipelined_with_a_repeat(worker, client, broker_url, commands)
    first = [by_id[command_id][0] for command_id in ids]
    codes = [r["error"]["code"] if not r["ok"] else "ok" for r in first]
    missing = "job_not_found"
    assert codes == ["ok", "ok", missing, "ok", "ok", "ok", "ok", missing, "ok", missing]
    assert by_id[again] == [first[0], first[0]]  # the repeated command: its stored reply
    assert [first[i]["result"]["job"]["state"] for i in (0, 1, 3)] == ["paused"] * 3
    resumed = first[4]["result"]["job"]
    assert resumed["state"] == "running" and resumed["next_run_time"] is not None
    assert first[6]["result"] == {"removed": ["p2"]} and first[8]["result"] == {"removed": ["p3"]}
    assert worker.service.get_job("p1")["job"] == resumed
    assert [j["job_id"] for j in worker.service.list_jobs()["jobs"]] == ["p1"]
    paused = watcher.wait_for("job.paused", count=3)
    assert sorted(e["job_id"] for e in paused) == ["p1", "p1", "p2"]
    assert sorted(e["job_id"] for e in watcher.wait_for("job.resumed", count=2)) == ["p1", "p2"]
    assert sorted(e["job_id"] for e in watcher.wait_for("job.deleted", count=2)) == ["p2", "p3"]
    with engine.connect() as connection:  # the stock store reads what the updates wrote
        stock = stock_store(engine, monkeypatch)
        assert job_view(restored(stock.lookup_job("p1"))) == resumed
        assert connection.execute(sa.text("SELECT count(*) FROM f8a_jobs")).scalar_one() == 1
    engine.dispose()


@pytest.mark.parametrize(
    "fields",
    [
        {"periodically": "1 day", "state": "paused"},
        {"periodically": "2 hours", "when": LATER, "overlap": "allow", "overlap_limit": 3},
        {"cron": "*/5 * * * *"},
        {"when": LATER},
        {"periodically": "10 minutes", "jitter": 5, "misfire_grace_time": 30},
    ],
)
def test_a_jobs_row_is_the_state_apschedulers_job_has(
    make_worker, monkeypatch, fields: dict[str, Any]
) -> None:
    """A job's row keeps the state APScheduler 3's ``Job()`` has for ``add_job``'s arguments and the
    worker's defaults (0.1.0 stored jobs with ``add_job``, and its replicas restore rows as APScheduler
    does): built here from the same request, the two states are equal."""
    stock_runner(monkeypatch)
    worker = make_worker(start=False)
    writes = worker.service.writes
    spec, meta = writes.parse("noop", None, {"job_id": "built", **fields}, datetime.now(UTC))
    built = writes.new_job(spec, meta, datetime.now(UTC))
    constructed = Job(
        BackgroundScheduler(timezone=UTC),
        id=spec.job_id,
        func=RUNNER_REF,
        trigger=spec.schedule.trigger,
        executor=EXECUTOR,
        args=(spec.handler, meta),
        kwargs=spec.kwargs,
        name=spec.handler,
        misfire_grace_time=spec.misfire_grace_time,
        max_instances=JobOptions.of(meta).max_instances,
        next_run_time=built.next_run_time,
        coalesce=True,
    )
    assert built.to_state() == constructed.__getstate__()


def test_a_batch_of_reads_is_one_statement(make_worker) -> None:
    """A batch of ``job.get`` is answered by one SELECT: a read stores no reply, so none is looked up."""
    worker = make_worker()
    service = worker.service
    service.create_job(handler="noop", job_id="seen", when=LATER)
    gets = [
        Envelope(f"g{i}", None, f"g{i}", "job.get", {"job_id": job_id})
        for i, job_id in enumerate(["seen", "missing", "seen"])
    ]
    with statements_here(service.transactions.engine) as statements:
        results = CommandApplier(service).apply_many(gets)
    assert [r.reply["ok"] for r in results if r.reply is not None] == [True, False, True]
    assert results[1].reply is not None and results[1].reply["error"]["code"] == "job_not_found"
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")


def test_stored_replies_are_looked_up_only_when_one_refuses_the_batch(make_worker) -> None:
    """A batch of new writes does not look for stored replies. One with a command seen before is refused
    by that command's stored reply, rolled back and applied again with the replies looked up: the new
    commands applied once, the old one answered with its stored reply and its effect not repeated."""
    worker = make_worker()
    service = worker.service
    engine = service.transactions.engine

    def create(command_id: str, job_id: str) -> Envelope:
        args = {"handler": "noop", "job_id": job_id, "when": LATER}
        return Envelope(command_id, None, command_id, "job.create", args)

    applier = CommandApplier(service)
    with statements_here(engine) as statements:
        (first,) = applier.apply_many([create("c1", "a")])
    assert not [statement for statement in statements if "f8a_outbox" in statement]
    service.delete_job("a")  # were c1 applied again, "a" would be created again
    with statements_here(engine) as statements:
        results = applier.apply_many([create("c2", "b"), create("c1", "a"), create("c3", "c")])
    lookups = [statement for statement in statements if "f8a_outbox" in statement]
    assert len(lookups) == 1  # the second attempt's
    assert [r.duplicate for r in results] == [False, True, False]
    assert results[1].reply == first.reply
    assert [r.reply["ok"] for r in results if r.reply is not None] == [True, True, True]
    listed = service.list_jobs()["jobs"]
    assert sorted(job["job_id"] for job in listed) == ["b", "c"]
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT command_id, count(*) FROM f8a_outbox WHERE kind = 'reply' GROUP BY 1")
        ).all()
    assert sorted(stored) == [("c1", 1), ("c2", 1), ("c3", 1)]


@contextmanager
def statements_here(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL statements SQLAlchemy executes on ``engine`` from this thread inside the block (not the
    worker's own threads': its heartbeat, its scheduler)."""
    statements: list[str] = []
    this = threading.current_thread()

    def executed(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if threading.current_thread() is this:
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", executed)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", executed)


@rabbitmq_only
def test_commands_arriving_within_the_batch_wait_share_one_transaction(
    messaging_worker, client: Client, broker_url: str, database_url: str, names
) -> None:
    """``F8A_JOBS_BATCH_WAIT``: commands sent one after another, each after the one before was taken off the
    queue, still make one batch when they come within the wait."""
    messaging_worker(batch_wait=3.0)
    collector = ReplyCollector(broker_url)
    try:
        ids = []
        for n in range(3):
            ids += send_all(
                client,
                collector.name,
                [("job.create", {"handler": "noop", "job_id": f"w{n}", "when": LATER})],
            )
            until_taken(broker_url, names.commands)
        collector.until(lambda replies: len(replies) >= 3, timeout=30)
    finally:
        collector.close()
    assert sorted(reply["command_id"] for reply in collector.replies) == sorted(ids)
    assert all(reply["ok"] for reply in collector.replies)
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            writers = connection.execute(
                sa.text("SELECT DISTINCT xmin::text FROM f8a_jobs WHERE id IN ('w0', 'w1', 'w2')")
            ).all()
    finally:
        engine.dispose()
    assert len(writers) == 1
