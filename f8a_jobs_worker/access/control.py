"""Access control as the worker holds it: the policy and signing keys read at start (a file that cannot be
used stops the start), the consumer's gate, ``scheduler.state``'s account of them, and the SIGHUP reload."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from functools import partial
from typing import Any, Protocol

from f8a_jobs_worker.access import policy as policies
from f8a_jobs_worker.access.gate import Access, Gate
from f8a_jobs_worker.access.signing import load_keys
from f8a_jobs_worker.clock import Clock

log = logging.getLogger(__name__)


class AccessSettings(Protocol):
    """The settings access control is read from (``F8A_JOBS_POLICY``, ``F8A_JOBS_SIGNING*``)."""

    @property
    def policy(self) -> str: ...
    @property
    def signing_keys(self) -> str: ...
    @property
    def signing_window(self) -> int: ...
    @property
    def signing_mode(self) -> str: ...


class AccessControl:
    """One per worker; the gate is made for the consumer's transport (what vouches for senders on it)."""

    def __init__(self, access: Access, policy_path: str, commands: Collection[str]) -> None:
        self.access = access
        self.policy_path = policy_path
        self.commands = commands
        self._gate: Gate | None = None

    @classmethod
    def of(cls, settings: AccessSettings, commands: Collection[str]) -> AccessControl:
        """ConfigError (exit 78) for a policy or key file that cannot be used."""
        path = settings.policy
        found = policies.load(path, commands) if path else None
        keys = load_keys(settings.signing_keys) if settings.signing_keys else {}
        access = Access(found, keys, settings.signing_mode, settings.signing_window)
        return cls(access, path, commands)

    def gate(self, source: str, clock: Clock, refused: Callable[[str, str, str], None]) -> Gate:
        """The consumer's gate; ``source`` vouches for senders on its broker, ``refused`` counts refusals."""
        loader = (
            partial(policies.load, self.policy_path, self.commands) if self.policy_path else None
        )
        self._gate = Gate(source, self.access, clock, refused, loader)
        return self._gate

    def describe(self) -> dict[str, Any]:
        """As ``scheduler.state`` shows it: the policy in force now (after any reload)."""
        return (self._gate.access if self._gate else self.access).describe()

    def reload(self) -> bool:
        """Read the policy file again (SIGHUP); a file that does not parse leaves the one in force."""
        return self._gate.reload() if self._gate is not None else False

    def log(self) -> None:
        """Say once at start what is in force; without a policy, that anyone may do anything."""
        policy = self.access.policy
        if policy is None:
            log.warning(
                "no policy (F8A_JOBS_POLICY): every command from anyone who can publish is applied"
            )
        else:
            log.info("policy %s in force, mode %s", policy.source, policy.mode)
        if self.access.signing != "off":
            keys = ", ".join(sorted(self.access.keys or {}))
            log.info("signed commands: %s, keys %s", self.access.signing, keys)
