"""Replica membership in one process: heartbeats by the database's clock, take-over of a lapsed replica, the
fence that keeps a stale replica from starting runs, max_instances across replicas. Real PostgreSQL; the
process-level behaviour (kill -9, cuts, rolling restarts) is in test_replicas.py."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from f8a_jobs_worker.errors import JobBusy
from f8a_jobs_worker.persistence.tables import replicas, run_ledger
from tests.helpers import eventually, records, sink_of


def _age_heartbeat(worker, seconds: float) -> None:
    """Make ``worker``'s last heartbeat ``seconds`` old, as if it had stopped."""
    with worker.engine.begin() as connection:
        connection.execute(
            replicas.update()
            .where(replicas.c.replica_id == worker.replicas.replica_id)
            .values(heartbeat_at=sa.func.now() - sa.text(f"interval '{seconds} seconds'"))
        )


def test_replicas_see_each_other_and_reap_a_lapsed_one(make_worker) -> None:
    a = make_worker()
    b = make_worker()
    ids = {r["id"] for r in a.service.scheduler_state()["replicas"]}
    assert ids == {a.replicas.replica_id, b.replicas.replica_id}
    b.membership.stop()  # b stops beating (its process is "frozen")
    b.scheduler.pause()  # and firing (its passes would renew the heartbeat)
    _age_heartbeat(b, 10)
    a.membership.beat()
    assert [r["id"] for r in a.service.scheduler_state()["replicas"]] == [a.replicas.replica_id]
    # b comes back: its next heartbeat finds itself gone, registers again and says so
    b.membership.beat()
    assert len(a.service.scheduler_state()["replicas"]) == 2


def test_a_lapsed_replicas_runs_are_reported_by_a_survivor(make_worker, tmp_path: Path) -> None:
    """b has a run in progress when it stops beating; a reports it interrupted (once) and, for a job with
    ``on_interrupt: retry``, runs it again."""
    out = tmp_path / "runs.jsonl"
    a = make_worker()
    b = make_worker()
    a.scheduler.pause()  # only b fires
    a.membership.following = False
    b.service.create_job(
        "sleep", {"seconds": 2.0, "path": str(out)}, job_id="long", on_interrupt="retry"
    )
    eventually(lambda: _ledger_workers(a) == [b.replicas.replica_id])
    b.membership.stop()
    _age_heartbeat(b, 10)
    a.membership.beat()
    sink_of(a).wait_for("job.interrupted", "long")
    a.membership.beat()  # a second survivor's look finds nothing more to report
    assert sink_of(a).names("long").count("job.interrupted") == 1
    eventually(lambda: len(records(out)) == 2, timeout=10)  # b's own run, and a's retry
    assert {r["pid"] for r in records(out)} == {os.getpid()}


def test_a_stale_replica_declines_to_start_runs_and_reports_them(make_worker) -> None:
    worker = make_worker()
    worker.service.create_job("noop", job_id="j", when="2999-01-01T00:00:00+00:00")
    worker.membership.stop()  # nothing renews the heartbeat behind the test's back
    worker.membership.following = False
    worker.scheduler.pause()
    # after any pass in progress has renewed the heartbeat
    with worker.turns:
        worker.replicas._renewed = float("-inf")  # as if the store had been unreachable for seconds
    worker.service.run_job_now("j")
    worker.membership.beat()  # the store answers again
    (event,) = sink_of(worker).wait_for("job.interrupted", "j")
    assert event.fields["on_interrupt"] == "report"
    assert not _ledger_workers(worker)
    assert "job.executed" not in sink_of(worker).names("j")


def test_max_instances_holds_across_replicas(make_worker, tmp_path: Path) -> None:
    """A run of a job in progress on b: run_now through a is job_busy, and a's pass skips its next run
    (recorded as missed)."""
    a = make_worker()
    b = make_worker()
    a.scheduler.pause()
    a.membership.following = False
    b.service.create_job("sleep", {"seconds": 3.0}, job_id="slow", periodically="1")
    eventually(lambda: _ledger_workers(a) == [b.replicas.replica_id])
    try:
        a.service.run_job_now("slow")
        raise AssertionError("job_busy expected")
    except JobBusy:
        pass
    b.scheduler.pause()  # from now on only a fires
    b.membership.following = False
    a.scheduler.resume()
    missed = sink_of(a).wait_for("job.missed", "slow")
    assert "still in progress" in missed[0].fields["reason"]


def _ledger_workers(worker) -> list[str]:
    with worker.engine.connect() as connection:
        return [w for (w,) in connection.execute(sa.select(run_ledger.c.worker))]


def test_heartbeats_use_the_databases_clock(make_worker) -> None:
    worker = make_worker()
    with worker.engine.connect() as connection:
        beat, now = connection.execute(
            sa.select(replicas.c.heartbeat_at, sa.func.now()).where(
                replicas.c.replica_id == worker.replicas.replica_id
            )
        ).one()
    assert abs((now - beat).total_seconds()) < 60
    assert worker.replicas.fresh()
