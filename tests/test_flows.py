"""Flow dispatch: flow_scheduling and selective_flow_scheduling jobs publish one confirmed flow-run message
per run, observed by an independent consumer; $filter arguments re-query at every run."""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.filters import analytics_tables as tables
from f8a_jobs_worker.filters.demo import create_demo_data
from f8a_jobs_worker.validation import file_validator, violations
from tests.messaging import EventWatcher, kombu_connection

UNFINISHED = {
    "table": "analyses",
    "select": [
        "packages.name as name",
        "ecosystems.name as ecosystem",
        "versions.identifier as version",
    ],
    "joins": [
        {"on": {"analyses.version_id": "versions.id"}, "table": "versions"},
        {"on": {"versions.package_id": "packages.id"}, "table": "packages"},
        {"on": {"ecosystems.id": "packages.ecosystem_id"}, "table": "ecosystems"},
    ],
    "where": {"analyses.finished_at": None},
}


@pytest.fixture
def analytics(database_url: str):
    engine = sa.create_engine(database_url)
    create_demo_data(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def flows(broker_url: str, names):
    watcher = EventWatcher(broker_url, names.flows)
    yield watcher
    watcher.close()


def wait_flows(watcher: EventWatcher, count: int, timeout: float = 60) -> list[dict]:
    watcher.drain(0.1)
    deadline = timeout
    while len(watcher.events) < count and deadline > 0:
        watcher.drain(0.5)
        deadline -= 0.5
    assert len(watcher.events) >= count, f"{len(watcher.events)} of {count} flow runs"
    for message in watcher.events:
        assert violations(file_validator("flow.json"), message) == []
    return watcher.events


def test_literal_flow_arguments(messaging_worker, client, flows: EventWatcher, analytics) -> None:
    worker = messaging_worker()
    args = [
        {"ecosystem": "npm", "name": "serve-static", "version": "1.7.1", "force": True},
        {"ecosystem": "maven", "name": "net.iharder:base64", "version": "2.3.9", "force": True},
        None,
    ]
    job = client.call(
        "job.create",
        handler="flow_scheduling",
        job_id="lit",
        kwargs={"flow_name": "bayesianFlow", "flow_arguments": args},
    )["job"]
    runs = wait_flows(flows, 3)
    assert [r["node_args"] for r in runs] == args
    assert {r["flow_name"] for r in runs} == {"bayesianFlow"}
    assert {r["job_id"] for r in runs} == {job["job_id"]}
    assert len({r["dispatch_id"] for r in runs}) == 1
    executed = [e for e in worker.service.job_history("lit")["runs"] if e["outcome"] == "executed"]
    assert executed[0]["summary"]["dispatched"] == 3


def test_filter_arguments_expand_per_row_and_requery_each_run(
    messaging_worker, client, flows, analytics
) -> None:
    worker = messaging_worker()
    client.call(
        "job.create",
        handler="selective_flow_scheduling",
        job_id="sel",
        periodically="1 day",
        when="2099-01-01T00:00:00Z",
        kwargs={
            "flow_name": "bayesianFlow",
            "task_names": ["github_details"],
            "flow_arguments": [{"$filter": UNFINISHED, "force": True}],
        },
    )
    client.call("job.run_now", job_id="sel")
    first = wait_flows(flows, 3)
    assert Counter((r["node_args"]["name"], r["node_args"]["version"]) for r in first) == Counter(
        {
            ("serve-static", "1.8.0"): 1,
            ("net.iharder:base64", "2.3.9"): 1,
            ("junit:junit", "4.12"): 1,
        }
    )
    assert all(r["node_args"]["force"] is True for r in first)
    assert all(
        r["task_names"] == ["github_details"]
        and r["run_subsequent"] is False
        and r["follow_subflows"] is True
        for r in first
    )
    with analytics.begin() as connection:  # one more unfinished analysis: the next run finds it
        connection.execute(tables.analyses.insert().values(id=100, version_id=7, started_at=None))
    flows.events.clear()
    client.call("job.run_now", job_id="sel")
    second = wait_flows(flows, 4)
    assert ("flask", "3.0.0") in {
        (r["node_args"]["name"], r["node_args"]["version"]) for r in second
    }
    stored = worker.service.get_job("sel")["job"]["kwargs"]["flow_arguments"][0]
    assert stored == {"$filter": UNFINISHED, "force": True}  # the stored job is never mutated


def test_a_bad_filter_fails_the_run_with_its_path(
    messaging_worker, client, watcher, analytics
) -> None:
    messaging_worker()
    client.call(
        "job.create",
        handler="flow_scheduling",
        job_id="bad",
        kwargs={"flow_name": "f", "flow_arguments": [{"$filter": {"table": "pg_user"}}]},
    )
    failed = watcher.wait_for("job.failed", "bad")[0]
    assert "FilterError" in failed["error"]
    assert "$.kwargs.flow_arguments[0].$filter.table" in failed["error"]


@pytest.fixture
def fan_out_rows(analytics, broker_url: str) -> int:
    count = 10_000 if broker_url.startswith("amqp") else 300
    with analytics.begin() as connection:
        connection.execute(
            tables.versions.insert(),
            [
                {"id": 1000 + n, "package_id": 1, "identifier": f"0.0.{n}", "synced2graph": False}
                for n in range(count)
            ],
        )
    return count


def test_fan_out_is_observed_exactly_once(
    messaging_worker, client, flows, fan_out_rows: int
) -> None:
    worker = messaging_worker()
    query = {
        "table": "versions",
        "select": ["versions.identifier as version"],
        "where": {"versions.id >=": 1000},
    }
    client.call(
        "job.create",
        handler="flow_scheduling",
        job_id="fan",
        kwargs={
            "flow_name": "bayesianFlow",
            "flow_arguments": [{"$filter": query, "ecosystem": "npm", "name": "serve-static"}],
        },
    )
    runs = wait_flows(flows, fan_out_rows, timeout=180)
    flows.drain(1.0)
    versions = Counter(r["node_args"]["version"] for r in flows.events)
    assert len(versions) == fan_out_rows and set(versions.values()) == {1}
    summary = [r for r in worker.service.job_history("fan")["runs"] if r["outcome"] == "executed"]
    assert summary and summary[0]["summary"]["dispatched"] == fan_out_rows
    assert len(runs) == fan_out_rows


def test_a_broker_failure_mid_fan_out_says_how_many_were_dispatched(
    rabbitmq_url: str, names
) -> None:
    from f8a_jobs_worker.errors import DispatchFailed
    from f8a_jobs_worker.flows.fanout import FlowDispatcher
    from f8a_jobs_worker.messaging.connect import transport_for

    def runs():
        for n in range(2000):
            if n == 1200:  # the exchange disappears under the running fan-out
                with kombu_connection(rabbitmq_url) as other:
                    other.channel().exchange_delete(names.flows)
            yield (
                "bayesianFlow",
                {
                    "flow_name": "bayesianFlow",
                    "node_args": {"n": n},
                    "job_id": "j",
                    "dispatch_id": "d",
                },
            )

    with pytest.raises(DispatchFailed) as caught:
        transports = partial(transport_for, rabbitmq_url, 0)
        FlowDispatcher(transports, names.flows, window=500).dispatch(runs())
    assert 1000 <= caught.value.dispatched < 2000
    assert f"{caught.value.dispatched} flow runs were dispatched and confirmed" in str(caught.value)
