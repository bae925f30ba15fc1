"""Flow runs executed by real Celery worker processes: Selinon flows (the tests' own configuration in
tests/selinon_app) and plain Celery tasks, dispatched by flow jobs through the flow relay. Real RabbitMQ and
PostgreSQL; the tasks record what they received in a table, which is what is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kombu import Connection, Producer

from f8a_jobs_worker.errors import ValidationFailed
from f8a_jobs_worker.filters.demo import create_demo_data
from f8a_jobs_worker.flows.backend import FlowRun
from f8a_jobs_worker.flows.selinon_backend import SelinonBackend
from f8a_jobs_worker.messaging.names import Names
from tests.faults import FaultProxy
from tests.helpers import eventually
from tests.messaging import kombu_connection, read_queue
from tests.process import WorkerProcess, clean_env, worker_env

ROOT = Path(__file__).resolve().parent.parent
APP = Path(__file__).parent / "selinon_app"
NODES = APP / "nodes.yml"
FLOWS = APP / "flows"

BULK = {
    "table": "packages",
    "select": ["packages.name as name", "ecosystems.name as ecosystem"],
    "joins": [{"table": "ecosystems", "on": {"packages.ecosystem_id": "ecosystems.id"}}],
    "where": {"packages.name like": "bulk-%"},
    "order_by": ["packages.name"],
}


class CeleryApp:
    """The tests' Celery application on this test's queues, and its worker processes."""

    def __init__(self, broker_url: str, database_url: str, queue: str, log: Path) -> None:
        self.queue = queue
        self.log = log
        libpq = sa.make_url(database_url).set(drivername="postgresql")
        self.env = {
            **os.environ,
            "F8A_TEST_CELERY_BROKER": broker_url,
            "F8A_TEST_RESULT_BACKEND": "db+"
            + sa.make_url(database_url).render_as_string(hide_password=False),
            "F8A_TEST_QUEUE": queue,
            "F8A_TEST_RECORD_DSN": libpq.render_as_string(hide_password=False),
            "PYTHONPATH": str(ROOT),
        }
        self.engine = sa.create_engine(database_url)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE executed (id bigserial PRIMARY KEY, task_name text, flow_name text,"
                    " task_id text, dispatcher_id text, args jsonb)"
                )
            )
        self.processes: list[subprocess.Popen[bytes]] = []

    def start_worker(self, concurrency: int = 8) -> None:
        queues = ",".join(f"{self.queue}_{kind}" for kind in ("dispatcher", "tasks", "plain"))
        with self.log.open("ab") as out:
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "tests.selinon_app.app",
                        "worker",
                        "-P",
                        "threads",
                        "-c",
                        str(concurrency),
                        "-Q",
                        queues,
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                        "-l",
                        "WARNING",
                    ],
                    env=self.env,
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    def executed(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT task_name, flow_name, task_id, dispatcher_id, args FROM executed ORDER BY id"
                )
            )
            return [dict(row._mapping) for row in rows]

    def wait_executed(self, count: int, timeout: float = 120.0) -> list[dict[str, Any]]:
        """The rows once ``count`` are there and no more arrive for a moment."""

        def enough() -> list[dict[str, Any]] | None:
            rows = self.executed()
            return rows if len(rows) >= count else None

        try:
            eventually(enough, timeout=timeout, interval=0.2)
        except AssertionError:
            raise AssertionError(
                f"{len(self.executed())} of {count} tasks executed; worker log:\n"
                + self.log.read_text()[-3000:]
            ) from None
        time.sleep(1.0)
        return self.executed()

    def close(self) -> None:
        for process in self.processes:
            process.kill()  # nothing a Celery worker holds at the end of a test is worth waiting for
            process.wait(20)
        self.engine.dispose()


@pytest.fixture
def broker_url(rabbitmq_url: str) -> str:
    """Selinon and Celery run on RabbitMQ here (the worker's own commands too)."""
    return rabbitmq_url


@pytest.fixture(autouse=True)
def queue(monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's Celery queue prefix: nodes.yml takes it from the environment, in the worker's Selinon
    configuration as in the Celery worker's."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("F8A_TEST_QUEUE", prefix)
    return prefix


@pytest.fixture
def celery_app(
    rabbitmq_url: str, database_url: str, tmp_path: Path, queue: str
) -> Iterator[CeleryApp]:
    app = CeleryApp(rabbitmq_url, database_url, queue, tmp_path / "celery.log")
    yield app
    app.close()
    with kombu_connection(rabbitmq_url) as conn:
        channel = conn.channel()
        for kind in ("dispatcher", "tasks", "plain"):
            channel.queue_delete(f"{queue}_{kind}")
        channel.close()


@pytest.fixture
def flow_names(names: Names, rabbitmq_url: str) -> Iterator[Names]:
    yield names
    with kombu_connection(rabbitmq_url) as conn:
        channel = conn.channel()
        for queue in (names.flows_relay, names.flows_dead):
            channel.queue_delete(queue)
        channel.close()


@pytest.fixture
def selinon_worker(
    flow_names: Names, make_worker: Callable[..., Any], rabbitmq_url: str, database_url: str
) -> Callable[..., Any]:
    """Workers with the Selinon flow backend; stopped (by make_worker) before the queues are deleted."""
    engine = sa.create_engine(database_url)
    create_demo_data(engine)
    engine.dispose()

    def make(**settings: Any) -> Any:
        values: dict[str, Any] = {
            "messaging": True,
            "broker_url": rabbitmq_url,
            "commands_queue": flow_names.commands,
            "dead_letter_queue": flow_names.dead,
            "events_exchange": flow_names.events,
            "flows_exchange": flow_names.flows,
            "flow_backend": "selinon",
            "selinon_nodes": str(NODES),
            "selinon_flows": str(FLOWS),
        }
        values.update(settings)
        return make_worker(**values)

    return make


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def add_bulk_packages(database_url: str, count: int) -> list[str]:
    engine = sa.create_engine(database_url)
    names = [f"bulk-{i:05d}" for i in range(count)]
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO packages (id, ecosystem_id, name) VALUES (:id, 1, :name)"),
            [{"id": 1000 + i, "name": name} for i, name in enumerate(names)],
        )
    engine.dispose()
    return names


def run_job(client: Any, job_id: str, handler: str, **kwargs: Any) -> dict[str, Any]:
    return client.call("job.create", handler=handler, job_id=job_id, kwargs=kwargs)["job"]


def test_a_filter_job_runs_each_flow_once_on_a_selinon_worker(
    selinon_worker, celery_app: CeleryApp, client, database_url: str
) -> None:
    names = add_bulk_packages(database_url, 200)
    celery_app.start_worker()
    worker = selinon_worker()
    run_job(
        client,
        "bulk",
        "flow_scheduling",
        flow_name="twoTasksFlow",
        flow_arguments=[{"$filter": BULK, "force": True}],
    )
    rows = celery_app.wait_executed(400)
    assert Counter(r["task_name"] for r in rows) == {"FirstTask": 200, "SecondTask": 200}
    first = [r for r in rows if r["task_name"] == "FirstTask"]
    expected = [{"name": n, "ecosystem": "npm", "force": True, "job_id": "bulk"} for n in names]
    assert sorted((r["args"] for r in first), key=lambda a: a["name"]) == expected
    # one flow (dispatcher) per run: its id is the dispatch id and the run's place in the fan-out
    summary = worker.service.job_history("bulk")["runs"][0]["summary"]
    assert summary["dispatched"] == 200
    dispatchers = {r["dispatcher_id"] for r in first}
    assert dispatchers == {f"{summary['dispatch_id']}.{i}" for i in range(200)}
    assert worker.flow_relay.dead_lettered == 0


def test_a_flow_with_a_subflow_gets_the_original_node_args(
    selinon_worker, celery_app: CeleryApp, client
) -> None:
    celery_app.start_worker()
    selinon_worker()
    args = [{"ecosystem": "npm", "name": "serve-static", "version": "1.7.1"}, None]
    run_job(client, "parent", "flow_scheduling", flow_name="parentFlow", flow_arguments=args)
    rows = celery_app.wait_executed(6)
    assert Counter((r["flow_name"], r["task_name"]) for r in rows) == {
        ("parentFlow", "StartTask"): 2,
        ("twoTasksFlow", "FirstTask"): 2,
        ("twoTasksFlow", "SecondTask"): 2,
    }
    # job_id added to every flow's node_args, as the original did; null node_args become just that
    expected = [{**args[0], "job_id": "parent"}, {"job_id": "parent"}]
    for task in ("StartTask", "FirstTask", "SecondTask"):
        received = [r["args"] for r in rows if r["task_name"] == task]
        assert sorted(received, key=canonical) == sorted(expected, key=canonical), task


def test_selective_runs_execute_only_the_named_tasks(
    selinon_worker, celery_app: CeleryApp, client
) -> None:
    celery_app.start_worker()
    selinon_worker()
    node_args = {"ecosystem": "npm", "name": "left-pad", "version": "1.0.0"}
    cases = {
        "only-first": ("twoTasksFlow", ["FirstTask"], False, True),
        "first-and-after": ("twoTasksFlow", ["FirstTask"], True, True),
        "bayesian": ("bayesianFlow", ["GithubTask"], False, True),
        "bayesian-package": ("bayesianPackageFlow", ["PackageGithubTask"], False, True),
        "into-subflow": ("parentFlow", ["FirstTask"], False, True),
    }
    for job_id, (flow, tasks, subsequent, follow) in cases.items():
        run_job(
            client,
            job_id,
            "selective_flow_scheduling",
            flow_name=flow,
            task_names=tasks,
            flow_arguments=[node_args],
            run_subsequent=subsequent,
            follow_subflows=follow,
        )
    expected = {
        "only-first": {"FirstTask"},
        "first-and-after": {"FirstTask", "SecondTask"},
        # the original's additions to selective runs of the bayesian flows
        "bayesian": {"GithubTask", "FinalizeTask", "ResultCollector", "GraphImporterTask"},
        "bayesian-package": {
            "PackageGithubTask",
            "PackageFinalizeTask",
            "PackageResultCollector",
            "PackageGraphImporterTask",
        },
        "into-subflow": {"StartTask", "FirstTask"},
    }
    rows = celery_app.wait_executed(sum(len(tasks) for tasks in expected.values()))
    by_job: dict[str, list[str]] = {}
    for row in rows:
        by_job.setdefault(row["args"]["job_id"], []).append(row["task_name"])
    assert {job: sorted(tasks) for job, tasks in by_job.items()} == {
        job: sorted(tasks) for job, tasks in expected.items()
    }


def test_unknown_flow_and_task_names_are_refused_at_create(selinon_worker, client) -> None:
    selinon_worker()
    cases = [
        ("flow_scheduling", {"flow_name": "noSuchFlow"}, "$.args.kwargs.flow_name", "noSuchFlow"),
        (
            "selective_flow_scheduling",
            {"flow_name": "twoTasksFlow", "task_names": ["NoSuchTask"]},
            "$.args.kwargs.task_names",
            "NoSuchTask",
        ),
        # FirstTask is in parentFlow's sub-flow only: not reachable without following sub-flows
        (
            "selective_flow_scheduling",
            {"flow_name": "parentFlow", "task_names": ["FirstTask"], "follow_subflows": False},
            "$.args.kwargs.task_names",
            "FirstTask",
        ),
    ]
    for handler, kwargs, path, named in cases:
        with pytest.raises(ValidationFailed) as failed:
            client.call("job.create", handler=handler, kwargs=kwargs)
        assert named in failed.value.message
        assert [d["path"] for d in failed.value.details] == [path]
    assert client.call("job.list")["jobs"] == []


def test_a_flow_dropped_from_the_configuration_is_dead_lettered_with_the_reason(
    selinon_worker, celery_app: CeleryApp, client, tmp_path: Path, rabbitmq_url: str, flow_names
) -> None:
    worker = selinon_worker()
    client.call(
        "job.create",
        handler="flow_scheduling",
        job_id="gone",
        kwargs={"flow_name": "oneTaskFlow", "flow_arguments": [{"n": 1}]},
        state="paused",
    )
    worker.stop()
    # the pipeline drops oneTaskFlow; the job stays stored and runs
    reduced = tmp_path / "flows"
    reduced.mkdir()
    text = (FLOWS / "flows.yml").read_text()
    start = text.index("  - name: oneTaskFlow")
    end = text.index("  - name: bayesianFlow")
    (reduced / "flows.yml").write_text(text[:start] + text[end:])
    nodes = tmp_path / "nodes.yml"
    nodes.write_text(NODES.read_text().replace("  - oneTaskFlow\n", ""))
    selinon_worker(selinon_nodes=str(nodes), selinon_flows=str(reduced))
    client.call("job.run_now", job_id="gone")

    def listed() -> list[dict[str, Any]]:
        shown = _cli(_cli_env(rabbitmq_url, flow_names), "dlq", "list", "--flows", "--json")
        assert shown.returncode == 0, shown.stderr
        return list(json.loads(shown.stdout))

    rows = eventually(listed, timeout=20, interval=0.5)
    assert [row["reason"] for row in rows] == ["unknown_flow"]  # listing leaves them there
    dead = read_queue(rabbitmq_url, flow_names.flows_dead, 1)
    assert len(dead) == 1
    headers = dead[0].headers
    assert headers["x-f8a-reason"] == "unknown_flow"
    assert "oneTaskFlow" in headers["x-f8a-error"]
    assert json.loads(dead[0].body)["node_args"] == {"n": 1}


def test_the_plain_celery_backend_sends_tasks_with_the_node_args_as_kwargs(
    selinon_worker, celery_app: CeleryApp, client
) -> None:
    celery_app.start_worker()
    selinon_worker(
        flow_backend="celery",
        celery_task_names="recordFlow=pipeline.record",
        celery_queue=f"{celery_app.queue}_plain",
    )
    args = [{"ecosystem": "npm", "name": "left-pad"}, {"ecosystem": "pypi", "name": "flask"}]
    run_job(client, "plain", "flow_scheduling", flow_name="recordFlow", flow_arguments=args)
    rows = celery_app.wait_executed(2)
    assert [r["task_name"] for r in rows] == ["pipeline.record"] * 2
    assert sorted((r["args"] for r in rows), key=canonical) == sorted(args, key=canonical)
    assert {r["task_id"].rsplit(".", 1)[1] for r in rows} == {"0", "1"}


@pytest.mark.parametrize(
    ("backend", "count"),
    [
        # 5,000 plain Celery tasks; Selinon runs three Celery tasks per flow, so fewer flows there
        ("celery", 5000),
        ("selinon", 300),
    ],
)
def test_no_run_is_lost_when_the_celery_broker_is_cut_mid_fan_out(
    selinon_worker,
    celery_app: CeleryApp,
    client,
    database_url: str,
    rabbitmq_url: str,
    backend: str,
    count: int,
) -> None:
    add_bulk_packages(database_url, count)
    proxy = FaultProxy("127.0.0.1", 5672)
    # batches of 50: the cut lands inside the fan-out, between the Celery broker's confirms
    settings: dict[str, Any] = {"flow_backend": backend, "flow_relay_prefetch": 50}
    if backend == "celery":
        settings.update(
            celery_task_names="bulkFlow=pipeline.record", celery_queue=f"{celery_app.queue}_plain"
        )
    try:
        worker = selinon_worker(
            celery_broker_url=rabbitmq_url.replace(":5672/", f":{proxy.port}/"), **settings
        )
        run_job(
            client,
            "cut",
            "flow_scheduling",
            flow_name="bulkFlow" if backend == "celery" else "oneTaskFlow",
            flow_arguments=[{"$filter": BULK}],
        )
        eventually(lambda: worker.flow_relay.relayed >= 100, timeout=60, interval=0.005)
        proxy.cut()
        proxy.refuse()
        relayed_at_cut = worker.flow_relay.relayed
        time.sleep(3)
        proxy.restore()
        celery_app.start_worker()
        rows = celery_app.wait_executed(count, timeout=240)
    finally:
        proxy.close()
    assert relayed_at_cut < count, "the cut came after the fan-out: nothing was tested"
    assert worker.flow_relay.sessions >= 2  # the relay lost the Celery broker and came back
    received = Counter(r["args"]["name"] for r in rows)
    assert set(received) == {f"bulk-{i:05d}" for i in range(count)}  # none lost
    # a run sent twice (confirmed, then the cut before its acknowledgement) keeps its task id
    ids = Counter(r["dispatcher_id"] or r["task_id"] for r in rows)
    assert len(ids) == count
    print(
        f"{backend}: cut after {relayed_at_cut} of {count} runs relayed; "
        f"{sum(ids.values()) - count} executed twice, with the same task id"
    )


def test_the_dispatcher_message_is_the_one_selinon_run_flow_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The private part used (compute_selective_run, Dispatcher's kwargs): checked against the public
    run_flow/run_flow_selective on every Selinon release in the bounded series."""
    import selinon

    monkeypatch.setenv("F8A_TEST_QUEUE", "same")
    backend = SelinonBackend(NODES, sorted(FLOWS.glob("*.yml")))
    backend.app.conf.broker_url = "memory://"
    run = FlowRun(
        "parentFlow",
        {"a": 1},
        "job",
        "d",
        0,
        ("FirstTask",),
        run_subsequent=True,
        follow_subflows=True,
    )
    node_args = {"a": 1, "job_id": "job"}

    def sent(action: Callable[[Any], None]) -> dict[str, Any]:
        with Connection("memory://") as conn:
            queue = conn.SimpleQueue("same_dispatcher")
            action(Producer(conn.default_channel))
            message = queue.get(timeout=5)
            body = {"headers": message.headers, "kwargs": message.payload[1]}
            message.ack()
            queue.close()
        return body

    ours = sent(lambda producer: backend.send(run, producer))

    def theirs(_producer: Any) -> None:  # run_flow publishes through the app's own (memory) broker
        selinon.run_flow_selective("parentFlow", ["FirstTask"], node_args, True, True)

    reference = sent(theirs)
    assert ours["kwargs"] == reference["kwargs"]
    assert ours["headers"]["task"] == reference["headers"]["task"] == "selinon.Dispatcher"
    assert ours["headers"]["id"] == "d.0"


def test_a_configuration_whose_task_code_is_not_installed_here_is_enough_to_dispatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker reads the pipeline's Selinon configuration without the pipeline's code (Selinon imports
    every task class it names): names and graph are all that dispatching needs."""
    nodes = tmp_path / "nodes.yml"
    nodes.write_text(
        "tasks:\n"
        "  - name: Fetch\n    import: reviewer_pipeline.tasks.fetch\n"
        "  - name: Store\n    import: reviewer_pipeline.tasks.store\n    classname: StoreTask\n"
        "flows:\n  - ingestFlow\n"
    )
    flows = tmp_path / "flows.yml"
    flows.write_text(
        "flow-definitions:\n  - name: ingestFlow\n    queue: ingest_dispatcher\n    edges:\n"
        "      - from:\n        to: Fetch\n      - from: Fetch\n        to: Store\n"
    )
    backend = SelinonBackend(nodes, [flows])
    assert not any(name.startswith("reviewer_pipeline") for name in sys.modules)
    assert backend.problems("ingestFlow", None, True, False) == []
    assert backend.problems("ingestFlow", ["Store"], True, False) == []
    assert backend.problems("ingestFlow", ["Load"], True, False) == [
        ("task_names", "unknown Selinon task 'Load'")
    ]
    with Connection("memory://") as conn:
        queue = conn.SimpleQueue("ingest_dispatcher")
        backend.send(FlowRun("ingestFlow", {"x": 1}, "j", "d", 3), Producer(conn.default_channel))
        message = queue.get(timeout=5)
        assert message.headers["id"] == "d.3"
        assert message.payload[1] == {
            "flow_name": "ingestFlow",
            "node_args": {"x": 1, "job_id": "j"},
        }
        message.ack()
        queue.close()


def test_the_documented_example_runs_from_a_default_job_to_selinon_tasks(
    flow_names: Names, rabbitmq_url: str, database_url: str, tmp_path: Path
) -> None:
    """README's "Flows on Selinon or Celery": the example pipeline of docs/examples/selinon and its default
    job with a $filter, a Celery worker and `f8a-jobs-worker run` started as the README says (processes of
    their own: Selinon's configuration is per process); the tasks print what they received."""
    example = ROOT / "docs" / "examples" / "selinon"
    engine = sa.create_engine(database_url)
    create_demo_data(engine)
    engine.dispose()
    log = tmp_path / "celery.log"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": rabbitmq_url,
        "CELERY_RESULT_BACKEND": "db+"
        + sa.make_url(database_url).render_as_string(hide_password=False),
    }
    with log.open("ab") as out:
        celery = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "app", "worker", "-P", "threads", "-c", "4"],
            cwd=example,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess.run(
        tmp_path,
        worker_env(
            database_url,
            rabbitmq_url,
            flow_names,
            example / "default_jobs",
            F8A_JOBS_FLOW_BACKEND="selinon",
            F8A_JOBS_SELINON_NODES=str(example / "nodes.yml"),
            F8A_JOBS_SELINON_FLOWS=str(example / "flows.yml"),
        ),
    )
    try:
        expected = (
            '{"ecosystem": "npm", "force": true, "job_id": "npm-unfinished-analyses", '
            '"name": "serve-static", "version": "1.8.0"}'
        )
        for task in ("FetchTask", "ReportTask"):
            line = f"analysisFlow/{task} ran with {expected}"
            try:
                eventually(lambda line=line: line in log.read_text(), timeout=60, interval=0.2)
            except AssertionError:
                raise AssertionError(
                    f"no {line!r} in the Celery log:\n{log.read_text()[-3000:]}\n"
                    f"worker:\n{worker.output[-3000:]}"
                ) from None
        assert worker.terminate() == 0
    finally:
        if worker.proc.poll() is None:
            worker.kill()
        celery.kill()
        celery.wait(20)
        with kombu_connection(rabbitmq_url) as conn:
            conn.channel().queue_delete("celery")


