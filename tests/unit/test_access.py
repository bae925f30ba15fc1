"""Who may do what, on the unit layer: the policy's rules, the order of the checks, signatures, the audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from f8a_jobs_worker.access import policy as policies
from f8a_jobs_worker.access.principal import Principal
from f8a_jobs_worker.access.signing import Key, sign
from f8a_jobs_worker.client import Client
from f8a_jobs_worker.commands.applier import COMMANDS
from f8a_jobs_worker.errors import ConfigError, Forbidden, JobNotFound, ValidationFailed
from f8a_jobs_worker.messaging.memory import MemoryTransport
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.messaging.port import Outgoing
from f8a_jobs_worker.worker import Worker
from tests.helpers import MovableClock, sink_of

POLICY = """
principals:
  alice: admin
  "svc-*": [operator]
  bob: reader
  noop-maker: noop_only
  dashboard: reader
forwarders: [dashboard]
roles:
  noop_only:
    commands: [job.create, job.get]
    handlers: [noop]
"""


def who(name: str) -> Principal:
    return Principal(name, "memory")


def test_roles_give_exactly_their_commands() -> None:
    policy = policies.parse(__import__("yaml").safe_load(POLICY), COMMANDS)
    assert policy.decide(who("bob"), "job.get", {}).allowed
    assert not policy.decide(who("bob"), "job.pause", {}).allowed
    assert policy.decide(who("svc-pipeline"), "job.backfill", {}).allowed
    assert not policy.decide(who("svc-pipeline"), "filter.sql", {}).allowed
    assert policy.decide(who("alice"), "filter.expand", {}).allowed
    assert policy.decide(who("noop-maker"), "job.create", {"handler": "noop"}).allowed
    refused = policy.decide(who("noop-maker"), "job.create", {"handler": "flow_scheduling"})
    assert not refused.allowed and "handler" in refused.reason
    assert "no role" in policy.decide(who("mallory"), "job.get", {}).reason


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("principals: {bob: [wizard]}", "unknown role 'wizard'"),
        ("principals: {bob: reader}\nmode: maybe", "mode 'maybe'"),
        (
            "principals: {bob: r}\nroles: {r: {commands: [job.explode]}}",
            "unknown command 'job.explode'",
        ),
        ("principals: {}", "at least one principal"),
        ("principal: {bob: reader}", "unknown key 'principal'"),
        ("roles: {reader: {commands: [job.get]}}\nprincipals: {bob: reader}", "built in"),
    ],
)
def test_a_policy_that_cannot_be_used_says_why(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        policies.load(str(path), COMMANDS)
    assert problem in raised.value.message and str(path) in raised.value.message


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def as_user(broker_url: str, user: str, **options: object) -> Client:
    name = broker_url.removeprefix("memory://")
    return Client(f"memory://{user}@{name}", Names(), timeout=10, **options)  # type: ignore[arg-type]


def test_refused_commands_have_no_effect_and_are_audited(
    unit_worker: Callable[..., Worker], broker_url: str, policy_file: Path
) -> None:
    worker = unit_worker(policy=str(policy_file))
    with as_user(broker_url, "bob") as bob, as_user(broker_url, "svc-a") as operator:
        with pytest.raises(Forbidden, match=r"'bob' \(reader\) may not send job\.create"):
            bob.call("job.create", handler="noop", job_id="j1", when="2030-04-01T00:00:00Z")
        with pytest.raises(JobNotFound):  # nothing was created
            bob.call("job.get", job_id="j1")
        # the policy is checked before the arguments: a refused principal learns nothing of the schemas
        with pytest.raises(Forbidden):
            bob.call("job.create", nonsense=True)
        with pytest.raises(ValidationFailed):
            operator.call("job.create", nonsense=True)
        operator.call("job.create", handler="noop", job_id="j1", when="2030-04-01T00:00:00Z")
        view = bob.call("job.get", job_id="j1")["job"]
        assert view["created_by"] == {"principal": "svc-a", "source": "memory"}
        entries = operator.call("audit.list")["entries"]
    assert [(e["by"]["principal"], e["command"], e["outcome"]) for e in entries] == [
        ("svc-a", "job.create", "ok"),
        ("svc-a", "job.create", "validation_error"),
        ("bob", "job.create", "forbidden"),
        ("bob", "job.create", "forbidden"),
    ]
    rejected = [e.fields for e in sink_of(worker).wait_for("command.rejected", count=3)]
    assert {e["by"]["principal"] for e in rejected} == {"bob", "svc-a"}
    assert {e["error"]["code"] for e in rejected} == {"forbidden", "validation_error"}


def test_a_forwarder_names_the_person_others_may_not(
    unit_worker: Callable[..., Worker], broker_url: str, policy_file: Path
) -> None:
    unit_worker(policy=str(policy_file))
    with as_user(broker_url, "dashboard", on_behalf_of="carol") as dashboard:
        dashboard.call("job.list")
    with (
        as_user(broker_url, "bob", on_behalf_of="alice") as bob,
        pytest.raises(Forbidden, match="not a trusted forwarder"),
    ):
        bob.call("job.list")
    with as_user(broker_url, "alice") as alice:
        entries = alice.call("audit.list", principal="bob")["entries"]
    assert entries[0]["outcome"] == "forbidden"


def test_log_only_mode_refuses_nothing_and_counts(
    unit_worker: Callable[..., Worker], broker_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("mode: log_only\nprincipals: {bob: reader}\n")
    worker = unit_worker(policy=str(path))
    with as_user(broker_url, "bob") as bob:
        bob.call("scheduler.pause")
        assert bob.call("scheduler.state")["state"] == "paused"
        assert bob.call("scheduler.state")["access"]["policy"] == "log_only"
    counted = worker.metrics.refusals.labels("bob", "scheduler.pause", "log_only")._value.get()
    assert counted == 1


def test_a_policy_reloads_and_a_broken_one_keeps_the_last(
    unit_worker: Callable[..., Worker], broker_url: str, policy_file: Path
) -> None:
    worker = unit_worker(policy=str(policy_file))
    with as_user(broker_url, "bob") as bob:
        with pytest.raises(Forbidden):
            bob.call("scheduler.pause")
        policy_file.write_text("principals: {bob: operator}\n")
        assert worker.access.reload()
        bob.call("scheduler.pause")
        policy_file.write_text("principals: {bob: [sorcerer]}\n")
        assert not worker.access.reload()
        bob.call("scheduler.resume")  # still operator


def test_without_a_policy_everyone_may_and_state_says_so(
    unit_worker: Callable[..., Worker], client: Client
) -> None:
    unit_worker()
    state = client.call("scheduler.state")
    assert state["access"] == {
        "policy": "none",
        "policy_source": None,
        "signing": "off",
        "signing_keys": [],
    }
    assert state["contract"] == "2"


def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(
        "keys:\n"
        "  k2026: {secret: 0123456789abcdef-old, principal: relay}\n"
        "  k2027: {secret: 0123456789abcdef-new, principal: relay}\n"
    )
    return path


def publish_signed(
    broker_url: str, body: dict[str, object], headers: dict[str, str], reply_to: str
) -> None:
    transport = MemoryTransport(broker_url)
    transport.connect()
    transport.send(
        [
            Outgoing(
                json.dumps(body).encode(),
                queue=Names().commands,
                headers=headers,
                reply_to=reply_to,
            )
        ]
    )
    transport.close()


def test_signed_commands_verified_and_replays_refused(
    unit_worker: Callable[..., Worker], broker_url: str, tmp_path: Path, clock: MovableClock
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("principals: {relay: operator}\n")
    unit_worker(policy=str(policy), signing="required", signing_keys=str(keys_file(tmp_path)))
    old = Key("k2026", b"0123456789abcdef-old", "")
    new = Key("k2027", b"0123456789abcdef-new", "")
    now = clock.now().timestamp
    with Client(broker_url, Names(), timeout=10, signing_key=new, clock=now) as signed:
        assert signed.call("scheduler.state")["access"]["signing"] == "required"
        signed.call("job.create", handler="noop", job_id="s1", when="2030-04-01T00:00:00Z")
    with Client(broker_url, Names(), timeout=10, signing_key=old, clock=now) as rotated:
        assert rotated.call("job.get", job_id="s1")["job"]["created_by"] == {
            "principal": "relay",
            "source": "signature",
        }
    with Client(broker_url, Names(), timeout=10) as unsigned:
        with pytest.raises(Forbidden, match="not signed"):
            unsigned.call("job.list")
        body = {"command": "job.list", "command_id": "c-1"}
        data = json.dumps(body).encode()
        headers = sign(new, "c-1", data, clock.now().timestamp())
        reply_to = unsigned.reply_queue()
        publish_signed(broker_url, body, headers, reply_to)
        assert unsigned.wait_reply("c-1")["ok"]
        publish_signed(broker_url, body, headers, reply_to)  # the same message again: a replay
        replayed = unsigned.wait_reply("c-1")
        assert replayed["error"]["code"] == "forbidden" and "replay" in replayed["error"]["message"]
        stale = sign(new, "c-2", data.replace(b"c-1", b"c-2"), clock.now().timestamp() - 301)
        publish_signed(broker_url, {**body, "command_id": "c-2"}, stale, reply_to)
        assert "window" in unsigned.wait_reply("c-2")["error"]["message"]
