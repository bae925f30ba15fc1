"""Several replicas on one PostgreSQL: every run fired once, through kills, rolling restarts and a replica cut
off from the database. Separate worker processes, real PostgreSQL and RabbitMQ; runs are counted three ways,
independently: the lines the ``record`` handler appends (one per execution, with the process id), the run
history, and the events an independent monitor receives. Timings are printed, not asserted.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from f8a_jobs_worker.client import Client
from tests.faults import FaultProxy
from tests.helpers import eventually, records
from tests.messaging import EventWatcher
from tests.process import WorkerProcess, clean_env, worker_env
from tests.test_delivery import outbox_empty, query

rabbitmq_only = pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)


class Cluster:
    """Replicas of ``f8a-jobs-worker run`` on one store and one broker."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.replicas: list[WorkerProcess] = []

    def start(self, count: int = 1, env: dict[str, str] | None = None) -> list[WorkerProcess]:
        started = [WorkerProcess.run(self.tmp_path, env or self.env) for _ in range(count)]
        self.replicas += started  # stopped at the end even if one fails to start
        for replica in started:
            replica.wait_for("consuming commands")
        return started

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


@pytest.fixture
def cluster(
    database_url: str, broker_url: str, names: Any, empty_jobs_dir: Path, tmp_path: Path
) -> Iterator[Cluster]:
    env = worker_env(database_url, broker_url, names, empty_jobs_dir, F8A_JOBS_THREADS="8")
    made = Cluster(tmp_path, env)
    yield made
    made.stop()


def executions(out: Path) -> Counter[tuple[str, str]]:
    """How many times each (job, scheduled time) ran, from the handler's own lines."""
    return Counter((r["job_id"], r["scheduled_at"]) for r in records(out))


def history(database_url: str, outcome: str | None = None) -> Counter[tuple[str, str]]:
    sql = "SELECT job_id, scheduled_at FROM f8a_job_runs"
    rows = query(database_url, sql + (" WHERE outcome = :o" if outcome else ""), o=outcome)
    return Counter((job_id, at.astimezone(UTC).isoformat()) for job_id, at in rows)


def no_gaps(database_url: str, job_ids: list[str], period: float) -> list[str]:
    """Periodic jobs whose recorded runs (executed, missed or interrupted) skip a scheduled time."""
    gaps = []
    for job_id in job_ids:
        times = sorted(
            at
            for (at,) in query(
                database_url, "SELECT scheduled_at FROM f8a_job_runs WHERE job_id = :j", j=job_id
            )
        )
        for before, after in pairwise(times):
            if (after - before).total_seconds() > period * 1.5:
                gaps.append(f"{job_id}: {before.isoformat()} -> {after.isoformat()}")
    return gaps


def create_ticking(
    client: Client, out: Path, count: int, prefix: str = "tick", sleep: float | None = None
) -> list[str]:
    """``count`` jobs every second that note each run in ``out`` (``record``, or ``sleep`` for ``sleep``
    seconds first)."""
    jobs = [f"{prefix}-{n:02d}" for n in range(count)]
    kwargs: dict[str, Any] = {"path": str(out)}
    if sleep is not None:
        kwargs["seconds"] = sleep
    for job_id in jobs:
        client.send(
            "job.create",
            {
                "handler": "record" if sleep is None else "sleep",
                "kwargs": kwargs,
                "job_id": job_id,
                "periodically": "1",
            },
        )
    return jobs


def create_one_shots(
    client: Client, out: Path, count: int, start: datetime, apart: timedelta
) -> None:
    """``count`` one-shot ``record`` jobs (``once-NNNN``), the first due at ``start``, then ``apart``."""
    for n in range(count):
        client.send(
            "job.create",
            {
                "handler": "record",
                "kwargs": {"path": str(out)},
                "job_id": f"once-{n:04d}",
                "when": (start + apart * n).isoformat(),
            },
        )


def stop_ticking(client: Client, jobs: list[str]) -> None:
    for job_id in jobs:
        client.call("job.delete", job_id=job_id)


def settle(database_url: str) -> None:
    eventually(
        lambda: (
            not query(database_url, "SELECT 1 FROM f8a_run_ledger") and outbox_empty(database_url)
        ),
        timeout=60,
    )


