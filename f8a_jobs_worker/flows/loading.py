"""Choosing the flow backend the settings name, its configuration read and checked at start."""

from __future__ import annotations

from pathlib import Path

from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.errors import ConfigError
from f8a_jobs_worker.flows.backend import FlowBackend


def backend_for(settings: Settings) -> FlowBackend | None:
    """The flow backend the settings name (None: flow runs stay on the flows exchange)."""
    return load_backend(
        settings.flow_backend,
        Path(settings.selinon_nodes),
        settings.selinon_flow_files,
        settings.celery_task_map,
        settings.celery_queue or None,
    )


def load_backend(
    kind: str,
    selinon_nodes: Path,
    selinon_flows: list[Path],
    celery_task_names: dict[str, str],
    celery_queue: str | None,
) -> FlowBackend | None:
    """The flow backend ``kind`` names (None for ``exchange``), its configuration read and checked now;
    ConfigError (one line, naming the setting) when it cannot be used."""
    setting = "F8A_JOBS_FLOW_BACKEND"
    try:
        if kind == "selinon":
            from f8a_jobs_worker.flows.selinon_backend import SelinonBackend

            return SelinonBackend(selinon_nodes, selinon_flows)
        if kind == "celery":
            from f8a_jobs_worker.flows.celery_backend import CeleryBackend

            return CeleryBackend(celery_task_names, celery_queue)
    except ImportError as exc:
        raise ConfigError(
            f"{setting}={kind} needs its extra: pip install 'f8a-jobs-worker[{kind}]' ({exc})"
        ) from None
    except Exception as exc:  # Selinon's configuration errors have no common base
        raise ConfigError(f"{setting}={kind}: {type(exc).__name__}: {exc}") from None
    return None
