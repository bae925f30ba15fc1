"""What the pages say in words: times relative to now, schedules, lateness, who started a run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from f8a_jobs_worker.access.principal import who as principal_in_words


def parse(moment: str | None) -> datetime | None:
    return datetime.fromisoformat(moment) if moment else None


def relative(moment: str | None, now: datetime) -> str:
    """``in 5 min``, ``3 h ago``."""
    at = parse(moment)
    if at is None:
        return ""
    seconds = (at - now).total_seconds()
    span = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if span >= size:
            amount = f"{span / size:.0f} {unit}"
            break
    else:
        amount = f"{span:.0f} s"
    return f"in {amount}" if seconds >= 0 else f"{amount} ago"


def schedule(job: dict[str, Any]) -> str:
    """The job's trigger in words."""
    zone = job.get("timezone") or "UTC"
    if job.get("cron"):
        return f"cron {job['cron']} ({zone})"
    if job.get("calendar_interval"):
        return f"every {job['calendar_interval']} ({zone})"
    if job.get("periodically"):
        return f"every {job['periodically']}"
    if job.get("when"):
        return f"once, at {job['when']}"
    return ""


def lateness(run: dict[str, Any]) -> str:
    """How late a run started after its scheduled time."""
    scheduled, started = parse(run.get("scheduled_at")), parse(run.get("started_at"))
    if scheduled is None or started is None:
        return ""
    return f"{(started - scheduled).total_seconds() * 1000:.0f} ms"


def who(principal: dict[str, Any] | None) -> str:
    return principal_in_words(principal) or ""


def bars(buckets: list[dict[str, Any]], height: int = 50) -> list[dict[str, Any]]:
    """A histogram's bars from cumulative buckets: each bucket's own count, its label, its bar height."""
    own, before = [], 0
    for bucket in buckets:
        own.append((bucket["le_ms"], bucket["count"] - before))
        before = bucket["count"]
    tallest = max((count for _, count in own), default=0) or 1
    return [
        {"label": _bound(bound), "count": count, "height": round(count / tallest * height)}
        for bound, count in own
    ]


def _bound(bound: float | None) -> str:
    if bound is None:
        return "more"
    return f"<= {bound / 1000:g} s" if bound >= 1000 else f"<= {bound:g} ms"


def now() -> datetime:
    return datetime.now(UTC)