def assert_once(out: Path, database_url: str, watcher: EventWatcher) -> Counter[tuple[str, str]]:
    """Every execution happened once, has one history row and one announced event."""
    ran = executions(out)
    doubled = [key for key, n in ran.items() if n > 1]
    assert not doubled, f"{len(doubled)} runs fired twice, e.g. {doubled[:5]}"
    executed = history(database_url, "executed")
    assert not [key for key, n in executed.items() if n > 1]
    assert set(executed) == set(ran)
    watcher.drain(2.0)
    announced = {e["event_id"] for e in watcher.named("job.executed")}
    assert len(announced) == sum(executed.values())
    return ran


@rabbitmq_only
def test_three_replicas_fire_each_run_once(
    cluster: Cluster,
    watcher: EventWatcher,
    client: Client,
    database_url: str,
    tmp_path: Path,
) -> None:
    """2,000 one-shot jobs due within 10 s and 20 jobs every second for 30 s on 3 replicas started together
    (one of the 20 a default job all three load): each run fired exactly once, the work spread over the
    replicas; ``scheduler.state`` lists all three."""
    out = tmp_path / "runs.jsonl"
    jobs_dir = Path(cluster.env["F8A_JOBS_DEFAULT_JOBS_DIR"])
    (jobs_dir / "tick.yaml").write_text(
        f"job_id: tick-default\nhandler: record\nkwargs: {{path: '{out}'}}\nperiodically: 1\n"
    )
    replicas = cluster.start(3)
    ticking = [*create_ticking(client, out, 19), "tick-default"]
    start = datetime.now(UTC) + timedelta(seconds=10)
    one_shots = 2000
    create_one_shots(client, out, one_shots, start, timedelta(milliseconds=5))
    state = client.call("scheduler.state")
    assert len(state["replicas"]) == 3
    assert sum(1 for r in state["replicas"] if r["this"]) == 1
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 22)
    stop_ticking(client, ticking)
    eventually(lambda: not query(database_url, "SELECT 1 FROM f8a_jobs"), timeout=60)
    settle(database_url)
    ran = assert_once(out, database_url, watcher)
    assert sum(1 for job_id, _ in ran if job_id.startswith("once-")) == one_shots
    assert not no_gaps(database_url, ticking, 1.0)
    by_process = Counter(r["pid"] for r in records(out))
    print(f"runs per replica: {sorted(by_process.values())}")
    assert len(by_process) == 3  # all three fired
    for replica in replicas:
        assert "not loaded" not in replica.output


@rabbitmq_only
def test_kill_9_of_a_firing_replica(
    cluster: Cluster,
    watcher: EventWatcher,
    client: Client,
    database_url: str,
    tmp_path: Path,
) -> None:
    """Jobs of 0.4 s every second on 3 replicas; one replica with runs in progress is killed with ``kill -9``:
    the others go on firing, report its runs in flight as interrupted within the lapse, and no run is fired
    twice. The time from the kill to the next run and to the report are printed."""
    out = tmp_path / "runs.jsonl"
    replicas = cluster.start(3)
    jobs = create_ticking(client, out, 12, "nap", sleep=0.4)
    time.sleep(5)
    victim = _replica_with_runs(database_url, replicas)
    in_flight = query(
        database_url,
        "SELECT count(*) FROM f8a_run_ledger WHERE worker LIKE :w",
        w=f"%:{victim.proc.pid}:%",
    )[0][0]
    killed = time.time()
    victim.kill()
    eventually(lambda: any(r["at"] > killed for r in records(out)), timeout=10)
    first_after = min(r["at"] for r in records(out) if r["at"] > killed) - killed
    reported = eventually(
        lambda: query(
            database_url,
            "SELECT min(finished_at) FROM f8a_job_runs WHERE outcome = 'interrupted'",
        )[0][0],
        timeout=15,
    )
    time.sleep(3)
    stop_ticking(client, jobs)
    settle(database_url)
    interrupted = history(database_url, "interrupted")
    print(
        f"kill -9: next run {first_after * 1000:.0f} ms after, {sum(interrupted.values())} runs in "
        f"flight reported interrupted {reported.timestamp() - killed:.1f} s after (ledger had {in_flight})"
    )
    assert sum(interrupted.values()) >= 1
    # a run is executed, or interrupted, never both and never twice
    finished = history(database_url, "executed")
    assert not set(interrupted) & set(finished)
    watcher.drain(2.0)
    assert len({e["event_id"] for e in watcher.named("job.interrupted")}) == sum(
        interrupted.values()
    )
    ran = executions(out)
    assert not [key for key, n in ran.items() if n > 1]
    assert set(ran) <= set(finished) | set(interrupted)