def _cli_env(rabbitmq_url: str, names: Names, **settings: str) -> dict[str, str]:
    return clean_env(
        F8A_JOBS_BROKER_URL=rabbitmq_url,
        F8A_JOBS_COMMANDS_QUEUE=names.commands,
        F8A_JOBS_DEAD_LETTER_QUEUE=names.dead,
        F8A_JOBS_EVENTS_EXCHANGE=names.events,
        F8A_JOBS_FLOWS_EXCHANGE=names.flows,
        **settings,
    )


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "f8a_jobs_worker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_flows_check_and_configuration_errors(rabbitmq_url: str, flow_names: Names) -> None:
    selinon = {
        "F8A_JOBS_FLOW_BACKEND": "selinon",
        "F8A_JOBS_SELINON_NODES": str(NODES),
        "F8A_JOBS_SELINON_FLOWS": str(FLOWS),
        "F8A_TEST_QUEUE": "cli",
    }
    env = _cli_env(rabbitmq_url, flow_names, **selinon)
    ok = _cli(env, "flows", "check", "bayesianFlow", "--task", "GithubTask")
    assert (ok.returncode, ok.stdout.strip()) == (0, "ok     bayesianFlow can run on selinon")
    unknown = _cli(env, "flows", "check", "twoTasksFlow", "--task", "NoSuchTask")
    assert unknown.returncode == 1
    assert "unknown Selinon task 'NoSuchTask'" in unknown.stdout
    # a setting that can never work: one line, exit 78, for run and for the relay
    missing = dict(env, F8A_JOBS_SELINON_NODES="")
    for args in (("run",), ("flows", "relay")):
        refused = _cli(missing, *args)
        assert refused.returncode == 78, refused.stderr
        assert refused.stderr.strip().startswith("error: F8A_JOBS_FLOW_BACKEND=selinon needs")
        assert len(refused.stderr.strip().splitlines()) == 1
    absent = _cli(dict(env, F8A_JOBS_SELINON_NODES="/nonexistent/nodes.yml"), "flows", "relay")
    assert absent.returncode == 78
    assert "no Selinon nodes definition at /nonexistent/nodes.yml" in absent.stderr
    plain = _cli(_cli_env(rabbitmq_url, flow_names), "flows", "relay")
    assert plain.returncode == 78
    assert "FLOW_BACKEND is 'exchange'" in plain.stderr


