"""The job store's schema versions: Alembic revisions (``persistence/revisions/``), applied by ``run`` or by
``f8a-jobs-worker db upgrade``.

A store records its revision in ``f8a_schema_version``. Stores of releases before versions (0.1.0 and older)
have none; the first revision adopts them, adding only what they lack. Upgrades run in one transaction under
PostgreSQL's advisory lock, so replicas starting together take turns and the later ones find the store at
head. A store at a revision this release does not know (written by a newer release) is refused: running on
tables it does not understand could lose data.

A start on a store at head reads its one version row and compares it with :data:`HEAD`; Alembic (a fifth of
a second of imports and the revision files read) is loaded only to upgrade, go down or list the history.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from f8a_jobs_worker.errors import SchemaMismatch
from f8a_jobs_worker.persistence.database import advisory_xact_lock, store_errors

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

#: this release's newest revision (tests/test_schema_versions.py checks it is the revisions' head)
HEAD = "0006"
VERSION_TABLE = "f8a_schema_version"
#: Alembic's version table: one row, the revision
_VERSION = sa.table(VERSION_TABLE, sa.column("version_num", sa.String))
REVISIONS = Path(__file__).with_name("revisions")
#: the advisory lock that orders replicas upgrading the schema at the same time
SCHEMA_LOCK = 0x0F8A_0B5
UPGRADE_COMMAND = "f8a-jobs-worker db upgrade"


@dataclass(frozen=True)
class Revision:
    revision: str
    down_revision: str | None
    doc: str


@dataclass(frozen=True)
class SchemaState:
    """Where a store stands: its revision (None: no version recorded) and this release's newest."""

    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def known(self) -> bool:
        """Whether this release knows the store's revision (a newer release's is unknown)."""
        return self.current is None or self.current in {r.revision for r in history()}


def _config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(REVISIONS))
    config.attributes["connection"] = connection
    return config


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this release knows."""
    return HEAD


def scripted_head() -> str | None:
    """The head of the revision files, as Alembic reads them."""
    return _script().get_current_head()


@functools.cache
def history() -> tuple[Revision, ...]:
    """Every revision this release knows, oldest first."""
    revisions = list(_script().walk_revisions())
    revisions.reverse()
    return tuple(
        Revision(
            str(r.revision),
            None if r.down_revision is None else str(r.down_revision),
            (r.doc or "").strip(),
        )
        for r in revisions
    )


def current(connection: sa.Connection) -> str | None:
    """The store's revision, None where none is recorded (an empty database, or a store of 0.1.0)."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    found = connection.execute(sa.select(_VERSION.c.version_num)).scalars().all()
    if len(found) > 1:  # branches: this release's revisions have none
        raise SchemaMismatch(f"the job store records several schema revisions: {sorted(found)}")
    return found[0] if found else None


def state(engine: sa.Engine) -> SchemaState:
    with store_errors("job store"), engine.connect() as connection:
        return SchemaState(current(connection), head())


def upgrade(engine: sa.Engine, target: str = "head") -> SchemaState:
    """Apply the revisions up to ``target`` in one transaction, under the schema lock. Returns where the
    store stood before (``current``) and ``head``."""
    return _migrate(engine, target, down=False)


def downgrade(engine: sa.Engine, target: str) -> SchemaState:
    """Undo revisions down to ``target`` (``base``: no tables at all) in one transaction."""
    return _migrate(engine, target, down=True)


def _migrate(engine: sa.Engine, target: str, down: bool) -> SchemaState:
    with store_errors("job store"), engine.begin() as connection:
        advisory_xact_lock(connection, SCHEMA_LOCK)
        before = SchemaState(current(connection), head())
        if not before.known:
            raise _ahead(before)
        from alembic import command

        if down:
            command.downgrade(_config(connection), target)
        else:
            command.upgrade(_config(connection), target)
        after = current(connection)
    if after != before.current:
        log.info("job store schema: %s -> %s", before.current or "none", after or "none")
    return before


def ensure(engine: sa.Engine, upgrade_allowed: bool) -> SchemaState:
    """Make sure this release can run on the store: upgrade it to head if allowed, else raise
    :class:`SchemaMismatch` naming the command that upgrades it. A store ahead is always refused."""
    found = state(engine)
    if found.at_head:
        return found
    if not found.known:
        raise _ahead(found)
    if not upgrade_allowed:
        raise SchemaMismatch(
            f"the job store's schema is at revision {found.current or 'none'}, this release needs "
            f"{found.head}: run `{UPGRADE_COMMAND}` (F8A_JOBS_SCHEMA_UPGRADE=manual)"
        )
    return upgrade(engine)


def _ahead(found: SchemaState) -> SchemaMismatch:
    return SchemaMismatch(
        f"the job store's schema is at revision {found.current}, which this release does not know (it "
        f"knows up to {found.head}): it was upgraded by a newer release; run that release"
    )
