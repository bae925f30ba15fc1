"""job.list's filters (state, handler, job id prefix, failing) and runs.summary, over RabbitMQ on PostgreSQL,
and on the unit layer's SQLite: each filter picks exactly the jobs it names, pages with ``next`` to the end,
and says ``filtered``; runs.summary counts the window's runs by outcome and how late they started."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.persistence import last_runs
from f8a_jobs_worker.worker import Worker
from tests.helpers import sink_of

LATER = "2099-01-01T00:00:00Z"


def all_pages(client: Client, **args: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Every job id the filter matches, read page by page with next; and each page's result."""
    ids, pages, after = [], [], None
    while True:
        page = client.call("job.list", limit=3, **args, **({"after": after} if after else {}))
        pages.append(page)
        ids += [job["job_id"] for job in page["jobs"]]
        if "next" not in page:
            return ids, pages
        after = page["next"]


def populate(client: Client, worker: Worker) -> None:
    for n in range(5):
        client.call("job.create", handler="noop", job_id=f"team-a-{n}", when=LATER)
    for n in range(2):
        client.call("job.create", handler="noop", job_id=f"team-b-{n}", when=LATER, state="paused")
    client.call("job.create", handler="fail", job_id="team-a-breaks", when=LATER)
    client.call("job.create", handler="fail", job_id="recovers", when=LATER)
    client.call("job.create", handler="noop", job_id="team_a_underscore", when=LATER)
    client.call("job.run_now", job_id="team-a-breaks")
    sink_of(worker).wait_for("job.failed", "team-a-breaks")
    client.call("job.run_now", job_id="recovers")
    sink_of(worker).wait_for("job.failed", "recovers")
    # the same job runs again and succeeds: no longer failing
    client.call("job.create", handler="noop", job_id="recovers", when=LATER, replace=True)
    client.call("job.run_now", job_id="recovers")
    sink_of(worker).wait_for("job.executed", "recovers")


def check_filters(client: Client) -> None:
    assert all_pages(client, prefix="team-a-")[0] == [
        "team-a-0",
        "team-a-1",
        "team-a-2",
        "team-a-3",
        "team-a-4",
        "team-a-breaks",
    ]  # "_" and "%" are literal characters of a prefix, not patterns
    assert all_pages(client, prefix="team_a")[0] == ["team_a_underscore"]
    assert all_pages(client, prefix="TEAM")[0] == []  # case-sensitive
    assert all_pages(client, state="paused")[0] == ["team-b-0", "team-b-1"]
    running = all_pages(client, state="running")[0]
    assert "team-b-0" not in running and len(running) == 8
    assert all_pages(client, handler="fail")[0] == ["team-a-breaks"]  # recovers is noop now
    assert all_pages(client, failing=True)[0] == ["team-a-breaks"]
    ids, pages = all_pages(client, prefix="team-", state="paused")
    assert ids == ["team-b-0", "team-b-1"]
    assert all(page["filtered"] is True and page["jobs_count"] == 10 for page in pages)
    assert "filtered" not in client.call("job.list", limit=1)
    with pytest.raises(ValidationFailed, match="not failure records"):
        client.call("job.list", job_type="failed", failing=True)


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_filters_pick_exactly_their_jobs_on_postgresql(
    messaging_worker: Callable[..., Worker], client: Client
) -> None:
    populate(client, messaging_worker())
    check_filters(client)


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_runs_summary_counts_the_window_by_outcome_and_lateness(
    messaging_worker: Callable[..., Worker], client: Client
) -> None:
    worker = messaging_worker()
    populate(client, worker)
    summary = client.call("runs.summary", window_s=600)
    assert summary["outcomes"] == {"executed": 1, "failed": 2, "missed": 0, "interrupted": 0}
    lateness = summary["lateness"]
    assert lateness["count"] == 3 and lateness["buckets"][-1] == {"le_ms": None, "count": 3}
    counts = [bucket["count"] for bucket in lateness["buckets"]]
    assert counts == sorted(counts)  # cumulative
    assert lateness["max_ms"] is not None and lateness["max_ms"] >= 0


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_a_later_success_clears_failing_and_a_gone_job_gets_no_row(
    messaging_worker: Callable[..., Worker], client: Client
) -> None:
    worker = messaging_worker()
    client.call("job.create", handler="noop", job_id="flaky", when=LATER)

    def record(outcome: str, job_id: str = "flaky") -> list[str]:
        with worker.transactions.begin() as uow:
            last_runs.record(
                uow, [{"job_id": job_id, "outcome": outcome, "finished_at": uow.now()}]
            )
        return [job["job_id"] for job in client.call("job.list", failing=True)["jobs"]]

    assert record("failed") == ["flaky"]
    assert record("missed") == ["flaky"]  # a run that did not run leaves the last one
    assert record("executed") == []
    assert record("failed", job_id="never-stored") == []
    with worker.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT job_id FROM f8a_last_runs")).scalars().all()
    assert rows == ["flaky"]
    client.call("job.delete", job_id="flaky")
    with worker.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM f8a_last_runs")).scalar() == 0


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_the_cli_lists_with_the_filters(
    messaging_worker: Callable[..., Worker], client: Client, run_cli: Any
) -> None:
    populate(client, messaging_worker())
    listed = run_cli("jobs", "list", "--state", "paused", "--prefix", "team-b", "--json")
    assert listed.exit_code == 0, listed.output
    found = json.loads(listed.output)
    assert [job["job_id"] for job in found["jobs"]] == ["team-b-0", "team-b-1"]
    failing = run_cli("jobs", "list", "--failing")
    assert "team-a-breaks" in failing.output and "team-a-0" not in failing.output
