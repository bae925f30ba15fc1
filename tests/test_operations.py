"""Metrics, probes and the health command, against real PostgreSQL and RabbitMQ: counts scraped with the
Prometheus text parser after a known sequence of commands and runs; probes that flip when the store or the
broker is cut; `f8a-jobs-worker health` against a worker process."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.errors import JobNotFound, UnknownCommand, UnknownHandler
from tests.faults import FaultProxy
from tests.helpers import eventually
from tests.messaging import EventWatcher
from tests.process import WorkerProcess, worker_env


@pytest.fixture
def broker_url(rabbitmq_url: str) -> str:
    return rabbitmq_url


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as failing:
        return failing.code, failing.read().decode()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_count_what_the_worker_did(
    messaging_worker, client, names, rabbitmq_url: str
) -> None:
    worker = messaging_worker(metrics_port=0, metrics_host="127.0.0.1")
    port = worker.operations.port
    watcher = EventWatcher(rabbitmq_url, names.events, "job.*")
    try:
        for index in range(3):
            client.call("job.create", handler="noop", job_id=f"later-{index}", when="2099-01-01")
        client.call("job.create", handler="noop", job_id="now")
        client.call("job.create", handler="fail", job_id="boom")
        client.call("job.pause", job_id="later-0")
        with pytest.raises(JobNotFound):
            client.call("job.get", job_id="nope")
        with pytest.raises(UnknownHandler):
            client.call("job.create", handler="no_such_handler")
        watcher.wait_for("job.executed", "now")
        watcher.wait_for("job.failed", "boom")
    finally:
        watcher.close()

    def settled() -> dict[Any, float]:
        samples = scrape(port)  # the runs are counted once their outcome committed
        done = value(samples, "f8a_jobs_runs_total", handler="fail", outcome="failed")
        return samples if done == 1 else {}

    samples = eventually(settled, timeout=10)
    commands = {
        (labels, count)
        for (name, labels), count in samples.items()
        if name == "f8a_jobs_commands_total"
    }
    assert commands == {
        ((("command", "job.create"), ("outcome", "ok")), 5.0),
        ((("command", "job.pause"), ("outcome", "ok")), 1.0),
        ((("command", "job.get"), ("outcome", "job_not_found")), 1.0),
        ((("command", "job.create"), ("outcome", "unknown_handler")), 1.0),
    }
    assert value(samples, "f8a_jobs_command_duration_seconds_count", command="job.create") == 6
    assert value(samples, "f8a_jobs_runs_total", handler="noop", outcome="executed") == 1
    assert value(samples, "f8a_jobs_runs_total", handler="fail", outcome="failed") == 1
    assert value(samples, "f8a_jobs_run_duration_seconds_count", handler="noop") == 1
    assert value(samples, "f8a_jobs_run_lateness_seconds_count", handler="fail") == 1
    # stored state, read at the scrape: two one-shots ran and went, three wait (one paused)
    assert value(samples, "f8a_jobs_store_up") == 1
    assert value(samples, "f8a_jobs_jobs", kind="user") == 3
    assert value(samples, "f8a_jobs_jobs", kind="default") == 0
    assert value(samples, "f8a_jobs_jobs_paused") == 1
    assert value(samples, "f8a_jobs_failures") == 1
    assert value(samples, "f8a_jobs_replicas") == 1
    assert value(samples, "f8a_jobs_scheduler_paused") == 0
    assert value(samples, "f8a_jobs_runs_in_progress") == 0
    assert value(samples, "f8a_jobs_consumer_prefetch") == Settings.prefetch
    assert value(samples, "f8a_jobs_consumer_prefetch_in_use") == 0
    assert value(samples, "f8a_jobs_replica_info", replica=worker.replicas.replica_id) == 1
    # an unknown command name is counted under "other": label values stay bounded
    with pytest.raises(UnknownCommand):
        client.call("job.explode")
    assert (
        value(scrape(port), "f8a_jobs_commands_total", command="other", outcome="unknown_command")
        == 1
    )


def test_probes_flip_when_the_store_or_the_broker_is_cut(
    make_worker, names, rabbitmq_url: str, database_url: str
) -> None:
    store = FaultProxy("127.0.0.1", sa.make_url(database_url).port or 5432)
    rabbit = FaultProxy("127.0.0.1", 5672)
    try:
        worker = make_worker(
            messaging=True,
            database_url=sa.make_url(database_url)
            .set(host="127.0.0.1", port=store.port)
            .render_as_string(hide_password=False),
            broker_url=rabbitmq_url.replace(":5672/", f":{rabbit.port}/"),
            commands_queue=names.commands,
            dead_letter_queue=names.dead,
            events_exchange=names.events,
            flows_exchange=names.flows,
            metrics_port=0,
            metrics_host="127.0.0.1",
        )
        base = f"http://127.0.0.1:{worker.operations.port}"

        def ready() -> tuple[int, dict[str, str]]:
            status, body = get(f"{base}/readyz")
            return status, json.loads(body)["checks"]

        eventually(lambda: ready()[0] == 200, timeout=10)
        assert ready()[1] == {"store": "ok", "broker": "ok"}
        store.refuse()
        store.cut()
        _, checks = eventually(lambda: (r := ready())[0] == 503 and r, timeout=15)
        assert checks["store"] != "ok" and checks["broker"] == "ok"
        assert get(f"{base}/livez")[0] == 200  # a store that is down is waited for, not a restart
        store.restore()
        eventually(lambda: ready()[0] == 200, timeout=15)
        rabbit.refuse()
        rabbit.cut()
        _, checks = eventually(lambda: (r := ready())[0] == 503 and r, timeout=15)
        assert checks["broker"] != "ok" and checks["store"] == "ok"
        assert get(f"{base}/livez")[0] == 200
        rabbit.restore()
        eventually(lambda: ready()[0] == 200, timeout=15)
        live = json.loads(get(f"{base}/livez")[1])
        assert live["checks"] == {
            "scheduler": "ok",
            "heartbeat": "ok",
            "backfill": "ok",
            "outbox_relay": "ok",
            "consumer": "ok",
        }
        assert get(f"{base}/nothing")[0] == 404
        worker.stop()
    finally:
        store.close()
        rabbit.close()


def test_the_health_command_reports_a_running_worker(
    rabbitmq_url: str, database_url: str, names, empty_jobs_dir: Path, tmp_path: Path
) -> None:
    port = str(_free_port())
    env = worker_env(
        database_url,
        rabbitmq_url,
        names,
        empty_jobs_dir,
        F8A_JOBS_METRICS_PORT=port,
        F8A_JOBS_METRICS_HOST="127.0.0.1",
    )
    worker = WorkerProcess.run(tmp_path, env)
    try:
        worker.wait_for("metrics and probes on port")
        health = subprocess.run(
            [sys.executable, "-m", "f8a_jobs_worker", "health"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0, health.stdout + health.stderr
        assert health.stdout.splitlines() == [
            "live   ok: scheduler ok, heartbeat ok, backfill ok, outbox_relay ok, consumer ok",
            "ready  ok: store ok, broker ok",
        ]
        assert worker.terminate() == 0
        gone = subprocess.run(
            [sys.executable, "-m", "f8a_jobs_worker", "health", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert gone.returncode == 69
        assert gone.stderr.startswith(f"unavailable: no answer from http://127.0.0.1:{port}")
    finally:
        worker.stop()


def _free_port() -> int:
    from tests.services import free_port

    return free_port()


def test_json_logs_carry_the_ids_as_fields_and_no_secret(
    rabbitmq_url: str, database_url: str, names, empty_jobs_dir: Path, tmp_path: Path
) -> None:
    from f8a_jobs_worker.client import Client

    env = worker_env(database_url, rabbitmq_url, names, empty_jobs_dir, F8A_JOBS_LOG_FORMAT="json")
    worker = WorkerProcess.run(tmp_path, env)
    try:
        worker.wait_for("consuming commands")
        with Client(rabbitmq_url, names=names, timeout=30) as client:
            created = client.call("job.create", handler="noop", job_id="logged")
        worker.wait_for("executed in")
        assert worker.terminate() == 0
    finally:
        worker.stop()
    lines = [json.loads(line) for line in worker.output.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    executed = [line for line in lines if "executed in" in line["message"]]
    assert [(line["job_id"], line["handler"]) for line in executed] == [("logged", "noop")]
    answered = [line for line in lines if line.get("command") == "job.create"]
    assert len(answered) == 1
    assert answered[0]["command_id"] and answered[0]["command_id"] in answered[0]["message"]
    assert created["job"]["job_id"] == "logged"
    assert "guest:guest" not in worker.output  # the broker URL's password is masked
