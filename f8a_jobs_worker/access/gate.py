"""The checks before a command is applied: who sent it (and whether its signature holds), then whether the
policy lets them send it. The consumer asks :meth:`Gate.identify` before it reads the command and
:meth:`Gate.permit` once it knows the command, before its arguments are validated, so a refused principal
learns nothing of the schemas.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from f8a_jobs_worker.access.policy import Policy
from f8a_jobs_worker.access.principal import ANONYMOUS, Principal
from f8a_jobs_worker.access.signing import DEFAULT_WINDOW, BadSignature, Key, Seal, verify
from f8a_jobs_worker.clock import Clock
from f8a_jobs_worker.errors import ConfigError, Forbidden, Untrusted
from f8a_jobs_worker.messaging.port import Delivery

log = logging.getLogger(__name__)

#: the header a trusted forwarder names the person it acts for in
ON_BEHALF_OF = "x-f8a-on-behalf-of"
#: what a publisher must do for the broker to vouch for it, by broker
_HOW = {
    "rabbitmq": "publish with the user_id property set to your broker user (RabbitMQ checks it)",
    "sqs": "SQS sets SenderId itself",
    "embedded": "the message file's owner could not be read",
    "memory": "connect as memory://user@name",
}


@dataclass(frozen=True)
class Identity:
    principal: Principal
    #: the signature that vouched for it, if one did (remembered against replays)
    seal: Seal | None = None


@dataclass(frozen=True)
class Access:
    """What the gate was told: the policy (None: everyone may do everything), the signing keys and mode."""

    policy: Policy | None = None
    keys: Mapping[str, Key] | None = None
    signing: str = "off"
    window: int = DEFAULT_WINDOW

    def describe(self) -> dict[str, Any]:
        """As ``scheduler.state`` shows it."""
        return {
            "policy": "none" if self.policy is None else self.policy.mode,
            "policy_source": None if self.policy is None else self.policy.source,
            "signing": self.signing,
            "signing_keys": sorted(self.keys or {}),
        }


class Gate:
    """Identity, signature and policy; ``reload`` reads the policy again (SIGHUP)."""

    def __init__(
        self,
        source: str,
        access: Access,
        clock: Clock,
        refused: Callable[[str, str, str], None] = lambda *_: None,
        load_policy: Callable[[], Policy | None] | None = None,
    ) -> None:
        """``source``: what vouches for a delivery's sender on this broker; ``refused(principal, command,
        mode)`` counts a refusal; ``load_policy`` reads the policy file again."""
        self.source = source
        self.access = access
        self.clock = clock
        self._refused = refused
        self._load_policy = load_policy
        self._lock = threading.Lock()

    def reload(self) -> bool:
        """Read the policy file again; a file that does not parse leaves the policy in force (logged)."""
        if self._load_policy is None:
            log.info("no policy file to reload (F8A_JOBS_POLICY is not set)")
            return False
        try:
            policy = self._load_policy()
        except ConfigError as exc:
            log.error("policy not reloaded, the one in force stays: %s", exc.message)
            return False
        with self._lock:
            self.access = replace(self.access, policy=policy)
        log.info(
            "policy reloaded from %s (mode %s)",
            policy.source if policy else None,
            policy and policy.mode,
        )
        return True

    def identify(self, delivery: Delivery) -> Identity:
        """Who sent ``delivery``: its signature's principal, else the broker's word; Untrusted for a bad
        signature, for an unsigned message where signing is required, for no identity under a policy, or
        for a forwarding header from a principal the policy does not trust to forward."""
        access = self.access
        try:
            seal = self._seal(access, delivery)
        except Untrusted as refusal:
            refusal.principal = Principal(delivery.sender, self.source) if delivery.sender else None
            raise
        if seal is not None:
            name, source = seal.key.principal, "signature"
        elif delivery.sender:
            name, source = delivery.sender, self.source
        elif access.policy is not None:
            raise Untrusted(
                "the message does not say who sent it, and a policy is set: "
                + _HOW.get(self.source, "sign it")
            )
        else:
            return Identity(ANONYMOUS)
        try:
            behalf = self._behalf(access, name, delivery)
        except Untrusted as refusal:
            refusal.principal = Principal(name, source)  # who it was, as far as that goes
            raise
        return Identity(Principal(name, source, behalf), seal)

    def _seal(self, access: Access, delivery: Delivery) -> Seal | None:
        if access.signing == "off":
            return None
        try:
            seal = verify(
                access.keys or {},
                delivery.headers,
                delivery.body,
                self.clock.now().timestamp(),
                access.window,
            )
        except BadSignature as exc:
            raise Untrusted(f"signature refused: {exc}") from None
        if seal is None and access.signing == "required":
            raise Untrusted("the command is not signed, and signing is required")
        return seal

    @staticmethod
    def _behalf(access: Access, name: str, delivery: Delivery) -> str | None:
        value = delivery.headers.get(ON_BEHALF_OF)
        if value is None or access.policy is None:
            return None  # without a policy no one is trusted to name another
        if not access.policy.forwards(name):
            raise Untrusted(
                f"{name!r} is not a trusted forwarder and may not act on behalf of others"
            )
        if not isinstance(value, str) or not 0 < len(value) <= 255 or "\x00" in value:
            raise Untrusted(f"{ON_BEHALF_OF} must name one person (1 to 255 characters)")
        return value

    def permit(self, principal: Principal, command: str, args: Mapping[str, Any]) -> None:
        """Forbidden unless the policy lets ``principal`` send ``command`` (in ``log_only`` mode a refusal
        is logged and counted, not made)."""
        policy = self.access.policy
        if policy is None:
            return
        decision = policy.decide(principal, command, args)
        if decision.allowed:
            return
        self._refused(principal.name, command, policy.mode)
        if not policy.enforcing:
            log.warning(
                "policy (log_only) would refuse %s from %s: %s", command, principal, decision.reason
            )
            return
        raise Forbidden(
            decision.reason,
            [{"path": "$.command", "message": f"not allowed for {principal.name}"}],
        )
