"""A small, fixed sample of analytics data, for trying ``$filter`` queries (``f8a-jobs-worker demo-data``)
and for the tests, which know every row of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.filters import analytics_tables as t


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


ECOSYSTEMS = [(1, "npm"), (2, "maven"), (3, "pypi")]
PACKAGES = [
    (1, 1, "serve-static"),
    (2, 1, "left-pad"),
    (3, 2, "net.iharder:base64"),
    (4, 2, "junit:junit"),
    (5, 3, "requests"),
    (6, 3, "flask"),
]
VERSIONS = [
    (1, 1, "1.7.1"),
    (2, 1, "1.8.0"),
    (3, 2, "1.0.0"),
    (4, 3, "2.3.9"),
    (5, 4, "4.12"),
    (6, 5, "2.31.0"),
    (7, 6, "3.0.0"),
    (8, 5, "2.32.0"),
]
ANALYSES = [  # id, version_id, started_at, finished_at
    (1, 1, "2017-03-30 10:00", "2017-03-30 10:05"),
    (2, 2, "2017-04-02 08:00", None),
    (3, 3, "2017-04-05 09:00", "2017-04-05 09:10"),
    (4, 4, "2017-04-01 21:00", None),
    (5, 5, "2017-03-01 00:00", None),
    (6, 6, "2017-05-01 00:00", "2017-05-01 00:30"),
    (7, 4, "2017-04-03 12:00", "2017-04-03 12:30"),
    (8, 7, "2017-04-10 00:00", "2017-04-10 00:10"),
]
WORKER_RESULTS = [  # id, worker, worker_id, analysis_id, error
    (1, "digests", "w1", 1, False),
    (2, "metadata", "w2", 2, True),
    (3, "digests", "w3", 3, False),
    (4, "security", "w4", 4, True),
    (5, "metadata", "w5", 6, False),
    (6, "digests", "w6", 2, True),
    (7, "security", "w7", 8, False),
]
UPSTREAMS = [  # id, package_id, url, deactivated_at
    (1, 1, "https://github.com/expressjs/serve-static", None),
    (2, 5, "https://github.com/psf/requests", "2018-01-01 00:00"),
    (3, 4, "https://gitlab.com/junit-team/junit4", None),
]


def create_demo_data(engine: sa.Engine) -> dict[str, int]:
    """Create the analytics tables (if missing) and replace their rows with the sample; return row counts."""
    t.metadata.create_all(engine)
    rows = {**_packages(), **_analyses()}
    with engine.begin() as connection:
        for table in reversed(t.metadata.sorted_tables):
            connection.execute(table.delete())
        for table in t.metadata.sorted_tables:
            connection.execute(table.insert(), rows[table])
    return {table.name: len(rows[table]) for table in t.metadata.sorted_tables}


Rows = dict[sa.Table, list[dict[str, Any]]]


def _packages() -> Rows:
    """Ecosystems, packages, versions and the upstreams monitored."""
    return {
        t.ecosystems: [{"id": i, "name": n, "_backend": n} for i, n in ECOSYSTEMS],
        t.packages: [{"id": i, "ecosystem_id": e, "name": n} for i, e, n in PACKAGES],
        t.versions: [
            {"id": i, "package_id": p, "identifier": v, "synced2graph": i % 2 == 0}
            for i, p, v in VERSIONS
        ],
        t.monitored_upstreams: [
            {
                "id": i,
                "package_id": p,
                "url": u,
                "added_at": _at("2017-01-01 00:00"),
                "deactivated_at": _at(d),
            }
            for i, p, u, d in UPSTREAMS
        ],
    }


def _analyses() -> Rows:
    """Version and package analyses with their workers' results."""
    return {
        t.analyses: [
            {
                "id": i,
                "version_id": v,
                "started_at": _at(s),
                "finished_at": _at(f),
                "access_count": i,
            }
            for i, v, s, f in ANALYSES
        ],
        t.worker_results: [
            {
                "id": i,
                "worker": w,
                "worker_id": wid,
                "analysis_id": a,
                "error": e,
                "task_result": {"status": "error" if e else "success"},
            }
            for i, w, wid, a, e in WORKER_RESULTS
        ],
        t.package_analyses: [
            {
                "id": 1,
                "package_id": 1,
                "started_at": _at("2017-04-01 00:00"),
                "finished_at": _at("2017-04-01 00:01"),
            }
        ],
        t.package_worker_results: [
            {
                "id": 1,
                "package_analysis_id": 1,
                "worker": "github_details",
                "worker_id": "pw1",
                "error": False,
            }
        ],
    }
