"""The analytics tables that ``$filter`` queries read (fabric8-analytics-worker's models). The worker only
reads them; ``f8a-jobs-worker demo-data`` creates them with a sample for trying queries."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

ecosystems = sa.Table(
    "ecosystems",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), unique=True),
    sa.Column("url", sa.String(255)),
    sa.Column("fetch_url", sa.String(255)),
    sa.Column("_backend", sa.String(32)),
)
packages = sa.Table(
    "packages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ecosystem_id", sa.Integer, sa.ForeignKey("ecosystems.id")),
    sa.Column("name", sa.String(2048), index=True),
    sa.UniqueConstraint("ecosystem_id", "name"),
)
versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("package_id", sa.Integer, sa.ForeignKey("packages.id")),
    sa.Column("identifier", sa.String(255), index=True),
    sa.Column("synced2graph", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint("package_id", "identifier"),
)
analyses = sa.Table(
    "analyses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), index=True),
    sa.Column("access_count", sa.Integer, default=0),
    sa.Column("started_at", sa.DateTime, index=True),
    sa.Column("finished_at", sa.DateTime, index=True),
    sa.Column("subtasks", _JSON),
    sa.Column("release", sa.String(255)),
    sa.Column("audit", _JSON),
)
worker_results = sa.Table(
    "worker_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("worker", sa.String(255), index=True),
    sa.Column("worker_id", sa.String(64), unique=True),
    sa.Column("started_at", sa.DateTime),
    sa.Column("ended_at", sa.DateTime),
    sa.Column("external_request_id", sa.String(64)),
    sa.Column("analysis_id", sa.Integer, sa.ForeignKey("analyses.id"), index=True),
    sa.Column("task_result", _JSON),
    sa.Column("error", sa.Boolean, nullable=False, default=False),
)
monitored_upstreams = sa.Table(
    "monitored_upstreams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("package_id", sa.Integer, sa.ForeignKey("packages.id"), index=True),
    sa.Column("url", sa.String(255), nullable=False),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("added_at", sa.DateTime, nullable=False),
    sa.Column("deactivated_at", sa.DateTime),
)
package_analyses = sa.Table(
    "package_analyses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("package_id", sa.Integer, sa.ForeignKey("packages.id"), index=True),
    sa.Column("started_at", sa.DateTime, index=True),
    sa.Column("finished_at", sa.DateTime, index=True),
)
package_worker_results = sa.Table(
    "package_worker_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("package_analysis_id", sa.Integer, sa.ForeignKey("package_analyses.id"), index=True),
    sa.Column("worker", sa.String(255), index=True),
    sa.Column("worker_id", sa.String(64), unique=True),
    sa.Column("external_request_id", sa.String(64)),
    sa.Column("started_at", sa.DateTime),
    sa.Column("ended_at", sa.DateTime),
    sa.Column("task_result", _JSON),
    sa.Column("error", sa.Boolean, nullable=False, default=False),
)

TABLES: dict[str, sa.Table] = dict(metadata.tables)
