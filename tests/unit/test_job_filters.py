"""job.list's filters on SQLite (the embedded default): the same checks as on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.worker import Worker
from tests.test_job_filters import check_filters, populate


def test_filters_pick_exactly_their_jobs_on_sqlite(
    unit_worker: Callable[..., Worker], client: Client
) -> None:
    populate(client, unit_worker())
    check_filters(client)
