"""What every benchmark shares: services, a fresh database, worker processes, statistics and the report.

Each benchmark measures the project and a raw limit in the same run and returns :class:`Row` objects: the
median of several repetitions with their min and max, for both sides, and the ratio project / limit.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kombu import Connection

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "F8A_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RABBITMQ_URL = os.environ.get("F8A_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


# -- statistics ----------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; ``values`` need not be sorted."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Stats:
    """One metric over the repetitions of a benchmark."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": min(self.values),
            "max": max(self.values),
            "n": len(self.values),
            "values": list(self.values),
        }


@dataclass(frozen=True)
class Row:
    """One line of the report: a project metric beside its raw limit (``limit`` may be None)."""

    benchmark: str
    metric: str
    unit: str
    project: Stats
    limit: Stats | None = None
    limit_name: str = ""
    higher_is_better: bool = True
    goal: str = ""  # the goal in words; never asserted
    goal_met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.limit is None or self.limit.median == 0:
            return None
        return self.project.median / self.limit.median

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "metric": self.metric,
            "unit": self.unit,
            "project": self.project.to_dict(),
            "limit": self.limit.to_dict() if self.limit else None,
            "limit_name": self.limit_name,
            "ratio": self.ratio,
            "higher_is_better": self.higher_is_better,
            "goal": self.goal,
            "goal_met": self.goal_met,
        }


@dataclass
class Collector:
    """Gathers one value per repetition per metric, then turns them into rows."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, metric: str, value: float) -> None:
        self.values.setdefault(metric, []).append(value)

    def __getitem__(self, metric: str) -> Stats:
        return Stats(tuple(self.values[metric]))


def repeat(times: int, once: Callable[[Collector], None]) -> Collector:
    collected = Collector()
    for _ in range(times):
        once(collected)
    return collected


# -- the report ---------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _spread(stats: Stats | None) -> str:
    if stats is None:
        return "-"
    return f"{_fmt(stats.median)} [{_fmt(min(stats.values))}-{_fmt(max(stats.values))}]"


def table(rows: list[Row]) -> str:
    header = ("benchmark", "metric", "unit", "project median [min-max]", "limit median [min-max]")
    lines = [
        (
            row.benchmark,
            row.metric,
            row.unit,
            _spread(row.project),
            f"{_spread(row.limit)} {row.limit_name}".strip(),
            _fmt(row.ratio) if row.ratio is not None else "-",
            row.goal
            + ("" if row.goal_met is None else (" (met)" if row.goal_met else " (missed)")),
        )
        for row in rows
    ]
    full = [(*header, "ratio", "goal"), *lines]
    widths = [max(len(line[i]) for line in full) for i in range(len(full[0]))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) for line in full]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def machine() -> dict[str, Any]:
    """Where the numbers came from."""
    with sa.create_engine(POSTGRES_URL).connect() as connection:
        pg = connection.execute(sa.text("show server_version")).scalar()
        sync = connection.execute(sa.text("show synchronous_commit")).scalar()
    with Connection(RABBITMQ_URL) as conn:
        conn.connect()
        rabbitmq = conn.connection.server_properties.get("version")
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": pg,
        "postgresql_synchronous_commit": sync,
        "rabbitmq": rabbitmq.decode() if isinstance(rabbitmq, bytes) else rabbitmq,
    }


# -- services -----------------------------------------------------------------------------------------


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one benchmark, dropped afterwards."""
    name = f"f8a_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def unique_prefix() -> str:
    return f"bench_{uuid.uuid4().hex[:8]}"


def delete_queues(*names: str) -> None:
    _delete("queue_delete", names)


def delete_exchanges(*names: str) -> None:
    _delete("exchange_delete", names)


def _delete(method: str, names: tuple[str, ...]) -> None:
    """Best effort: a name that does not exist closes the channel, so the next one gets a new channel."""
    with Connection(RABBITMQ_URL) as conn:
        channel = conn.channel()
        for name in names:
            try:
                getattr(channel, method)(name)
            except Exception:
                channel = conn.channel()


# -- processes ----------------------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: the processes of the services on this machine, by their command name in /proc
SERVICE_COMMANDS = {"rabbitmq": ("beam.smp", "erl_child_setup"), "postgresql": ("postgres",)}


