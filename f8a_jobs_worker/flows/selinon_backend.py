"""Flow runs as Selinon flows: what ``selinon.run_flow`` / ``run_flow_selective`` send, with a task id of ours.

A Selinon worker executes a flow when a ``selinon.Dispatcher`` task message arrives on the flow's dispatcher
queue. This backend sends exactly that message, built by Selinon's own Celery task, with the semantics of the
original service's dispatch (``f8a_jobs/handlers/base.py``): ``job_id`` added to the node arguments, and the
finalising tasks added to selective runs of the bayesian flows. ``run_flow`` cannot be given a task id, so
the message is sent through the same calls it makes (:mod:`f8a_jobs_worker.compat`, checked per release).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from f8a_jobs_worker.errors import Undeliverable
from f8a_jobs_worker.flows.backend import FlowRun

log = logging.getLogger(__name__)

#: tasks the original service added to every selective run of these flows
SELECTIVE_ADDITIONS = {
    "bayesianFlow": ("FinalizeTask", "ResultCollector", "GraphImporterTask"),
    "bayesianAnalysisFlow": ("FinalizeTask", "ResultCollector", "GraphImporterTask"),
    "bayesianPackageFlow": (
        "PackageFinalizeTask",
        "PackageResultCollector",
        "PackageGraphImporterTask",
    ),
    "bayesianPackageAnalysisFlow": (
        "PackageFinalizeTask",
        "PackageResultCollector",
        "PackageGraphImporterTask",
    ),
}


def selective_task_names(flow_name: str, task_names: Sequence[str]) -> list[str]:
    """The tasks a selective run of ``flow_name`` runs: the ones asked for, then the original's additions."""
    return list(dict.fromkeys([*task_names, *SELECTIVE_ADDITIONS.get(flow_name, ())]))


def node_args_with_job(node_args: dict[str, Any] | None, job_id: str) -> dict[str, Any]:
    """The node arguments a flow gets: the run's, with the id of the job that dispatched it."""
    return {**(node_args or {}), "job_id": job_id}


def dispatch_kwargs(
    flow_name: str,
    node_args: dict[str, Any] | None,
    tasks: list[str] | None,
    follow_subflows: bool,
    run_subsequent: bool,
) -> dict[str, Any]:
    """The Dispatcher task's kwargs, as ``selinon.run_flow`` and ``run_flow_selective`` build them
    (``selinon/run.py``; tests/test_selinon.py compares the two messages)."""
    from selinon.selective import compute_selective_run  # private: see f8a_jobs_worker/compat.py

    kwargs: dict[str, Any] = {"flow_name": flow_name, "node_args": node_args}
    if tasks is not None:
        kwargs["selective"] = compute_selective_run(
            flow_name, tasks, follow_subflows, run_subsequent
        )
    return kwargs


