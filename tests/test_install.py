"""A fresh install by the Makefile's own rule runs the worker with the README's own PostgreSQL URL form
(``postgresql://``, no driver named), as a new user would write it."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.process import WorkerProcess, clean_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[1]


def readme_database_example() -> str:
    row = next(
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if "`F8A_JOBS_DATABASE_URL`" in line
    )
    return re.findall(r"`(postgresql[^`]*)`", row)[0]


def test_the_readme_postgresql_url_works_on_a_fresh_install(
    pg_admin_url: str, tmp_path: Path
) -> None:
    example = sa.make_url(readme_database_example())
    assert example.drivername == "postgresql"  # the form users write: no driver named
    database = f"f8a_install_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {database}"))
    server = sa.make_url(pg_admin_url)
    url = example.set(
        username=server.username,
        password=server.password,
        host=server.host,
        port=server.port,
        database=database,
    ).render_as_string(hide_password=False)
    venv = tmp_path / "venv"
    worker = None
    try:
        subprocess.run(
            [
                "make",
                "-C",
                str(ROOT),
                f"{venv}/.runtime",
                f"VENV={venv}",
                f"PYTHON={sys.executable}",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        env = clean_env(F8A_JOBS_DATABASE_URL=url, F8A_JOBS_DEFAULT_JOBS_DIR=str(tmp_path))
        worker = WorkerProcess([str(venv / "bin" / "f8a-jobs-worker"), "run"], tmp_path, env)
        worker.wait_for("worker ready", timeout=60)
        assert worker.terminate() == 0
        assert "Traceback" not in worker.output
        assert "postgresql://" in worker.output  # the URL it was given, logged (no password in it)
    finally:
        if worker is not None:
            worker.stop()
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        admin.dispose()
