"""The job repository: every read and write of ``f8a_jobs``, each a statement on the caller's unit of work.

Beside a job's state (:mod:`f8a_jobs_worker.job`) a row keeps its next run time (UTC epoch seconds, null while
paused), its handler and whether it is a default job, so that listing and claiming never unpickle more than
they return. A row whose state cannot be restored (a deploy renamed what it names) is never deleted: it reads
as a :class:`BrokenJob`, and when it falls due it is marked (``broken`` says why, its next run time cleared)
in the claiming pass's transaction, so it neither runs, nor hides healthy due jobs, nor makes the scheduler
spin; a start that can restore it again schedules it again.

Several replicas share the table: a pass claims the due rows it fires with ``FOR UPDATE SKIP LOCKED`` (on
PostgreSQL), so rows another replica's pass holds are skipped rather than fired twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from f8a_jobs_worker.job import BrokenJob, Job, decode, encode
from f8a_jobs_worker.persistence import counts as counters
from f8a_jobs_worker.persistence import last_runs
from f8a_jobs_worker.persistence.bulk import insert_rows
from f8a_jobs_worker.persistence.tables import jobs, run_ledger
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

JobType = Literal["all", "user", "default"]

#: due jobs claimed per pass: each pass commits once, and a capped pass lets commands in between passes
DUE_JOBS_PER_PASS = 100

_COLUMNS = [jobs.c.id, jobs.c.job_state, jobs.c.handler, jobs.c.is_default]
_NEXT_RUN = jobs.c.next_run_time
# built once: SQLAlchemy reuses a compiled statement instead of building a cache key per call
_FIND = sa.select(*_COLUMNS).where(jobs.c.id == sa.bindparam("id"))
_FIND_LOCKED = _FIND.with_for_update()
_FIND_MANY = sa.select(*_COLUMNS).where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
_EXISTING = sa.select(jobs.c.id).where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
_UPDATE = jobs.update().where(jobs.c.id == sa.bindparam("job_id"))
_DELETE_MANY = jobs.delete().where(jobs.c.id.in_(sa.bindparam("ids", expanding=True)))
_NEXT = sa.select(_NEXT_RUN).where(_NEXT_RUN.is_not(None)).order_by(_NEXT_RUN).limit(1)
_MARK_BROKEN = (
    jobs.update()
    .where(jobs.c.id == sa.bindparam("job_id"), jobs.c.broken.is_(None))
    .values(broken=sa.bindparam("reason"), next_run_time=None)
)
# a data-modifying WITH runs whether or not the query reads it, and the query sees the rows as they were
# before it: hence the ids left out of the earliest too. ORDER BY ... LIMIT 1, not min(): PostgreSQL reads
# min() off an index only in a query without a WITH, so min() here scanned the whole table
_FIRED = sa.bindparam("ids", type_=postgresql.ARRAY(sa.Unicode))
_REMOVE_AND_NEXT = (
    sa.select(_NEXT_RUN)
    .where(_NEXT_RUN.is_not(None), jobs.c.id != sa.all_(_FIRED))
    .order_by(_NEXT_RUN)
    .limit(1)
    .add_cte(jobs.delete().where(jobs.c.id == sa.any_(_FIRED)).cte("gone"))
)


def _claim_query(replica: str) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The claim of due rows (with each one's runs in progress on other replicas), and the same claim
    leaving out rows taken already in this pass."""
    elsewhere = (
        sa.select(sa.func.count())
        .where(run_ledger.c.job_id == jobs.c.id, run_ledger.c.worker != replica)
        .scalar_subquery()
        .label("elsewhere")
    )
    claim = (
        sa.select(*_COLUMNS, elsewhere)
        .where(sa.bindparam("until") >= _NEXT_RUN)
        .order_by(_NEXT_RUN)
        .limit(sa.bindparam("wanted"))
        .with_for_update(skip_locked=True)
    )
    return claim, claim.where(jobs.c.id.not_in(sa.bindparam("taken", expanding=True)))


def timestamp(moment: datetime | None) -> float | None:
    """A row's next run time: UTC epoch seconds."""
    return None if moment is None else moment.timestamp()