@rabbitmq_only
def test_kills_and_restarts_lose_and_double_nothing(
    cluster: Cluster, watcher: EventWatcher, client: Client, database_url: str, tmp_path: Path
) -> None:
    """3 replicas, 15 jobs of 0.3 s every second and 300 one-shot jobs due over the same 20 s; three times a
    random replica is killed with ``kill -9`` and a new one started. Each scheduled run is fired at most once,
    every periodic run time has a record (executed, missed or interrupted), every one-shot job has exactly
    one, and each recorded outcome was announced once."""
    out = tmp_path / "runs.jsonl"
    replicas = cluster.start(3)
    jobs = create_ticking(client, out, 15, "nap", sleep=0.3)
    start = datetime.now(UTC) + timedelta(seconds=2)
    create_one_shots(client, out, 300, start, timedelta(milliseconds=66))
    rng = random.Random()
    for _ in range(3):
        time.sleep(rng.uniform(2.0, 4.0))
        victim = replicas.pop(rng.randrange(len(replicas)))
        victim.kill()
        replicas += cluster.start(1)
    time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 21)
    stop_ticking(client, jobs)
    eventually(lambda: not query(database_url, "SELECT 1 FROM f8a_jobs"), timeout=60)
    settle(database_url)
    ran = executions(out)
    assert not [key for key, n in ran.items() if n > 1], "a run was fired twice"
    outcomes = history(database_url)
    assert not [key for key, n in outcomes.items() if n > 1], "a run has two records"
    assert set(ran) <= set(outcomes)
    assert sum(1 for job_id, _ in outcomes if job_id.startswith("once-")) == 300
    assert not no_gaps(database_url, jobs, 1.0)
    watcher.drain(2.0)
    announced = {
        e["event_id"]
        for e in watcher.events
        if e["event"] in {"job.executed", "job.missed", "job.interrupted", "job.failed"}
    }
    assert len(announced) == sum(outcomes.values())
    interrupted = history(database_url, "interrupted")
    print(f"kill -9 and restart x3: {len(ran)} runs, {sum(interrupted.values())} interrupted")


def _replica_with_runs(database_url: str, replicas: list[WorkerProcess]) -> WorkerProcess:
    """One of ``replicas`` that has runs in progress right now."""

    def busy() -> WorkerProcess | None:
        workers = [w for (w,) in query(database_url, "SELECT worker FROM f8a_run_ledger")]
        for replica in replicas:
            if any(f":{replica.proc.pid}:" in w for w in workers):
                return replica
        return None

    found = eventually(busy, timeout=10, interval=0.01)
    return found


@rabbitmq_only
def test_rolling_restart_under_steady_firing(
    cluster: Cluster,
    watcher: EventWatcher,
    client: Client,
    database_url: str,
    tmp_path: Path,
) -> None:
    """20 runs a second while each of 3 replicas is replaced in turn (start a new one, SIGTERM the old):
    no run fired twice, no scheduled time without a record."""
    out = tmp_path / "runs.jsonl"
    old = cluster.start(3)
    ticking = create_ticking(client, out, 20)
    time.sleep(3)
    for replica in old:
        cluster.start(1)
        assert replica.terminate() == 0
    time.sleep(3)
    stop_ticking(client, ticking)
    settle(database_url)
    assert_once(out, database_url, watcher)
    assert not no_gaps(database_url, ticking, 1.0)
    assert not history(database_url, "interrupted")  # a clean stop lets its runs finish
    state = client.call("scheduler.state")
    assert len(state["replicas"]) == 3  # the stopped ones left


