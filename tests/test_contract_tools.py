"""The contract checked by tools that are not the project's: the AsyncAPI parser (npm ``@asyncapi/parser``)
on the AsyncAPI document, and ajv on messages captured from a worker, with the schemas resolved offline (every
file registered under its ``$id``; no network is asked). Needs Node.js and ``npm ci`` in tests/node
(``make test`` runs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from f8a_jobs_worker.client import Client
from tests.messaging import EventWatcher

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
NODE = ROOT / "tests" / "node"


def node(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert (NODE / "node_modules" / "@asyncapi" / "parser").is_dir(), "run npm ci in tests/node"
    return subprocess.run(
        ["node", str(NODE / script), *args], capture_output=True, text=True, timeout=120
    )


def test_the_asyncapi_document_passes_the_asyncapi_parser() -> None:
    done = node("asyncapi.js", str(SCHEMAS / "asyncapi.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("valid")


@pytest.mark.parametrize(
    ("schema", "break_it"),
    [
        ("reply.json", lambda s: s | {"type": 12}),
        ("events/job.created.json", lambda s: s | {"required": "event"}),
        ("job.json", lambda s: s | {"properties": {"job_id": {"type": "text"}}}),
    ],
)
def test_the_asyncapi_parser_checks_the_payloads(
    schema: str, break_it: Any, tmp_path: Path
) -> None:
    """The same document with one payload schema broken on purpose is refused: payloads are checked."""
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, copy)
    broken = copy / schema
    broken.write_text(json.dumps(break_it(json.loads(broken.read_text()))))
    done = node("asyncapi.js", str(copy / "asyncapi.yaml"))
    assert done.returncode == 1, done.stdout
    assert "invalid" in done.stdout


@pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)
def test_captured_messages_pass_ajv_offline(
    messaging_worker: Any, client: Client, watcher: EventWatcher, tmp_path: Path
) -> None:
    """Replies to every command and the events they cause, as a monitor received them, validated by ajv
    against reply.json, the command's result schema and the event's schema."""
    messaging_worker()
    replies = [
        client.request("job.create", {"handler": "noop", "job_id": "j", "periodically": "1 hour"}),
        client.request("job.get", {"job_id": "j"}),
        client.request("job.list", {}),
        client.request("job.pause", {"job_id": "j"}),
        client.request("job.resume", {"job_id": "j"}),
        client.request("job.run_now", {"job_id": "j"}),
        client.request("job.history", {"job_id": "j"}),
        client.request("scheduler.state", {}),
        client.request("job.delete", {"job_id": "j"}),
        client.request("job.get", {"job_id": "j"}),  # an error reply
    ]
    watcher.wait_for("job.deleted", "j")
    watcher.wait_for("job.executed", "j")
    pairs: list[str] = []
    for n, reply in enumerate(replies):
        path = tmp_path / f"reply-{n}.json"
        path.write_text(json.dumps(reply))
        pairs += ["reply.json", str(path)]
        if reply["ok"]:
            result = tmp_path / f"result-{n}.json"
            result.write_text(json.dumps(reply["result"]))
            pairs += [f"results/{reply['command']}.json", str(result)]
    for n, event in enumerate(watcher.events):
        path = tmp_path / f"event-{n}.json"
        path.write_text(json.dumps(event))
        pairs += [f"events/{event['event']}.json", str(path)]
    assert len(watcher.events) >= 6
    done = node("validate.js", str(SCHEMAS), *pairs)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("valid ") == len(pairs) // 2
    assert "invalid" not in done.stdout
