"""The policy: which principal may send which command (``F8A_JOBS_POLICY``, a YAML file).

Principals (names, or glob patterns such as ``svc-*``) map to roles, roles to commands. Three roles are built
in: ``reader`` (reads of jobs, runs, state and reports), ``operator`` (``reader``'s, every change of jobs and
of the scheduler, ``audit.list``), ``admin`` (every command, ``filter.sql`` and ``filter.expand`` included).
A role of the file's own may limit ``job.create`` to some handlers. Once a policy is set, what it does not
allow is refused (``forbidden``); ``mode: log_only`` only logs and counts what it would refuse, to roll a
policy out. Principals listed under ``forwarders`` (a dashboard, a pipeline's gateway) may name the person they
act for in the ``x-f8a-on-behalf-of`` header; their own roles decide, the person is recorded beside them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from f8a_jobs_worker.access.principal import Principal
from f8a_jobs_worker.errors import ConfigError

READS = (
    "job.get",
    "job.list",
    "job.history",
    "schedule.preview",
    "scheduler.state",
    "report.analyses",
    "runs.summary",
)
CHANGES = (
    "job.create",
    "job.pause",
    "job.resume",
    "job.delete",
    "job.run_now",
    "job.backfill",
    "jobs.clean_failed",
    "scheduler.pause",
    "scheduler.resume",
    "audit.list",
)
MODES = ("enforce", "log_only")
_KEYS = {"mode", "principals", "roles", "forwarders"}


@dataclass(frozen=True)
class Role:
    """Commands a role may send; ``handlers``: the only handlers its ``job.create`` may name (None: any)."""

    commands: frozenset[str]
    handlers: frozenset[str] | None = None

    def allows(self, command: str, args: Mapping[str, Any]) -> bool:
        if command not in self.commands:
            return False
        if command == "job.create" and self.handlers is not None:
            return args.get("handler") in self.handlers
        return True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class Policy:
    """A parsed policy file; ``source`` names where it came from (its path), for logs and state."""

    roles_of: tuple[tuple[str, tuple[str, ...]], ...]
    roles: Mapping[str, Role]
    forwarders: frozenset[str] = frozenset()
    mode: str = "enforce"
    source: str = ""
    _cache: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def enforcing(self) -> bool:
        return self.mode == "enforce"

    def roles_for(self, name: str) -> tuple[str, ...]:
        """The roles of every entry that names ``name`` or a pattern it matches, in the file's order."""
        found = self._cache.get(name)
        if found is None:
            matched: list[str] = []
            for pattern, roles in self.roles_of:
                if pattern == name or fnmatch.fnmatchcase(name, pattern):
                    matched += [role for role in roles if role not in matched]
            found = self._cache.setdefault(name, tuple(matched))
        return found

    def forwards(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.forwarders)

    def decide(self, principal: Principal, command: str, args: Mapping[str, Any]) -> Decision:
        """Whether ``principal`` may send ``command`` with ``args`` (only ``handler`` is looked at)."""
        roles = self.roles_for(principal.name)
        if not roles:
            return Decision(False, f"{principal.name!r} has no role in the policy")
        if any(self.roles[role].allows(command, args) for role in roles):
            return Decision(True, "")
        held = ", ".join(roles)
        if command == "job.create" and any(command in self.roles[r].commands for r in roles):
            return Decision(
                False, f"{principal.name!r} ({held}) may not create jobs of this handler"
            )
        return Decision(False, f"{principal.name!r} ({held}) may not send {command}")


def builtin_roles(commands: Collection[str]) -> dict[str, Role]:
    """``reader``, ``operator`` and ``admin`` over the worker's ``commands``."""
    return {
        "reader": Role(frozenset(READS)),
        "operator": Role(frozenset(READS + CHANGES)),
        "admin": Role(frozenset(commands)),
    }


def load(path: str, commands: Collection[str]) -> Policy:
    """The policy in the file at ``path``; ConfigError naming the first problem (unreadable, not YAML, an
    unknown key, command, role or mode)."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"policy {path}: cannot be read: {_first_line(exc)}") from None
    try:
        return parse(document or {}, commands, path)
    except ConfigError as exc:
        raise ConfigError(f"policy {path}: {exc.message}") from None


def parse(document: Any, commands: Collection[str], source: str = "") -> Policy:
    """A policy from its parsed YAML ``document``."""
    if not isinstance(document, dict):
        raise ConfigError(
            "the file must be a mapping with 'principals' (and 'roles', 'forwarders', 'mode')"
        )
    unknown = set(document) - _KEYS
    if unknown:
        raise ConfigError(f"unknown key {sorted(unknown)[0]!r}; known: {', '.join(sorted(_KEYS))}")
    mode = document.get("mode", "enforce")
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    roles = builtin_roles(commands) | _own_roles(document.get("roles") or {}, commands)
    principals = document.get("principals")
    if not isinstance(principals, dict) or not principals:
        raise ConfigError("'principals' must map at least one principal (or pattern) to its roles")
    roles_of = []
    for name, held in principals.items():
        listed = [held] if isinstance(held, str) else held
        if not isinstance(name, str) or not name or not isinstance(listed, list) or not listed:
            raise ConfigError(f"principals: {name!r} must map to a role or a list of roles")
        for role in listed:
            if role not in roles:
                raise ConfigError(
                    f"principals: {name!r} has unknown role {role!r}; known: {', '.join(sorted(roles))}"
                )
        roles_of.append((name, tuple(listed)))
    forwarders = document.get("forwarders") or []
    if not isinstance(forwarders, list) or not all(isinstance(f, str) and f for f in forwarders):
        raise ConfigError("'forwarders' must be a list of principal names (or patterns)")
    return Policy(tuple(roles_of), roles, frozenset(forwarders), mode, source)


def _own_roles(document: Any, commands: Collection[str]) -> dict[str, Role]:
    if not isinstance(document, dict):
        raise ConfigError("'roles' must map role names to {commands: [...], handlers: [...]}")
    roles = {}
    for name, spec in document.items():
        if name in ("reader", "operator", "admin"):
            raise ConfigError(f"roles: {name!r} is built in and cannot be redefined")
        if not isinstance(spec, dict) or not set(spec) <= {"commands", "handlers"}:
            raise ConfigError(f"roles: {name!r} must be a mapping of 'commands' (and 'handlers')")
        listed = spec.get("commands")
        if not isinstance(listed, list) or not listed:
            raise ConfigError(f"roles: {name!r} must list its commands")
        for command in listed:
            if command not in commands:
                raise ConfigError(
                    f"roles: {name!r} names unknown command {command!r}; known: {', '.join(sorted(commands))}"
                )
        handlers = spec.get("handlers")
        if handlers is not None and (
            not isinstance(handlers, list) or not all(isinstance(h, str) for h in handlers)
        ):
            raise ConfigError(f"roles: {name!r}: 'handlers' must be a list of handler names")
        roles[str(name)] = Role(
            frozenset(listed), None if handlers is None else frozenset(handlers)
        )
    return roles


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
