"""Settings: read once from ``F8A_JOBS_*`` environment variables, overridable by CLI flags.

Nothing reads the environment at import time. An unknown ``F8A_JOBS_*`` variable is an error rather than a
silently ignored typo: a misspelt ``F8A_JOBS_DATABSE_URL`` must not quietly put production jobs in SQLite.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from f8a_jobs_worker import resources
from f8a_jobs_worker.errors import ConfigError
from f8a_jobs_worker.messaging.names import Names

PREFIX = "F8A_JOBS_"
DEFAULT_DATABASE_URL = "sqlite:///f8a-jobs.sqlite"
DEFAULT_MISFIRE_GRACE_TIME = 3600
#: how ``run`` meets a store whose schema is behind: upgrade it (under a lock), or refuse to start
SCHEMA_UPGRADES = ("auto", "manual")
#: who executes flow runs: a flow engine of the pipeline's own on the flows exchange, Selinon, plain Celery
FLOW_BACKENDS = ("exchange", "selinon", "celery")


def _optional_int(value: str) -> int | None:
    return None if value.strip().lower() in {"", "none", "null"} else int(value)


@dataclass(frozen=True)
class Settings:
    """Everything the worker can be told; defaults make ``f8a-jobs-worker run`` work with no server."""

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str | None = None
    analytics_database_url: str | None = None
    default_jobs_dir: Path = field(default_factory=resources.default_jobs_dir)
    threads: int = 10
    misfire_grace_time: int | None = DEFAULT_MISFIRE_GRACE_TIME
    history_max_age_days: int = 30
    history_per_job: int = 100
    reply_max_age_days: int = 7
    prefetch: int = 50
    #: seconds the consumer waits for more commands once one arrived, to apply them in one batch
    batch_wait: float = 0.0
    replica_lapse: float = 4.0
    poll_interval: float = 5.0
    filter_timeout: int = 30
    filter_tables: str = ""
    commands_queue: str = "f8a_jobs_commands"
    dead_letter_queue: str = "f8a_jobs_commands_dead"
    events_exchange: str = "f8a_jobs_events"
    flows_exchange: str = "f8a_jobs_flows"
    flow_backend: str = "exchange"
    selinon_nodes: str = ""
    selinon_flows: str = ""
    celery_broker_url: str | None = None
    celery_task_names: str = ""
    celery_queue: str = ""
    flow_relay_prefetch: int = 500
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"  # noqa: S104 - probes and scrapes come from outside the container
    schema_upgrade: str = "auto"
    log_level: str = "INFO"
    log_format: str = "text"
    #: the policy file (access/policy.py); empty: every command from anyone, as before policies existed
    policy: str = ""
    #: off, optional or required; empty: optional where signing keys are set, else off
    signing: str = ""
    #: the YAML file of the keys signed commands are verified with
    signing_keys: str = ""
    signing_window: int = 300
    audit_retention_days: int = 365
    #: a client's key to sign commands with (``key_id:secret``), or the file holding it
    signing_key: str = ""
    signing_key_file: str = ""
    #: the dashboard (``f8a-jobs-worker ui``): where it listens, whether it may act, who is looking
    ui_host: str = "127.0.0.1"
    ui_port: int = 8080
    ui_actions: bool = False
    ui_auth_header: str = ""
    ui_operators: str = ""

    @property
    def signing_mode(self) -> str:
        """The signing mode in force: as set, else optional where keys are given, else off."""
        return self.signing or ("optional" if self.signing_keys else "off")

    @property
    def effective_analytics_database_url(self) -> str:
        """Where ``$filter`` queries run: the analytics database, else the job store's own."""
        return self.analytics_database_url or self.database_url

    @property
    def selinon_flow_files(self) -> list[Path]:
        """Selinon flow definition files: comma-separated files or directories (their ``*.yml``/``*.yaml``)."""
        found: list[Path] = []
        for part in (p.strip() for p in self.selinon_flows.split(",")):
            if not part:
                continue
            path = Path(part)
            if path.is_dir():
                found.extend(sorted([*path.glob("*.yml"), *path.glob("*.yaml")]))
            else:
                found.append(path)
        return found

    @property
    def celery_task_map(self) -> dict[str, str]:
        """``F8A_JOBS_CELERY_TASK_NAMES`` (``flow=task`` pairs, comma-separated): the Celery task each flow
        name is sent as; ValueError for a pair that is not ``flow=task``."""
        mapping: dict[str, str] = {}
        for pair in (p.strip() for p in self.celery_task_names.split(",")):
            if not pair:
                continue
            flow, sep, task = pair.partition("=")
            if not sep or not flow.strip() or not task.strip():
                raise ValueError(f"expected flow=task, got {pair!r}")
            mapping[flow.strip()] = task.strip()
        return mapping

    @property
    def effective_celery_broker_url(self) -> str | None:
        """Where the flow relay sends Celery task messages: the Celery broker, else the worker's own."""
        return self.celery_broker_url or self.broker_url

    def names(self) -> Names:
        """The contract's queue and exchange names, as configured."""
        return Names(
            self.commands_queue, self.dead_letter_queue, self.events_exchange, self.flows_exchange
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build settings from ``environ``, then apply ``overrides`` whose value is not None."""
        known = {f.name.upper(): f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        unknown = []
        for key, raw in environ.items():
            if not key.startswith(PREFIX):
                continue
            name = known.get(key[len(PREFIX) :])
            if name is None:
                unknown.append(key)
                continue
            values[name] = _convert(name, raw)
        if unknown:
            raise ConfigError("; ".join(_unknown_message(key, known) for key in sorted(unknown)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.threads < 1:
            raise ConfigError(f"{PREFIX}THREADS must be at least 1, got {self.threads}")
        if self.misfire_grace_time is not None and self.misfire_grace_time < 1:
            raise ConfigError(f"{PREFIX}MISFIRE_GRACE_TIME must be >= 1 second or 'none'")
        if self.history_per_job < 1 or self.history_max_age_days < 1 or self.reply_max_age_days < 1:
            raise ConfigError("retention must keep at least one run and one day")
        if self.prefetch < 1 or self.flow_relay_prefetch < 1:
            raise ConfigError(
                f"{PREFIX}PREFETCH and {PREFIX}FLOW_RELAY_PREFETCH must be at least 1"
            )
        if not 0.0 <= self.batch_wait <= 5.0:
            raise ConfigError(f"{PREFIX}BATCH_WAIT must be 0 to 5 seconds, got {self.batch_wait}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(
                f"{PREFIX}METRICS_PORT must be a TCP port (0-65535), got {self.metrics_port}"
            )
        if not 2.0 <= self.replica_lapse <= 300.0:
            raise ConfigError(f"{PREFIX}REPLICA_LAPSE must be 2 to 300 seconds")
        if not 0.1 <= self.poll_interval <= 3600.0:
            raise ConfigError(f"{PREFIX}POLL_INTERVAL must be 0.1 to 3600 seconds")
        if self.schema_upgrade not in SCHEMA_UPGRADES:
            raise ConfigError(
                f"{PREFIX}SCHEMA_UPGRADE must be one of {', '.join(SCHEMA_UPGRADES)}, "
                f"got {self.schema_upgrade!r}"
            )
        if self.signing_mode not in ("off", "optional", "required"):
            raise ConfigError(
                f"{PREFIX}SIGNING must be off, optional or required, got {self.signing!r}"
            )
        if self.signing_mode != "off" and not self.signing_keys:
            raise ConfigError(f"{PREFIX}SIGNING={self.signing_mode} needs {PREFIX}SIGNING_KEYS")
        if not 10 <= self.signing_window <= 86400 or self.audit_retention_days < 1:
            raise ConfigError(
                f"{PREFIX}SIGNING_WINDOW must be 10 to 86400 s and {PREFIX}AUDIT_RETENTION_DAYS >= 1"
            )
        if not 0 <= self.ui_port <= 65535:
            raise ConfigError(f"{PREFIX}UI_PORT must be a TCP port (0-65535), got {self.ui_port}")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"{PREFIX}LOG_FORMAT must be text or json, got {self.log_format!r}")
        self._check_names()
        self._check_urls()
        self._check_flow_backend()

    def _check_flow_backend(self) -> None:
        if self.flow_backend not in FLOW_BACKENDS:
            raise ConfigError(
                f"{PREFIX}FLOW_BACKEND {self.flow_backend!r}: expected one of {', '.join(FLOW_BACKENDS)}"
            )
        if self.flow_backend == "exchange":
            return
        if not self.effective_celery_broker_url:
            raise ConfigError(
                f"{PREFIX}FLOW_BACKEND={self.flow_backend} needs the Celery broker: set "
                f"{PREFIX}CELERY_BROKER_URL (or {PREFIX}BROKER_URL, its default)"
            )
        if self.flow_backend == "selinon" and not (self.selinon_nodes and self.selinon_flows):
            raise ConfigError(
                f"{PREFIX}FLOW_BACKEND=selinon needs {PREFIX}SELINON_NODES (nodes.yml) and "
                f"{PREFIX}SELINON_FLOWS (flow definition files or a directory of them)"
            )
        try:
            self.celery_task_map  # noqa: B018 (parses the setting; raises ValueError for a bad one)
        except ValueError as exc:
            raise ConfigError(f"{PREFIX}CELERY_TASK_NAMES: {exc}") from None

    def _check_names(self) -> None:
        from f8a_jobs_worker.messaging.names import valid_name

        for setting in ("commands_queue", "dead_letter_queue", "events_exchange", "flows_exchange"):
            value = getattr(self, setting)
            if not valid_name(value):
                raise ConfigError(
                    f"{PREFIX}{setting.upper()} {value!r}: use letters, digits and _ only (1-80)"
                )

    def _check_urls(self) -> None:
        """A URL that can never work stops the start here, with one line; an unreachable server does not
        (that is retried)."""
        from f8a_jobs_worker.messaging.connect import check_broker_url
        from f8a_jobs_worker.persistence.database import database_url

        databases = {"DATABASE_URL": self.database_url}
        brokers = {"BROKER_URL": self.broker_url, "CELERY_BROKER_URL": self.celery_broker_url}
        if self.analytics_database_url:
            databases["ANALYTICS_DATABASE_URL"] = self.analytics_database_url
        for name, url in databases.items():
            try:
                database_url(url)
            except ValueError as exc:
                raise ConfigError(f"{PREFIX}{name} {redact_url(url)}: {exc}") from None
        for name, broker_url in brokers.items():
            if not broker_url:
                continue
            try:
                check_broker_url(broker_url)
            except ValueError as exc:
                raise ConfigError(f"{PREFIX}{name} {redact_url(broker_url)}: {exc}") from None

    def describe(self) -> dict[str, Any]:
        """Settings as they may be logged: every URL with its password masked."""
        return {
            "database_url": redact_url(self.database_url),
            "broker_url": redact_url(self.broker_url) if self.broker_url else None,
            "analytics_database_url": redact_url(self.effective_analytics_database_url),
            "default_jobs_dir": str(self.default_jobs_dir),
            "threads": self.threads,
            "misfire_grace_time": self.misfire_grace_time,
            "history_max_age_days": self.history_max_age_days,
            "history_per_job": self.history_per_job,
            "reply_max_age_days": self.reply_max_age_days,
            "prefetch": self.prefetch,
            "batch_wait": self.batch_wait,
            "replica_lapse": self.replica_lapse,
            "poll_interval": self.poll_interval,
            "filter_timeout": self.filter_timeout,
            "filter_tables": self.filter_tables or "all analytics tables",
            "metrics": None
            if self.metrics_port is None
            else f"{self.metrics_host}:{self.metrics_port}",
            "flow_backend": self.flow_backend,
            "schema_upgrade": self.schema_upgrade,
            "policy": self.policy or None,
            "signing": self.signing_mode,
            "signing_keys": self.signing_keys or None,
            "signing_key": "set" if self.signing_key or self.signing_key_file else None,
            "audit_retention_days": self.audit_retention_days,
            **(
                {}
                if self.flow_backend == "exchange"
                else {"celery_broker_url": redact_url(self.effective_celery_broker_url or "")}
            ),
            "names": [
                self.commands_queue,
                self.dead_letter_queue,
                self.events_exchange,
                self.flows_exchange,
            ],
        }

    def __repr__(self) -> str:
        return f"Settings({self.describe()!r})"


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "default_jobs_dir": Path,
    "threads": int,
    "misfire_grace_time": _optional_int,
    "history_max_age_days": int,
    "history_per_job": int,
    "reply_max_age_days": int,
    "prefetch": int,
    "flow_relay_prefetch": int,
    "batch_wait": float,
    "metrics_port": _optional_int,
    "replica_lapse": float,
    "poll_interval": float,
    "filter_timeout": int,
    "log_level": str.upper,
    "schema_upgrade": str.lower,
    "log_format": str.lower,
    "signing": str.lower,
    "signing_window": int,
    "audit_retention_days": int,
    "ui_port": int,
    "ui_actions": _flag,
}


def _convert(name: str, raw: str) -> Any:
    try:
        return _CONVERTERS.get(name, str)(raw)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}{name.upper()}: cannot use {raw!r}: {exc}") from None


def _unknown_message(key: str, known: Mapping[str, str]) -> str:
    guess = difflib.get_close_matches(key, [PREFIX + k for k in known], n=1)
    hint = f" (did you mean {guess[0]}?)" if guess else ""
    return f"unknown setting {key}{hint}"


def redact_url(url: str) -> str:
    """Mask the password of a URL so that it can be logged; other parts stay readable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    # the netloc after the last "@" is host and port as written (a port that does not parse included)
    host_port = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host_port}"))