@rabbitmq_only
def test_a_replica_cut_from_the_database(
    cluster: Cluster,
    watcher: EventWatcher,
    client: Client,
    database_url: str,
    broker_url: str,
    names: Any,
    empty_jobs_dir: Path,
    tmp_path: Path,
) -> None:
    """One of 3 replicas reaches PostgreSQL through a proxy that refuses it for 20 s while 20 jobs fire every
    second: no run fired twice, the others fire meanwhile, and it rejoins afterwards: listed again, and
    firing once the two others have stopped (while they run, whichever passes first claims a second's 20
    due rows, so its share of them is luck)."""
    out = tmp_path / "runs.jsonl"
    proxy = FaultProxy("127.0.0.1", 5432)
    try:
        survivors = cluster.start(2)
        through = database_url.replace(":5432/", f":{proxy.port}/")
        assert through != database_url
        (cut_off,) = cluster.start(
            1, worker_env(through, broker_url, names, empty_jobs_dir, F8A_JOBS_THREADS="8")
        )
        ticking = create_ticking(client, out, 20)
        time.sleep(4)
        proxy.refuse()
        cut = time.time()
        time.sleep(20)
        fired_meanwhile = sum(1 for r in records(out) if cut + 6 < r["at"] < cut + 20)
        proxy.restore()
        eventually(lambda: len(client.call("scheduler.state")["replicas"]) == 3, timeout=20)
        rejoined = time.time()

        def fired_again() -> int:
            mine = [r for r in records(out) if r["pid"] == cut_off.proc.pid]
            return sum(1 for r in mine if r["at"] > rejoined)

        for survivor in survivors:
            assert survivor.terminate() == 0
        back = eventually(fired_again, timeout=20)
        print(f"cut-off replica: first run after rejoining {time.time() - rejoined:.1f}s after")
        stop_ticking(client, ticking)
        settle(database_url)
    finally:
        proxy.close()
    assert_once(out, database_url, watcher)
    print(f"cut-off replica: others fired {fired_meanwhile} runs meanwhile; it fired {back} after")
    assert fired_meanwhile >= 20 * 10  # the survivors kept firing (most of the 14 s window)
    assert back > 0  # it rejoined and fires again


@rabbitmq_only
def test_a_job_created_through_one_replica_fires_on_another_on_time(
    cluster: Cluster, client: Client, tmp_path: Path
) -> None:
    """Replica A consumes another queue, so B takes each job.create, due 1 s later; B is then stopped
    (SIGSTOP) until the job has fired: A fires it on time, woken by B's notification, though it polls the
    store only every 60 s. The lateness is printed."""
    out = tmp_path / "runs.jsonl"
    env = cluster.env | {"F8A_JOBS_POLL_INTERVAL": "60"}
    (a,) = cluster.start(
        1, env | {"F8A_JOBS_COMMANDS_QUEUE": env["F8A_JOBS_COMMANDS_QUEUE"] + "_a"}
    )
    (b,) = cluster.start(1, env)
    lateness = []
    for n in range(3):
        due = datetime.now(UTC) + timedelta(seconds=1)
        client.call(
            "job.create",
            handler="record",
            kwargs={"path": str(out)},
            job_id=f"soon-{n}",
            when=due.isoformat(),
        )
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            fired = eventually(
                lambda n=n: [r for r in records(out) if r["job_id"] == f"soon-{n}"], timeout=10
            )
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        assert fired[0]["pid"] == a.proc.pid
        lateness.append(fired[0]["at"] - due.timestamp())
        time.sleep(1)
    print(
        "fired by the other replica, late by " + ", ".join(f"{s * 1000:.0f} ms" for s in lateness)
    )


@rabbitmq_only
def test_scheduler_pause_through_one_replica_stops_all(
    cluster: Cluster, client: Client, database_url: str, tmp_path: Path
) -> None:
    """``scheduler.pause`` taken by one of 3 replicas: no run scheduled after the pause was answered fires on
    any replica; ``scheduler.resume`` through any replica starts them all again."""
    out = tmp_path / "runs.jsonl"
    replicas = cluster.start(3)
    ticking = create_ticking(client, out, 10)
    time.sleep(3)
    client.call("scheduler.pause")
    paused = time.time()
    time.sleep(3)
    late = [r for r in records(out) if r["at"] > paused]
    assert not [r for r in late if datetime.fromisoformat(r["scheduled_at"]).timestamp() > paused]
    for replica in replicas:
        eventually(lambda replica=replica: "scheduler paused" in replica.output, timeout=2)
    client.call("scheduler.resume")
    resumed = time.time()
    eventually(lambda: len({r["pid"] for r in records(out) if r["at"] > resumed}) == 3, timeout=10)
    stop_ticking(client, ticking)


def test_a_second_worker_on_one_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    env = clean_env(F8A_JOBS_DATABASE_URL=f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    first = WorkerProcess.run(tmp_path, env)
    try:
        first.wait_for("worker ready")
        second = WorkerProcess.run(tmp_path, env)
        assert second.wait(30) == 78
        assert "another worker is already running on the SQLite store" in second.output
        assert "Traceback" not in second.output
        assert first.terminate() == 0
        third = WorkerProcess.run(tmp_path, env)  # the lock went with the first
        third.wait_for("worker ready")
        third.proc.kill()  # kill -9 does not leave the file locked either
        third.wait(10)
        fourth = WorkerProcess.run(tmp_path, env)
        fourth.wait_for("worker ready")
        assert fourth.terminate() == 0
    finally:
        first.stop()