def test_a_relay_process_of_its_own_relays_and_stops_on_sigterm(
    rabbitmq_url: str, flow_names: Names, queue: str, tmp_path: Path
) -> None:
    """`f8a-jobs-worker flows relay` beside the workers: flow runs published to the flows exchange become
    Selinon dispatcher messages with the runs' task ids; SIGTERM stops it cleanly."""
    env = _cli_env(
        rabbitmq_url,
        flow_names,
        F8A_JOBS_FLOW_BACKEND="selinon",
        F8A_JOBS_SELINON_NODES=str(NODES),
        F8A_JOBS_SELINON_FLOWS=str(FLOWS),
        F8A_TEST_QUEUE=queue,
    )
    relay = WorkerProcess(
        [sys.executable, "-m", "f8a_jobs_worker", "flows", "relay"], tmp_path, env, "relay"
    )
    dispatcher = f"{queue}_dispatcher"
    try:
        relay.wait_for("relaying flow runs from")
        with kombu_connection(rabbitmq_url) as conn:
            producer = conn.Producer()
            for index in range(20):
                run = {
                    "flow_name": "oneTaskFlow",
                    "node_args": {"n": index},
                    "job_id": "outside",
                    "dispatch_id": "disp",
                    "run_index": index,
                }
                producer.publish(
                    json.dumps(run).encode(),
                    exchange=flow_names.flows,
                    routing_key="oneTaskFlow",
                    content_type="application/json",
                    content_encoding="utf-8",
                )
        messages = read_queue(rabbitmq_url, dispatcher, 20)
        assert sorted(m.headers["id"] for m in messages) == sorted(f"disp.{i}" for i in range(20))
        assert relay.terminate() == 0
        assert "relayed 20, dead-lettered 0" in relay.output
    finally:
        if relay.proc.poll() is None:
            relay.kill()
        with kombu_connection(rabbitmq_url) as conn:
            conn.channel().queue_delete(dispatcher)


