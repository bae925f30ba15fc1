"""The thread-pool executor that runs jobs through :class:`JobRunner`.

It replaces APScheduler's ``run_job`` (which calls the stored function) so that a stored job needs no callable
of its own and every outcome is recorded by the runner.
"""

from __future__ import annotations

import concurrent.futures
from concurrent.futures import Future
from datetime import datetime
from functools import partial
from typing import Any

from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.job import Job

from f8a_jobs_worker.scheduling.jobs import handler_of
from f8a_jobs_worker.scheduling.runner import JobRunner


class JobExecutor(BasePoolExecutor):  # type: ignore[misc]
    def __init__(self, runner: JobRunner, max_workers: int) -> None:
        super().__init__(
            concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="f8a-job")
        )
        self.runner = runner

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        future = self._pool.submit(
            self.runner.run,
            job.id,
            job._jobstore_alias,
            handler_of(job),
            dict(job.kwargs),
            list(run_times),
            job.misfire_grace_time,
        )
        future.add_done_callback(partial(self._finished, job.id))

    def _finished(self, job_id: str, future: Future[Any]) -> None:
        exc = future.exception()
        if exc is not None:
            self._run_job_error(job_id, exc, exc.__traceback__)
        else:
            self._run_job_success(job_id, future.result())
