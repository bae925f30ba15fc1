"""Liveness and readiness, as Kubernetes probes mean them.

Live: every thread the worker needs is running (a dead one means restart the process). Ready: the job store
and the broker answer (while one does not, the worker waits and retries by itself; it is not restarted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Probe:
    """Named checks; each returns None when fine, else why not."""

    checks: dict[str, Callable[[], str | None]] = field(default_factory=dict)
    #: facts shown beside the checks (the store's schema revision), each read when the probe runs
    facts: dict[str, Callable[[], Any]] = field(default_factory=dict)

    def read_facts(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, read in self.facts.items():
            try:
                found[name] = read()
            except Exception as exc:
                found[name] = f"{type(exc).__name__}: {exc}"
        return found

    def run(self) -> tuple[bool, dict[str, str]]:
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                problem = check()
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            results[name] = "ok" if problem is None else problem
        return all(value == "ok" for value in results.values()), results


def thread_check(alive: Callable[[], bool], what: str) -> Callable[[], str | None]:
    return lambda: None if alive() else f"the {what} thread is not running"