def cpu_seconds(pid: int) -> float:
    """CPU time a process has spent so far, all its live threads, from /proc: the scheduler's count in
    nanoseconds (``schedstat``) where the kernel keeps it, else user + system time in clock ticks."""
    total, counted = 0, False
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):  # a thread gone meanwhile
                total += int((task / "schedstat").read_text().split()[0])
                counted = True
    if counted:
        return total / 1e9
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def service_cpu_seconds() -> dict[str, float]:
    """CPU time so far of every process of each service in :data:`SERVICE_COMMANDS` (0 where none runs
    here, or without /proc)."""
    totals = dict.fromkeys(SERVICE_COMMANDS, 0.0)
    proc = Path("/proc")
    if not proc.is_dir():
        return totals
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            for service, commands in SERVICE_COMMANDS.items():
                if name.startswith(commands):
                    totals[service] += cpu_seconds(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return totals


@dataclass
class CpuMeter:
    """CPU time spent by a server process, the services and this process (the load driver) over a block;
    divided by the commands sent, it says what one command costs each party, and how many the machine's
    cores could carry at most (:attr:`ceiling`)."""

    server_pid: int
    #: False: :meth:`measure` reads nothing (runs whose CPU is not reported)
    enabled: bool = True
    #: more server processes on the same queue (replicas), counted together beside the first
    replica_pids: tuple[int, ...] = ()
    server: float = 0.0
    driver: float = 0.0
    replicas: float = 0.0
    services: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def measure(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        server, driver, replicas, services = (
            cpu_seconds(self.server_pid),
            time.process_time(),
            self._replicas_cpu(),
            service_cpu_seconds(),
        )
        yield
        self.server = cpu_seconds(self.server_pid) - server
        self.driver = time.process_time() - driver
        self.replicas = self._replicas_cpu() - replicas
        after = service_cpu_seconds()
        self.services = {name: after[name] - services[name] for name in after}

    def _replicas_cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.replica_pids)

    def per_command_us(self, count: int) -> dict[str, float]:
        parts = {"server": self.server, "driver": self.driver, **self.services}
        if self.replica_pids:
            parts["other replicas"] = self.replicas
        return {name: seconds * 1e6 / count for name, seconds in parts.items()}

    def ceiling(self, count: int) -> float:
        """Commands per second if every core did nothing but this: cores / CPU time per command."""
        total = sum(self.per_command_us(count).values())
        return (os.cpu_count() or 1) * 1e6 / total if total else 0.0


class Process:
    """A child process (worker, echo server, bare scheduler) with its output in a log file."""

    def __init__(
        self, args: list[str], env: dict[str, str], log_dir: Path, name: str, cwd: Path = ROOT
    ) -> None:
        """``cwd``: the checkout whose code ``python -m`` runs (this one by default)."""
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("wb")
        self.started = time.perf_counter()
        self.started_wall = time.time()
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.proc.args!r} exited early:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)


def worker_env(database_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a worker process on this run's database and queue names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("F8A_JOBS_")}
    env.update(
        {
            "F8A_JOBS_DATABASE_URL": database_url,
            "F8A_JOBS_BROKER_URL": RABBITMQ_URL,
            "F8A_JOBS_COMMANDS_QUEUE": f"{prefix}_commands",
            "F8A_JOBS_DEAD_LETTER_QUEUE": f"{prefix}_commands_dead",
            "F8A_JOBS_EVENTS_EXCHANGE": f"{prefix}_events",
            "F8A_JOBS_FLOWS_EXCHANGE": f"{prefix}_flows",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def start_worker(
    env: dict[str, str], log_dir: Path, cpus: str | None = None, checkout: Path = ROOT
) -> Process:
    """A worker process (of ``checkout``'s code); with ``cpus`` (``"1"``, ``"0,1"``) pinned to those cores
    by ``taskset``."""
    args = [sys.executable, "-m", "f8a_jobs_worker", "run", "--no-default-jobs"]
    pinned = ["taskset", "--cpu-list", cpus] if cpus else []
    return Process([*pinned, *args], env, log_dir, "worker", cwd=checkout)


#: what a create's commit sends the replicas (persistence/notify.py): plan again, a job may be due sooner
WAKE_REPLICAS = "SELECT pg_notify('f8a_jobs', 'wake')"


def wait_all_ready(workers: list[Process], timeout: float = 120.0) -> None:
    """Until every worker's log says it is ready."""
    deadline = time.monotonic() + timeout
    while not all("worker ready" in worker.output() for worker in workers):
        for worker in workers:
            worker.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not all get ready")
        time.sleep(0.05)


def python_module(module: str, *args: str, log_dir: Path, name: str) -> Process:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return Process([sys.executable, "-m", module, *args], env, log_dir, name)


#: the worker's run history as the benchmarks read it: the table as data (docs/messages.md's run record)
JOB_RUNS = sa.table(
    "f8a_job_runs",
    sa.column("job_id", sa.String),
    sa.column("outcome", sa.String),
    sa.column("scheduled_at", sa.DateTime(timezone=True)),
    sa.column("started_at", sa.DateTime(timezone=True)),
    sa.column("finished_at", sa.DateTime(timezone=True)),
)


def worker_command(*args: str) -> None:
    """``f8a-jobs-worker ARGS``, with no F8A_JOBS_* variable of this process; raises if it fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("F8A_JOBS_")}
    subprocess.run(
        [sys.executable, "-m", "f8a_jobs_worker", *args], env=env, check=True, capture_output=True
    )


def upgrade_store(database_url: str) -> None:
    """The worker's tables in ``database_url``, made by the worker's own command (``db upgrade``)."""
    worker_command("db", "upgrade", "--database-url", database_url)
