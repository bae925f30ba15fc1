"""Signed commands, for where the broker cannot vouch for the sender: HMAC-SHA256 over the raw body.

A signature covers the key id, the time of signing, the command's ``command_id`` and the body byte for byte
(``f8a-v1\\n{key_id}\\n{signed_at}\\n{command_id}\\n`` + body), and travels in four headers (message attributes
on SQS): ``x-f8a-key-id``, ``x-f8a-signed-at`` (Unix seconds), ``x-f8a-command-id`` and ``x-f8a-signature``
(``v1=`` and the hex digest). Several keys may be active at once (rotation); each names the principal its
commands come from. Comparison is constant-time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from f8a_jobs_worker.errors import ConfigError

KEY_ID = "x-f8a-key-id"
SIGNED_AT = "x-f8a-signed-at"
COMMAND_ID = "x-f8a-command-id"
SIGNATURE = "x-f8a-signature"
HEADERS = (KEY_ID, SIGNED_AT, COMMAND_ID, SIGNATURE)
MODES = ("off", "optional", "required")
#: seconds a signature is good for, either side of the worker's clock; replays are remembered that long
DEFAULT_WINDOW = 300


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: bytes
    #: the principal commands signed with this key come from
    principal: str


def digest(secret: bytes, key_id: str, signed_at: str, command_id: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of a message."""
    head = f"f8a-v1\n{key_id}\n{signed_at}\n{command_id}\n".encode()
    return hmac.new(secret, head + body, hashlib.sha256).hexdigest()


def sign(key: Key, command_id: str, body: bytes, now: float) -> dict[str, str]:
    """The headers that sign ``body`` as ``command_id`` with ``key`` at ``now`` (Unix seconds)."""
    signed_at = str(int(now))
    return {
        KEY_ID: key.key_id,
        SIGNED_AT: signed_at,
        COMMAND_ID: command_id,
        SIGNATURE: "v1=" + digest(key.secret, key.key_id, signed_at, command_id, body),
    }


@dataclass(frozen=True)
class Seal:
    """A signature that verified: the key, when it was signed, for which command; ``signature`` is what
    is remembered against replays."""

    key: Key
    signed_at: int
    command_id: str
    signature: str


class BadSignature(Exception):
    """Why a message's signature cannot be trusted (the text is the reply's message)."""


def verify(
    keys: Mapping[str, Key], headers: Mapping[str, Any], body: bytes, now: float, window: int
) -> Seal | None:
    """The seal of a signed message, None for a message with no signature header at all; BadSignature for
    one signed with an unknown key, wrongly, outside ``window`` seconds of ``now``, or half signed."""
    present = [name for name in HEADERS if name in headers]
    if not present:
        return None
    missing = [
        name for name in HEADERS if not isinstance(headers.get(name), str) or not headers[name]
    ]
    if missing:
        raise BadSignature(f"signed message without {', '.join(missing)}")
    values: dict[str, str] = {name: headers[name] for name in HEADERS}
    key = keys.get(values[KEY_ID])
    if key is None:
        raise BadSignature(f"unknown signing key {values[KEY_ID]!r}")
    try:
        signed_at = int(values[SIGNED_AT])
    except ValueError:
        raise BadSignature(f"{SIGNED_AT} is not Unix seconds") from None
    signature = str(values[SIGNATURE]).removeprefix("v1=")
    expected = digest(key.secret, key.key_id, values[SIGNED_AT], values[COMMAND_ID], body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise BadSignature(
            "the signature does not match the message (wrong key, or changed after signing)"
        )
    if abs(now - signed_at) > window:
        raise BadSignature(f"signed {int(now - signed_at)} s ago, outside the {window} s window")
    return Seal(key, signed_at, values[COMMAND_ID], signature)


def load_keys(path: str) -> dict[str, Key]:
    """The verifying keys in the YAML file at ``path``: ``keys: {key_id: {secret | secret_file, principal}}``."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"signing keys {path}: cannot be read: {type(exc).__name__}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(
            f"signing keys {path}: expected 'keys' mapping key ids to secret and principal"
        )
    keys = {}
    for key_id, spec in entries.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("principal"), str):
            raise ConfigError(f"signing keys {path}: key {key_id!r} needs 'principal' and 'secret'")
        secret = spec.get("secret")
        if "secret_file" in spec:
            secret = _read_secret(str(spec["secret_file"]), path)
        if not isinstance(secret, str) or len(secret) < 16:
            raise ConfigError(
                f"signing keys {path}: key {key_id!r} needs a secret of 16 characters or more"
            )
        keys[str(key_id)] = Key(str(key_id), secret.encode(), spec["principal"])
    return keys


def parse_key(text: str, where: str) -> Key:
    """A signing key as a client holds it: ``key_id:secret`` (the principal is the worker's business)."""
    key_id, _, secret = text.strip().partition(":")
    if not key_id or len(secret) < 16:
        raise ConfigError(f"{where}: expected key_id:secret with a secret of 16 characters or more")
    return Key(key_id, secret.encode(), "")


def client_key(text: str, file: str) -> Key | None:
    """A client's signing key from ``F8A_JOBS_SIGNING_KEY`` (``text``) or the file it names (``file``),
    never from the command line; None where neither is set."""
    if file:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"F8A_JOBS_SIGNING_KEY_FILE {file}: {type(exc).__name__}") from None
        return parse_key(text, f"F8A_JOBS_SIGNING_KEY_FILE {file}")
    return parse_key(text, "F8A_JOBS_SIGNING_KEY") if text else None


def _read_secret(name: str, path: str) -> str:
    try:
        return Path(name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"signing keys {path}: cannot read {name}: {type(exc).__name__}"
        ) from None