def moment(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class JobFilter:
    """What ``job.list`` may narrow a page to, each read through an index (``revisions/0004``): a state
    (``running``, ``paused``, ``broken``: marked broken when it fell due), a handler, a job id prefix, and
    whether the job's last run failed."""

    state: str | None = None
    handler: str | None = None
    prefix: str | None = None
    failing: bool = False

    def conditions(self, dialect: str) -> list[sa.ColumnElement[bool]]:
        found: list[sa.ColumnElement[bool]] = []
        if self.state == "paused":
            found += [_NEXT_RUN.is_(None), jobs.c.broken.is_(None)]
        elif self.state == "running":
            found += [_NEXT_RUN.is_not(None), jobs.c.broken.is_(None)]
        elif self.state == "broken":
            found.append(jobs.c.broken.is_not(None))
        if self.handler is not None:
            found.append(jobs.c.handler == sa.bindparam("handler"))
        if self.prefix:
            prefix = sa.bindparam("prefix", type_=sa.String)
            if dialect == "postgresql":  # one range of the byte-order index, read in its order
                key = self.key(dialect)
                found.append(key >= prefix)
                if _after_prefix(self.prefix) is not None:
                    found.append(key < sa.bindparam("above", type_=sa.String))
            else:  # SQLite's LIKE ignores case
                length = sa.bindparam("prefix_length", type_=sa.Integer)
                found.append(sa.func.substr(jobs.c.id, 1, length) == prefix)
        if self.failing:
            found.append(jobs.c.id.in_(last_runs.FAILING))
        return found

    def values(self) -> dict[str, Any]:
        """The values of the parameters of :meth:`conditions`."""
        found: dict[str, Any] = {}
        if self.handler is not None:
            found["handler"] = self.handler
        if self.prefix:
            found["prefix"] = self.prefix
            found["prefix_length"] = len(self.prefix)
            found["above"] = _after_prefix(self.prefix)
        return found

    def shape(self) -> tuple[object, ...]:
        """What the statement of :meth:`conditions` depends on (its parameters' values aside)."""
        return (
            self.state,
            self.handler is not None,
            bool(self.prefix),
            _after_prefix(self.prefix) is not None if self.prefix else False,
            self.failing,
        )

    def key(self, dialect: str) -> sa.ColumnElement[str]:
        """What pages are ordered and keyed by: the id, in byte order for a prefix on PostgreSQL."""
        if self.prefix and dialect == "postgresql":
            return jobs.c.id.collate("C")
        return jobs.c.id

    def __bool__(self) -> bool:
        return bool(self.state or self.handler is not None or self.prefix or self.failing)


def _after_prefix(prefix: str) -> str | None:
    """The least string above every one that starts with ``prefix``, in byte (code point) order; None
    where there is none (a prefix of nothing but U+10FFFF)."""
    stem = prefix.rstrip("\U0010ffff")
    return stem[:-1] + chr(ord(stem[-1]) + 1) if stem else None


@dataclass
class Claim:
    """What a pass claimed: the due jobs (their rows locked until it commits), how many runs of each are in
    progress on other replicas, and the due rows it marked broken."""

    jobs: list[Job] = field(default_factory=list)
    elsewhere: dict[str, int] = field(default_factory=dict)
    broken: list[BrokenJob] = field(default_factory=list)


class JobRepository:
    """``f8a_jobs`` as one replica (``replica``) reads and writes it."""

    def __init__(self, replica: str = "", due_per_pass: int = DUE_JOBS_PER_PASS) -> None:
        self.replica = replica
        self.due_per_pass = due_per_pass
        self._claim, self._claim_more = _claim_query(replica)

    # -- reads -------------------------------------------------------------------------------------------

    def find(self, uow: UnitOfWork, job_id: str, lock: bool = False) -> Job | BrokenJob | None:
        """The job, what is known of it if it cannot be restored, or None. ``lock``: its row locked until
        the unit of work ends (waiting for a pass of any replica that holds it)."""
        query = _FIND_LOCKED if lock else _FIND
        row = uow.connection.execute(query, {"id": job_id}).first()
        return _restore(row) if row is not None else None

    def find_many(self, uow: UnitOfWork, job_ids: list[str]) -> dict[str, Job | BrokenJob]:
        """The stored ones of ``job_ids`` (one query for a batch of ``job.get``)."""
        rows = uow.connection.execute(_FIND_MANY, {"ids": list(set(job_ids))}).all()
        return {row.id: _restore(row) for row in rows}

    def existing(self, uow: UnitOfWork, job_ids: list[str]) -> set[str]:
        """Which of ``job_ids`` are stored (one query for a batch of ``job.create``)."""
        return set(uow.connection.execute(_EXISTING, {"ids": list(set(job_ids))}).scalars())

    def next_run_time(self, uow: UnitOfWork) -> datetime | None:
        """The earliest next run time of any job."""
        return moment(uow.connection.execute(_NEXT).scalar())

    def scheduled(self, uow: UnitOfWork) -> list[Job]:
        """Every job with a next run time that can be restored (paused and broken ones left out)."""
        query = sa.select(*_COLUMNS).where(_NEXT_RUN.is_not(None), jobs.c.broken.is_(None))
        return [job for job in map(_restore, uow.connection.execute(query)) if isinstance(job, Job)]

    def paused(self, uow: UnitOfWork) -> int:
        query = sa.select(sa.func.count()).where(_NEXT_RUN.is_(None))
        return int(uow.connection.execute(query).scalar_one())

    def page(
        self,
        uow: UnitOfWork,
        job_type: JobType,
        limit: int,
        offset: int = 0,
        after: str | None = None,
        where: JobFilter | None = None,
    ) -> tuple[list[Job | BrokenJob], int, str | None]:
        """One page of jobs ordered by id (broken ones included), how many jobs of that type there are in
        all (whatever ``where`` narrows the page to: counting the matches would cost a scan), and the key
        of the next page (None on the last). ``after`` (the previous page's key) reads the next page
        through the primary key's index, however deep; ``offset`` walks every row before."""
        where = where or JobFilter()
        query = _page_query(job_type, where, after is not None, uow.connection.dialect.name)
        values = {"after": after, "limit": limit + 1, "offset": offset, **where.values()}
        rows = uow.connection.execute(query, values).all()
        following = rows[limit - 1].id if len(rows) > limit and limit > 0 else None
        restored = [_restore(row, _decoded) for row in rows[:limit]]
        return restored, _count(uow, job_type), following

    # -- writes ------------------------------------------------------------------------------------------

    def insert(self, uow: UnitOfWork, new: list[Job]) -> None:
        """Insert new jobs with one statement. The caller has checked that none exists; a concurrent
        insert of the same id fails the statement (and so its unit of work), never overwrites."""
        if new:
            insert_rows(uow.connection, jobs, [{"id": job.job_id, **_row(job)} for job in new])

    def save(self, uow: UnitOfWork, changed: list[Job]) -> int:
        """Write changed jobs back (one statement for all); how many rows were there to update."""
        if not changed:
            return 0
        values = [{"job_id": job.job_id, **_row(job)} for job in changed]
        return int(uow.connection.execute(_UPDATE, values).rowcount or 0)

    def delete(self, uow: UnitOfWork, job_ids: list[str]) -> int:
        """Delete jobs (one statement); how many there were."""
        if not job_ids:
            return 0
        return int(uow.connection.execute(_DELETE_MANY, {"ids": job_ids}).rowcount or 0)

    def restore_repaired(self, uow: UnitOfWork) -> list[str]:
        """Jobs marked broken that can be restored now (a fix was deployed): scheduled again at the next
        run time their state holds (a run missed meanwhile is handled like any late run)."""
        query = sa.select(*_COLUMNS).where(jobs.c.broken.is_not(None))
        repaired = [
            job for job in map(_restore, uow.connection.execute(query)) if isinstance(job, Job)
        ]
        self.save(uow, repaired)
        return [job.job_id for job in repaired]

    # -- a scheduler pass --------------------------------------------------------------------------------

    def claim_due(self, uow: UnitOfWork, until: datetime) -> Claim:
        """The earliest jobs due by ``until``, at most ``due_per_pass``, their rows locked (others' skipped).
        Due rows that cannot be restored are marked broken and their places filled with healthy jobs."""
        claim = Claim()
        while len(claim.jobs) < self.due_per_pass:
            wanted = self.due_per_pass - len(claim.jobs)
            query = self._claim
            values: dict[str, Any] = {"until": timestamp(until), "wanted": wanted}
            if (
                claim.jobs
            ):  # broken rows just left the due set; the healthy ones taken so far have not
                query = self._claim_more
                values["taken"] = [job.job_id for job in claim.jobs]
            rows = uow.connection.execute(query, values).all()
            broken = []
            for row in rows:
                restored = _restore(row)
                if isinstance(restored, BrokenJob):
                    broken.append(restored)
                    continue
                claim.jobs.append(restored)
                if row.elsewhere:
                    claim.elsewhere[row.id] = int(row.elsewhere)
            claim.broken += self._mark_broken(uow, broken)
            if not broken or len(rows) < wanted:
                return claim
        return claim

    def _mark_broken(self, uow: UnitOfWork, broken: list[BrokenJob]) -> list[BrokenJob]:
        """Take broken due rows out of the schedule, keeping them (and their state) for a later fix; the
        ones this call marked (another replica may have marked one first)."""
        marked = []
        for job in broken:
            values = {"job_id": job.job_id, "reason": job.reason}
            if uow.connection.execute(_MARK_BROKEN, values).rowcount:
                marked.append(job)
        return marked

    def advance(self, uow: UnitOfWork, moved: list[Job], fired: list[str]) -> datetime | None:
        """A pass's writes: jobs moved to their next run time, one-shot jobs it fired removed; then the
        earliest next run time left (on PostgreSQL the removal and the minimum are one statement)."""
        self.save(uow, moved)
        if fired and uow.connection.dialect.name == "postgresql":
            return moment(uow.connection.execute(_REMOVE_AND_NEXT, {"ids": fired}).scalar())
        self.delete(uow, fired)
        return self.next_run_time(uow)


#: page statements by shape, built once each: building one and its cache key cost more than running it
_PAGES: dict[tuple[object, ...], sa.Select[Any]] = {}


def _page_query(job_type: JobType, where: JobFilter, keyed: bool, dialect: str) -> sa.Select[Any]:
    """The statement of a page of ``job_type`` narrowed by ``where`` (after the key ``after`` if
    ``keyed``), with parameters for the values: one per shape of page, whatever the values."""
    shape = (job_type, where.shape(), keyed, dialect)
    if (query := _PAGES.get(shape)) is None:
        query = sa.select(*_COLUMNS)
        if job_type != "all":
            query = query.where(jobs.c.is_default.is_(job_type == "default"))
        key = where.key(dialect)
        query = query.where(*where.conditions(dialect))
        if keyed:
            query = query.where(key > sa.bindparam("after", type_=sa.String))
        limit, offset = (
            sa.bindparam("limit", type_=sa.Integer),
            sa.bindparam("offset", type_=sa.Integer),
        )
        query = _PAGES[shape] = query.order_by(key).limit(limit).offset(offset)
    return query


def _row(job: Job) -> dict[str, Any]:
    return {
        "next_run_time": timestamp(job.next_run_time),
        "job_state": encode(job),
        "handler": job.handler,
        "is_default": job.default,
        "broken": None,
    }


#: pages' jobs by their stored state: a page read again (a dashboard polling it) restores only the jobs that
#: changed since. Safe to share: a job is immutable, and its state bytes are all it is restored from. About
#: ten pages of the default size, a few MB.
PAGE_CACHE = 1024


@functools.lru_cache(maxsize=PAGE_CACHE)
def _decoded(data: bytes) -> Job:
    return decode(data)


def _restore(row: Any, restore: Callable[[bytes], Job] = decode) -> Job | BrokenJob:
    try:
        return restore(bytes(row.job_state))
    except Exception as exc:  # whatever unpickling an old state raises
        reason = f"{type(exc).__name__}: {exc}"[:500]
        return BrokenJob(row.id, row.handler, bool(row.is_default), reason)


def _count(uow: UnitOfWork, job_type: JobType) -> int:
    """How many jobs of ``job_type`` there are, from the counters the triggers keep (no scan)."""
    found = counters.totals(uow.connection)
    user, default = found[counters.USER_JOBS], found[counters.DEFAULT_JOBS]
    return {"all": user + default, "user": user, "default": default}[job_type]
