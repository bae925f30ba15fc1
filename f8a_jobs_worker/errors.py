"""The package's two exception roots: :class:`JobsError`, one subclass per error code of the wire contract
(docs/messages.md), and :class:`WorkerError`, what goes wrong in the worker itself and never reaches a reply.

Every error the service facade raises is a :class:`JobsError`; its ``code`` is the reply's ``error.code`` and
``details`` the reply's ``error.details``. The messaging layer never needs to know more than that. Every
subclass of either root is constructed as its root is.
"""

from __future__ import annotations

from typing import Any, ClassVar


class JobsError(Exception):
    """Base of every error with a wire code."""

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_dict(self) -> dict[str, Any]:
        """The reply's ``error`` object."""
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidJson(JobsError):
    code = "invalid_json"


class ValidationFailed(JobsError):
    """Input broke a JSON Schema; ``details`` holds one ``{"path", "message"}`` per violation."""

    code = "validation_error"


class UnknownCommand(JobsError):
    code = "unknown_command"


class UnknownHandler(JobsError):
    code = "unknown_handler"


class JobNotFound(JobsError):
    code = "job_not_found"

    @classmethod
    def of(cls, job_id: str) -> JobNotFound:
        return cls(f"no job {job_id!r}")


class JobExists(JobsError):
    code = "job_exists"

    @classmethod
    def of(cls, job_id: str) -> JobExists:
        return cls(f"job {job_id!r} exists; send replace: true to overwrite it")


class JobBusy(JobsError):
    """``job.run_now`` while a run of the job is in progress (jobs run one instance at a time)."""

    code = "job_busy"


class JobBroken(JobsError):
    """The job is stored but cannot be restored (its state names something that no longer exists): it can
    be shown, deleted or replaced, not run, paused or resumed."""

    code = "job_broken"


class InvalidSchedule(JobsError):
    """A schedule field could not be parsed or contradicts another; the message names the field."""

    code = "invalid_schedule"

    @classmethod
    def of(cls, field: str, reason: str) -> InvalidSchedule:
        """The error for ``field`` (its JSON path in ``details``)."""
        return cls(f"{field}: {reason}", [{"path": f"$.{field}", "message": reason}])

    @property
    def field(self) -> str:
        """The field named (its path without ``$.``)."""
        return str(self.details[0]["path"]).removeprefix("$.") if self.details else ""

    @property
    def reason(self) -> str:
        """Why the field was refused."""
        return str(self.details[0]["message"]) if self.details else self.message


class FilterError(JobsError):
    code = "filter_error"


class Unavailable(JobsError):
    """A dependency (database, broker) is down: nothing was applied, the command should be retried."""

    code = "unavailable"


class InternalError(JobsError):
    code = "internal_error"


class Forbidden(JobsError):
    """The policy does not let the command's principal send it: answered, announced, no effect."""

    code = "forbidden"


class Untrusted(Forbidden):
    """The message's identity or signature cannot be trusted: refused as ``forbidden`` and, beside the
    answer, kept byte for byte in the dead-letter queue for whoever investigates."""

    #: who sent it as far as the broker vouched, where it did (a Principal), for the audit
    principal: Any = None


ERRORS_BY_CODE: dict[str, type[JobsError]] = {
    cls.code: cls
    for cls in (
        InvalidJson,
        ValidationFailed,
        UnknownCommand,
        UnknownHandler,
        JobNotFound,
        JobExists,
        JobBusy,
        JobBroken,
        InvalidSchedule,
        FilterError,
        Unavailable,
        InternalError,
        Forbidden,
    )
}


class WorkerError(Exception):
    """Base of the worker's own errors: a setting, a store or a broker the worker cannot work with."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(WorkerError):
    """A setting is unknown or has a value that cannot be used."""


class SchemaMismatch(WorkerError):
    """The job store is at a schema revision this release cannot run on: behind (and upgrades are manual),
    or ahead (written by a newer release)."""


class StoreInUse(WorkerError):
    """Another worker runs on this SQLite file."""


class ReplyTimeout(WorkerError):
    """No final reply within the timeout; the command may still be applied later."""


class BrokerUnavailable(WorkerError):
    """The broker, or the connection to it, failed; ``sent`` messages were confirmed before it did."""

    def __init__(self, message: str, sent: int = 0) -> None:
        super().__init__(message)
        self.sent = sent


class BrokerRefused(BrokerUnavailable):
    """The broker refused (nacked) a message it was asked to take."""


class DispatchFailed(WorkerError):
    """The broker failed during a fan-out of flow runs; ``dispatched`` were confirmed before it did."""

    def __init__(self, message: str, dispatched: int = 0) -> None:
        super().__init__(message)
        self.dispatched = dispatched


class Undeliverable(WorkerError):
    """A flow run that no retry can hand over (an unknown flow, a malformed message): it is dead-lettered."""

    def __init__(self, message: str, reason: str = "invalid_flow_run") -> None:
        super().__init__(message)
        self.reason = reason
