"""The private parts of libraries this package relies on, and the releases they were checked against.

pyproject.toml bounds each library to its checked series; tests/test_private_apis.py fails when an installed
release is outside it or a private attribute listed here is gone, so an upgrade is a deliberate step: re-read
each use, run the suite, then widen the series here and the bound in pyproject.toml. docs/architecture.md
("Private APIs") says why each one is used.
"""

from __future__ import annotations

from typing import NamedTuple

#: distribution name -> the release series (major.minor) the private uses below were checked against
CHECKED = {"kombu": "5.7", "amqp": "5.4", "selinon": "1.4"}


class PrivateUse(NamedTuple):
    package: str
    target: str  # "module:Class.attribute"
    where: str
    why: str


PRIVATE = [
    PrivateUse(
        "kombu",
        "kombu.transport.filesystem:Channel._put",
        "messaging/embedded.py",
        "atomic writes of message files",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.filesystem:Channel._get",
        "messaging/embedded.py",
        "a delivered message stays in an in-flight folder until acknowledged (kill -9 loses none)",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.virtual:Channel.do_restore",
        "messaging/embedded.py",
        "unacknowledged messages go back from the in-flight folder, not as copies",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.SQS:Channel._message_to_python",
        "messaging/sqs.py",
        "any SQS body read without raising; plain bodies kept as they arrived",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.pyamqp:Channel.Message",
        "messaging/amqp.py",
        "bodies as they arrived (no decompression)",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.virtual:Message._raw",
        "messaging/inbound.py",
        "the virtual transports' message built without raising",
    ),
    PrivateUse(
        "amqp",
        "amqp.serialization:GenericContent._load_properties",
        "messaging/amqp.py",
        "properties py-amqp cannot decode are kept raw instead of stopping the connection",
    ),
    PrivateUse(
        "amqp",
        "amqp.channel:Channel._basic_publish",
        "messaging/confirms.py",
        "publish without kombu's wait per message; confirms counted per batch",
    ),
    PrivateUse(
        "amqp",
        "amqp.abstract_channel:AbstractChannel.send_method",
        "messaging/confirms.py",
        "a batch published without a socket read before each message",
    ),
    PrivateUse(
        "amqp",
        "amqp.method_framing:frame_writer",
        "messaging/amqp.py",
        "a batch's frames written to the socket at once (corked)",
    ),
    PrivateUse(
        "amqp",
        "amqp.abstract_channel:AbstractChannel.auto_decode",
        "messaging/amqp.py",
        "bodies stay bytes whatever content_encoding says",
    ),
    PrivateUse(
        "selinon",
        "selinon.selective:compute_selective_run",
        "flows/selinon_backend.py",
        "a selective run sent with a task id of ours (run_flow_selective makes its own)",
    ),
]
