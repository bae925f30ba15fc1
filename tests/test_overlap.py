"""Overlap policies with a slow handler (a run longer than the interval), from the run history of a real
PostgreSQL store: skip never overlaps and records the skipped runs missed; buffer_one runs the kept run as
soon as the previous one ends; allow overlaps up to its limit."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime
from typing import Any

import pytest

from f8a_jobs_worker.errors import ValidationFailed
from tests.helpers import eventually


def history(worker, job_id: str) -> list[dict[str, Any]]:
    return list(reversed(worker.service.job_history(job_id, limit=1000)["runs"]))


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def executed(runs: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
    """(scheduled, started, finished) of the executed runs, by start."""
    return sorted(
        (at(r["scheduled_at"]), at(r["started_at"]), at(r["finished_at"]))
        for r in runs
        if r["outcome"] == "executed"
    )


def most_at_once(spans: list[tuple[float, float, float]]) -> int:
    moments = sorted([(s, 1) for _, s, _ in spans] + [(f, -1) for _, _, f in spans])
    running = peak = 0
    for _, step in moments:
        running += step
        peak = max(peak, running)
    return peak


def run_for(make_worker, seconds: float, sleep: float, **options: Any) -> list[dict[str, Any]]:
    worker = make_worker(threads=6)
    worker.service.create_job(
        "sleep", {"seconds": sleep}, job_id="slow", periodically="1", **options
    )
    time.sleep(seconds)
    worker.service.pause_job("slow")
    eventually(lambda: in_progress(worker) == 0, timeout=15)
    return history(worker, "slow")


def in_progress(worker) -> int:
    with worker.transactions.begin() as uow:
        return int(worker.ledger.running(uow))


def test_skip_never_overlaps_and_records_the_skipped_runs(make_worker) -> None:
    runs = run_for(make_worker, 7, 2.5)
    spans = executed(runs)
    assert len(spans) >= 2
    assert most_at_once(spans) == 1
    missed = [r for r in runs if r["outcome"] == "missed"]
    assert missed and all(r["error"] == "the previous run was still in progress" for r in missed)


def test_buffer_one_starts_the_kept_run_when_the_previous_one_ends(make_worker) -> None:
    runs = run_for(make_worker, 7, 1.5, overlap="buffer_one")
    spans = executed(runs)
    assert most_at_once(spans) == 1
    assert len(spans) >= 4  # back to back: about 7 / 1.5
    kept = [(s, f) for (s, f) in itertools.pairwise(spans) if f[0] < s[2]]
    assert kept, "no run was kept while another ran"
    for previous, following in kept:  # due during the previous run, started right after it
        assert following[1] - previous[2] < 0.5
    missed = [r for r in runs if r["outcome"] == "missed"]
    assert all("one run waits already" in r["error"] for r in missed)


def test_allow_overlaps_up_to_its_limit(make_worker) -> None:
    runs = run_for(make_worker, 6, 2.5, overlap="allow", overlap_limit=2)
    spans = executed(runs)
    assert most_at_once(spans) == 2
    missed = [r for r in runs if r["outcome"] == "missed"]
    assert missed and all(r["error"].startswith("overlap allow: 2 runs") for r in missed)


def test_overlap_options_are_checked_and_shown(make_worker) -> None:
    worker = make_worker()
    view = worker.service.create_job("noop", overlap="allow", when="2099-01-01")["job"]
    assert (view["overlap"], view["overlap_limit"]) == ("allow", 10)
    for bad in (
        {"overlap": "queue"},
        {"overlap": "skip", "overlap_limit": 3},
        {"overlap": "allow", "overlap_limit": 1},
        {"overlap": "allow", "overlap_limit": 101},
    ):
        with pytest.raises(ValidationFailed):
            worker.service.create_job("noop", **bad)


def test_a_buffer_one_run_ending_while_the_worker_stops_does_not_hang_the_stop(make_worker) -> None:
    """APScheduler's shutdown holds the job-store lock while it waits for the runs; the run that ends then
    must not wait for that lock to start its kept run (the kept run stays stored instead)."""
    worker = make_worker(threads=4)
    worker.service.create_job(
        "sleep", {"seconds": 1.5}, job_id="slow", periodically="1", overlap="buffer_one"
    )
    eventually(lambda: in_progress(worker) == 1, timeout=15)
    time.sleep(1.2)  # a run in progress and one kept: the running one ends during the stop
    stopping = threading.Thread(target=worker.stop, daemon=True)
    stopping.start()
    stopping.join(30)
    assert not stopping.is_alive(), "the stop hung"
    assert [r["outcome"] for r in history(worker, "slow")][:1] == ["executed"]