@pytest.mark.parametrize("transport", ["sqs", "embedded"])
def test_the_relay_reads_flow_runs_from_sqs_and_the_embedded_broker(
    make_worker, celery_app: CeleryApp, rabbitmq_url: str, tmp_path: Path, transport: str, request
) -> None:
    """The worker on SQS (moto's server) or the embedded broker, the pipeline's Celery on RabbitMQ: the relay
    reads the flows queue of the worker's broker and sends each run to Celery."""
    url = (
        request.getfixturevalue("sqs_url")
        if transport == "sqs"
        else f"filesystem://{tmp_path / 'broker'}"
    )
    names = Names.with_prefix(f"t{uuid.uuid4().hex[:10]}")
    celery_app.start_worker()
    worker = make_worker(
        messaging=True,
        broker_url=url,
        commands_queue=names.commands,
        dead_letter_queue=names.dead,
        events_exchange=names.events,
        flows_exchange=names.flows,
        flow_backend="celery",
        celery_broker_url=rabbitmq_url,
        celery_task_names="recordFlow=pipeline.record",
        celery_queue=f"{celery_app.queue}_plain",
    )
    args = [{"n": 1}, {"n": 2}, {"n": 3}]
    worker.service.create_job(
        "flow_scheduling", {"flow_name": "recordFlow", "flow_arguments": args}, job_id="elsewhere"
    )
    rows = celery_app.wait_executed(3)
    assert sorted(r["args"]["n"] for r in rows) == [1, 2, 3]
    assert {r["task_id"].rsplit(".", 1)[1] for r in rows} == {"0", "1", "2"}
    eventually(lambda: worker.flow_relay.relayed == 3, timeout=10)
