"""Worker processes for tests that need a real process: restart, kill -9, SIGTERM, logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PLUGINS = Path(__file__).parent / "plugins"


def clean_env(**settings: str) -> dict[str, str]:
    """The environment minus every F8A_JOBS_* variable, plus ``settings`` and the test handler plug-ins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("F8A_JOBS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def worker_env(
    database_url: str, broker_url: str, names: Any, default_jobs_dir: Path, **settings: str
) -> dict[str, str]:
    """:func:`clean_env` for a worker with messaging on the test's own queue names."""
    return clean_env(
        F8A_JOBS_DATABASE_URL=database_url,
        F8A_JOBS_BROKER_URL=broker_url,
        F8A_JOBS_DEFAULT_JOBS_DIR=str(default_jobs_dir),
        F8A_JOBS_COMMANDS_QUEUE=names.commands,
        F8A_JOBS_DEAD_LETTER_QUEUE=names.dead,
        F8A_JOBS_EVENTS_EXCHANGE=names.events,
        F8A_JOBS_FLOWS_EXCHANGE=names.flows,
        **settings,
    )


class WorkerProcess:
    """A child process whose combined output goes to a log file that tests can wait on."""

    def __init__(
        self, args: list[str], cwd: Path, env: dict[str, str], name: str = "worker"
    ) -> None:
        self.log_path = cwd / f"{name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @classmethod
    def run(cls, cwd: Path, env: dict[str, str], *extra: str) -> WorkerProcess:
        return cls([sys.executable, "-m", "f8a_jobs_worker", "run", *extra], cwd, env)

    @property
    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the output of the process:\n{self.output}")

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.wait(10)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
