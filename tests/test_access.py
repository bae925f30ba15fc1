"""Who may do what, against a real RabbitMQ with users of the test's own (made with rabbitmqctl), PostgreSQL,
and moto's SQS: each command from each role allowed or ``forbidden`` as the policy says, refused ones leaving
no trace in the store but a reply, an event and an audit row; forged ``user_id`` refused by the broker itself;
"who did this" answered in the job view, the history, the events and ``audit.list``.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import amqp
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from f8a_jobs_worker.cli.main import cli
from f8a_jobs_worker.client import Client
from f8a_jobs_worker.errors import Forbidden
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.worker import Worker
from tests.messaging import EventWatcher, body_of, publish_raw, read_queue
from tests.process import WorkerProcess, worker_env

ROLES = ("reader", "operator", "admin")
LATER = "2099-01-01T00:00:00Z"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def as_user(url: str, name: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.hostname}:{parts.port}"))


@pytest.fixture(scope="module")
def users(rabbitmq_url: str) -> Iterator[dict[str, tuple[str, str]]]:
    """A broker user per role: role -> (user name, its broker URL)."""
    made: dict[str, tuple[str, str]] = {}
    try:
        for role in (*ROLES, "dashboard"):
            name, password = f"t_{role}_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
            rabbitmqctl("add_user", name, password)
            rabbitmqctl("set_permissions", "-p", "/", name, ".*", ".*", ".*")
            made[role] = (name, as_user(rabbitmq_url, name, password))
        yield made
    finally:
        for name, _ in made.values():
            rabbitmqctl("delete_user", name)


@pytest.fixture
def policy_file(tmp_path: Path, users: dict[str, tuple[str, str]]) -> Path:
    path = tmp_path / "policy.yaml"
    lines = ["principals:"] + [f"  {users[role][0]}: [{role}]" for role in ROLES]
    lines += [f"  {users['dashboard'][0]}: [operator]", "  guest: [admin]"]
    lines += ["forwarders:", f"  - {users['dashboard'][0]}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def worker(messaging_worker: Callable[..., Worker], policy_file: Path, broker_url: str) -> Worker:
    return messaging_worker(policy=str(policy_file))


def client_of(url: str, names: Names, **options: Any) -> Client:
    return Client(url, names=names, timeout=30, **options)


def stored_job(worker: Worker, job_id: str) -> Any:
    with worker.engine.connect() as connection:
        query = sa.text("SELECT id, next_run_time FROM f8a_jobs WHERE id = :id")
        return connection.execute(query, {"id": job_id}).first()


def events_about(worker: Worker, job_id: str) -> int:
    with worker.engine.connect() as connection:
        query = sa.text("SELECT count(*) FROM f8a_outbox WHERE kind = 'event' AND body LIKE :job")
        return int(connection.execute(query, {"job": f'%"job_id": "{job_id}"%'}).scalar_one())


#: command -> (args for a role, the roles that may send it)
MATRIX: dict[str, tuple[Callable[[str], dict[str, Any]], set[str]]] = {
    "job.get": (lambda role: {"job_id": "seed"}, set(ROLES)),
    "job.list": (lambda role: {}, set(ROLES)),
    "job.history": (lambda role: {"job_id": "seed"}, set(ROLES)),
    "scheduler.state": (lambda role: {}, set(ROLES)),
    "schedule.preview": (lambda role: {"cron": "0 3 * * *", "count": 2}, set(ROLES)),
    "job.create": (
        lambda role: {"handler": "noop", "job_id": f"by-{role}", "when": LATER},
        {"operator", "admin"},
    ),
    "job.pause": (lambda role: {"job_id": f"victim-{role}"}, {"operator", "admin"}),
    "job.run_now": (lambda role: {"job_id": f"victim-{role}"}, {"operator", "admin"}),
    "job.delete": (lambda role: {"job_id": f"victim-{role}"}, {"operator", "admin"}),
    "audit.list": (lambda role: {"limit": 5}, {"operator", "admin"}),
    "filter.sql": (lambda role: {"$filter": {"ecosystem": "npm"}}, {"admin"}),
}


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_each_role_gets_what_the_policy_says_and_refusals_change_nothing(
    worker: Worker, users: dict[str, tuple[str, str]], names: Names, rabbitmq_url: str
) -> None:
    with client_of(rabbitmq_url, names) as admin:  # guest is admin here
        admin.call("job.create", handler="noop", job_id="seed", periodically="1 day")
        for role in ROLES:
            admin.call("job.create", handler="noop", job_id=f"victim-{role}", periodically="1 day")
    outcomes: dict[tuple[str, str], str] = {}
    for role in ROLES:
        with client_of(users[role][1], names) as client:
            for command, (args, allowed) in MATRIX.items():
                reply = client.request(command, args(role))
                code = "ok" if reply["ok"] else reply["error"]["code"]
                outcomes[role, command] = code
                assert (code == "forbidden") == (role not in allowed), (role, command, reply)
    # the reader's refused writes left no trace in the store: no job, no change, no event
    assert stored_job(worker, "by-reader") is None
    assert stored_job(worker, "victim-reader").next_run_time is not None
    assert events_about(worker, "by-reader") == 0
    assert stored_job(worker, "by-operator") is not None
    assert stored_job(worker, "victim-operator") is None  # paused, run, then deleted
    with client_of(users["admin"][1], names) as admin:
        refusals = admin.call("audit.list", principal=users["reader"][0], limit=100)["entries"]
    refused = {e["command"] for e in refusals if e["outcome"] == "forbidden"}
    assert refused == {c for c, (_, allowed) in MATRIX.items() if "reader" not in allowed}
    assert all(e["by"]["source"] == "rabbitmq" for e in refusals)
    counted = worker.metrics.refusals.labels(users["reader"][0], "job.create", "enforce")
    assert counted._value.get() == 1


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_a_forged_user_id_is_refused_by_the_broker_itself(
    worker: Worker, users: dict[str, tuple[str, str]], names: Names
) -> None:
    reader_url = users["reader"][1]
    parts = urlsplit(reader_url)
    connection = amqp.Connection(
        f"{parts.hostname}:{parts.port}",
        userid=parts.username,
        password=parts.password,
        confirm_publish=True,
    )
    connection.connect()
    try:
        channel = connection.channel()
        forged = amqp.Message(
            b'{"command": "scheduler.pause"}', user_id=users["admin"][0], reply_to="nowhere"
        )
        with pytest.raises(amqp.exceptions.PreconditionFailed, match="user_id"):
            channel.basic_publish(forged, exchange="", routing_key=names.commands)
    finally:
        connection.collect()
    with client_of(users["reader"][1], names) as reader:
        assert reader.call("scheduler.state")["state"] == "running"


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_a_command_without_user_id_under_a_policy_is_refused_and_kept(
    worker: Worker, names: Names, rabbitmq_url: str
) -> None:
    body = b'{"command": "job.create", "args": {"handler": "noop", "job_id": "anon"}}'
    with client_of(rabbitmq_url, names) as watcher_client:
        reply_to = watcher_client.reply_queue()
        publish_raw(rabbitmq_url, names.commands, body, reply_to=reply_to, correlation_id="anon-1")
        reply = watcher_client.wait_reply("anon-1")
    assert reply["error"]["code"] == "forbidden" and "user_id" in reply["error"]["message"]
    (dead,) = read_queue(rabbitmq_url, names.dead, 1)
    assert body_of(dead) == body and dead.headers["x-f8a-reason"] == "forbidden"
    assert stored_job(worker, "anon") is None


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_who_did_what_is_in_the_view_the_history_the_events_and_the_audit(
    worker: Worker,
    users: dict[str, tuple[str, str]],
    names: Names,
    watcher: EventWatcher,
    broker_url: str,
) -> None:
    operator, dashboard = users["operator"], users["dashboard"]
    with client_of(operator[1], names) as client:
        client.call("job.create", handler="noop", job_id="audited", when=LATER)
    with client_of(dashboard[1], names, on_behalf_of="carol@example.com") as ui:
        ui.call("job.pause", job_id="audited")
        ui.call("job.run_now", job_id="audited")
    (executed,) = watcher.wait_for("job.executed", "audited")
    by_ui = {"principal": dashboard[0], "source": "rabbitmq", "on_behalf_of": "carol@example.com"}
    assert executed["started_by"] == by_ui
    (created,) = watcher.wait_for("job.created", "audited")
    assert created["by"] == {"principal": operator[0], "source": "rabbitmq"}
    (paused,) = watcher.wait_for("job.paused", "audited")
    assert paused["by"] == by_ui
    with client_of(operator[1], names) as client:
        job = client.call("job.get", job_id="audited")["job"]
        history = client.call("job.history", job_id="audited")["runs"]
    assert job["created_by"] == {"principal": operator[0], "source": "rabbitmq"}
    assert job["state_changed_by"] == by_ui and job["state"] == "paused"
    assert [run["started_by"] for run in history] == [by_ui]

    env = {
        "F8A_JOBS_BROKER_URL": operator[1],
        "F8A_JOBS_COMMANDS_QUEUE": names.commands,
    }
    listed = CliRunner().invoke(cli, ["audit", "list", "--job-id", "audited"], env=env)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert "job.run_now" in lines[1] and "for carol@example.com" in lines[1]
    assert "job.create" in lines[3] and operator[0] in lines[3]
    env["F8A_JOBS_BROKER_URL"] = users["reader"][1]
    refused = CliRunner().invoke(cli, ["jobs", "pause", "audited"], env=env)
    assert refused.exit_code == 77 and "forbidden" in refused.output


@pytest.mark.parametrize("broker_url", ["sqs"], indirect=True)
def test_on_sqs_the_principal_is_the_sender_id(
    messaging_worker: Callable[..., Worker], tmp_path: Path, names: Names, sqs_url: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("principals:\n  'AIDA*': reader\n")  # moto gives every sender one SenderId
    messaging_worker(policy=str(policy))
    with client_of(sqs_url, names) as client:
        client.call("job.list")
        with pytest.raises(Forbidden, match=r"may not send job\.create"):
            client.call("job.create", handler="noop", job_id="x", when=LATER)
    with client_of(sqs_url, names) as client:
        policy.write_text("principals:\n  'AIDA*': operator\n")
        entries = client.call("scheduler.state")  # still a reader: no reload yet
    assert entries["access"]["policy"] == "enforce"


def test_a_policy_that_does_not_parse_stops_run_with_one_line(
    tmp_path: Path, database_url: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("principals:\n  alice: [superuser]\n")
    env = {"F8A_JOBS_POLICY": str(policy), "F8A_JOBS_DATABASE_URL": database_url}
    result = CliRunner().invoke(cli, ["run"], env=env)
    assert result.exit_code == 78
    assert result.output.strip().splitlines() == [
        f"error: policy {policy}: principals: 'alice' has unknown role 'superuser'; "
        "known: admin, operator, reader"
    ]


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_idempotency_holds_under_a_policy_and_a_refusal_reveals_no_stored_reply(
    worker: Worker, users: dict[str, tuple[str, str]], names: Names
) -> None:
    args = {"handler": "noop", "job_id": "once", "when": LATER}
    with client_of(users["operator"][1], names) as operator:
        first = operator.request("job.create", args, command_id="c-once")
        again = operator.request("job.create", args, command_id="c-once")
    assert first == again and first["ok"]
    with client_of(users["reader"][1], names) as reader:
        for _ in range(2):  # refused, and refused again: never the operator's stored reply
            reply = reader.request("job.create", args, command_id="c-once")
            assert reply["error"]["code"] == "forbidden"


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_sighup_reloads_the_policy_of_a_running_worker(
    users: dict[str, tuple[str, str]],
    database_url: str,
    broker_url: str,
    names: Names,
    empty_jobs_dir: Path,
    tmp_path: Path,
) -> None:
    reader = users["reader"]
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"principals:\n  {reader[0]}: reader\n")
    env = worker_env(database_url, broker_url, names, empty_jobs_dir, F8A_JOBS_POLICY=str(policy))
    process = WorkerProcess.run(tmp_path, env)
    try:
        process.wait_for("consuming commands")
        assert f"policy {policy} in force, mode enforce" in process.output
        with client_of(reader[1], names) as client:
            assert client.request("scheduler.pause")["error"]["code"] == "forbidden"
            policy.write_text(f"principals:\n  {reader[0]}: operator\n")
            process.proc.send_signal(signal.SIGHUP)
            process.wait_for("policy reloaded")
            assert client.call("scheduler.pause") == {"state": "paused"}
            policy.write_text("principals: [not, a, mapping]\n")
            process.proc.send_signal(signal.SIGHUP)
            process.wait_for("policy not reloaded, the one in force stays")
            assert client.call("scheduler.resume") == {"state": "running"}
        assert process.terminate() == 0
    finally:
        process.stop()