class SelinonBackend:
    """Selinon's configuration (nodes and flow definitions, as its workers have them) and its Dispatcher task.

    Selinon keeps its configuration in class attributes: one configuration per process.
    """

    name = "selinon"

    def __init__(self, nodes: Path, flows: list[Path]) -> None:
        from celery import Celery
        from selinon import Config

        if not nodes.is_file():
            raise ValueError(f"no Selinon nodes definition at {nodes}")
        if not flows:
            raise ValueError("no Selinon flow definition files given")
        for path in flows:
            if not path.is_file():
                raise ValueError(f"no Selinon flow definition at {path}")
        with _names_only(pipeline_modules([nodes, *flows])) as stubbed:
            Config.set_config_yaml(str(nodes), [str(p) for p in flows])
        if stubbed:
            log.info(
                "Selinon configuration read; modules not installed here, known by name only "
                "(enough to dispatch): %s",
                ", ".join(sorted(stubbed)),
            )
        self.config = Config
        self.app = Celery("f8a_jobs_worker", set_as_current=False)
        Config.set_celery_app(self.app)
        self.dispatcher = self.app.tasks["selinon.Dispatcher"]

    @property
    def flows(self) -> list[str]:
        return sorted(self.config.dispatcher_queues)

    def problems(
        self,
        flow_name: str,
        task_names: list[str] | None,
        follow_subflows: bool,
        run_subsequent: bool,
    ) -> list[tuple[str, str]]:
        if flow_name not in self.config.dispatcher_queues:
            known = ", ".join(self.flows) or "none"
            return [("flow_name", f"unknown flow {flow_name!r} (Selinon flows: {known})")]
        if task_names is None:
            return []
        tasks = selective_task_names(flow_name, task_names)
        unknown = [t for t in tasks if t not in self.config.task_classes]
        if unknown:
            return [("task_names", f"unknown Selinon task {unknown[0]!r}")]
        try:
            self._kwargs(flow_name, None, tasks, follow_subflows, run_subsequent)
        except Undeliverable as exc:
            return [("task_names", exc.message)]
        return []

    def send(self, run: FlowRun, producer: Any) -> None:
        if run.flow_name not in self.config.dispatcher_queues:
            raise Undeliverable(
                f"the Selinon configuration has no flow {run.flow_name!r}", "unknown_flow"
            )
        tasks = (
            None if run.task_names is None else selective_task_names(run.flow_name, run.task_names)
        )
        kwargs = self._kwargs(
            run.flow_name,
            node_args_with_job(run.node_args, run.job_id),
            tasks,
            run.follow_subflows,
            run.run_subsequent,
        )
        self.dispatcher.apply_async(
            kwargs=kwargs,
            queue=self.config.dispatcher_queues[run.flow_name],
            task_id=run.task_id,
            producer=producer,
            retry=False,  # the relay retries: a publish must fail on the channel it was counted on
        )

    def _kwargs(
        self,
        flow_name: str,
        node_args: dict[str, Any] | None,
        tasks: list[str] | None,
        follow_subflows: bool,
        run_subsequent: bool,
    ) -> dict[str, Any]:
        from selinon import SelectiveNoPathError

        try:
            return dispatch_kwargs(flow_name, node_args, tasks, follow_subflows, run_subsequent)
        except SelectiveNoPathError as exc:
            raise Undeliverable(str(exc), "selective_no_path") from None


class _Placeholder:
    """Stands for a class or function of the pipeline's code that the worker does not have."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


class _StubModule(types.ModuleType):
    """A module of the pipeline's own (its tasks, storages, predicates) that is not installed here."""

    __path__: list[str] = []  # a package: sub-modules are stubbed too

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (_Placeholder,), {"__module__": self.__name__})


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers for the pipeline's modules before any real finder, so none of their code runs here."""

    def __init__(self, modules: set[str]) -> None:
        self.modules = modules
        self.stubbed: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules:
            return None
        self.stubbed.add(fullname)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StubModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def pipeline_modules(files: list[Path]) -> set[str]:
    """The modules a Selinon configuration imports from the pipeline (every ``import`` and
    ``predicates_module`` value, and their parent packages), Selinon's own left out."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("import", "predicates_module") and isinstance(value, str):
                    parts = value.split(".")
                    found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in files:
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return {name for name in found if name.split(".")[0] != "selinon"}


@contextmanager
def _names_only(modules: set[str]) -> Iterator[set[str]]:
    """While Selinon reads its configuration (it imports every task, storage and predicate it names), the
    pipeline's modules are stubbed: dispatching needs the names and the graph, not the pipeline's code and
    its dependencies. The stubs are removed afterwards; the names of the stubbed modules are yielded."""
    finder = _StubFinder(modules - set(sys.modules))
    sys.meta_path.insert(0, finder)
    try:
        yield finder.stubbed
    finally:
        sys.meta_path.remove(finder)
        for name in finder.stubbed:
            sys.modules.pop(name, None)
