"""Signed commands on a real RabbitMQ and PostgreSQL (and the embedded broker, where the broker vouches for no
one but the file's owner): good, rotated, wrong key, unknown key, expired, replayed, changed after signing,
half signed, signed for another command; each with its outcome and, when refused, a dead letter byte for byte.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from f8a_jobs_worker.access.signing import KEY_ID, SIGNATURE, Key, sign
from f8a_jobs_worker.client import Client
from f8a_jobs_worker.messaging.connect import transport_for
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.messaging.port import Outgoing
from f8a_jobs_worker.worker import Worker
from tests.messaging import body_of, read_queue

OLD = Key("k-2026-11", b"old-secret-0123456789abcdef", "relay")
NEW = Key("k-2026-12", b"new-secret-0123456789abcdef", "relay")
LATER = "2099-01-01T00:00:00Z"


@pytest.fixture
def signed_worker(messaging_worker: Callable[..., Worker], tmp_path: Path) -> Worker:
    keys = tmp_path / "keys.yaml"
    secret = tmp_path / "new.secret"
    secret.write_text(NEW.secret.decode() + "\n")
    keys.write_text(
        "keys:\n"
        f"  {OLD.key_id}: {{secret: {OLD.secret.decode()}, principal: relay}}\n"
        f"  {NEW.key_id}: {{secret_file: {secret}, principal: relay}}\n"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text("principals:\n  relay: operator\n")
    return messaging_worker(policy=str(policy), signing="required", signing_keys=str(keys))


def publish(
    url: str, names: Names, body: bytes, headers: dict[str, Any], reply_to: str, cid: str
) -> None:
    """As a relay between brokers would: the body and the signature headers as they are."""
    transport = transport_for(url)
    transport.connect()
    try:
        message = Outgoing(
            body, queue=names.commands, headers=headers, reply_to=reply_to, correlation_id=cid
        )
        transport.send([message])
    finally:
        transport.close()


def command(command_id: str, job_id: str) -> bytes:
    args = {"handler": "noop", "job_id": job_id, "when": LATER}
    return json.dumps({"command": "job.create", "command_id": command_id, "args": args}).encode()


def tampered(now: float) -> dict[str, tuple[bytes, dict[str, Any], str]]:
    """What a relay, a thief or a slip could hand over: body, headers, and what the refusal says."""
    body = command("t-wrong", "wrong")
    cases: dict[str, tuple[bytes, dict[str, Any], str]] = {
        "wrong key": (
            body,
            sign(Key(NEW.key_id, b"guessed-secret-0123456789", ""), "t-wrong", body, now),
            "does not match",
        ),
        "unknown key": (
            command("t-unknown", "unknown"),
            sign(Key("k-1999", NEW.secret, ""), "t-unknown", command("t-unknown", "unknown"), now),
            "unknown signing key",
        ),
        "expired": (
            command("t-expired", "expired"),
            sign(NEW, "t-expired", command("t-expired", "expired"), now - 600),
            "outside the 300 s window",
        ),
        "unsigned": (command("t-unsigned", "unsigned"), {}, "not signed"),
    }
    changed = command("t-changed", "changed")
    cases["changed after signing"] = (
        changed.replace(b'"changed"', b'"hijacked"'),
        sign(NEW, "t-changed", changed, now),
        "does not match",
    )
    half = sign(NEW, "t-half", command("t-half", "half"), now)
    del half[SIGNATURE]
    cases["half signed"] = (command("t-half", "half"), half, "without x-f8a-signature")
    other = command("t-other", "other")
    cases["signed for another command"] = (
        other,
        sign(NEW, "t-elsewhere", other, now),
        "it signs command 't-elsewhere'",
    )
    return cases


@pytest.mark.parametrize("broker_url", ["rabbitmq", "embedded"], indirect=True)
def test_signed_commands_are_applied_and_every_tampered_one_refused_and_kept(
    signed_worker: Worker, broker_url: str, names: Names
) -> None:
    with Client(broker_url, names=names, timeout=30, signing_key=NEW) as signed:
        created = signed.call("job.create", handler="noop", job_id="good", when=LATER)["job"]
        assert created["created_by"] == {"principal": "relay", "source": "signature"}
        with Client(broker_url, names=names, timeout=30, signing_key=OLD) as rotated:
            rotated.call("job.pause", job_id="good")  # the older key still verifies
        reply_to = signed.reply_queue()
        now = time.time()
        cases = tampered(now)
        for name, (body, headers, _) in cases.items():
            publish(broker_url, names, body, headers, reply_to, name)
        replies = {name: signed.wait_reply(name) for name in cases}
        good = command("t-replayed", "replayed")
        headers = sign(NEW, "t-replayed", good, now)
        publish(broker_url, names, good, headers, reply_to, "first")
        assert signed.wait_reply("first")["ok"]
        publish(broker_url, names, good, headers, reply_to, "again")  # the same message, copied
        replies["replayed"] = signed.wait_reply("again")
        state = signed.call("job.list")
    for name, (_, _, says) in {**cases, "replayed": (b"", {}, "a replay")}.items():
        error = replies[name]["error"]
        assert error["code"] == "forbidden" and says in error["message"], (name, error)
    assert {job["job_id"] for job in state["jobs"]} == {"good", "replayed"}  # nothing else applied
    dead = read_queue(broker_url, names.dead, len(cases) + 1, timeout=30)
    kept = {body_of(d): d.headers for d in dead}
    assert set(kept) == {body for body, _, _ in cases.values()} | {good}
    assert all(h["x-f8a-reason"] == "forbidden" for h in kept.values())
    assert kept[good][KEY_ID] == NEW.key_id  # the signature travels with the dead letter
