"""Times written by clients: ISO 8601 dates and date-times; without an offset, read in a job's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from f8a_jobs_worker import zones
from f8a_jobs_worker.errors import ValidationFailed


def parse_iso(value: Any, field: str, zone: str = zones.DEFAULT_ZONE) -> datetime:
    """``YYYY-MM-DD`` or an ISO 8601 date-time as an aware UTC time (without an offset: read in ``zone``,
    see :func:`f8a_jobs_worker.zones.instant`); validation_error naming ``field`` for anything else."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(
            f"{field}: expected a date (YYYY-MM-DD) or an ISO 8601 date-time, got {value!r}",
            [{"path": f"$.{field}", "message": "not an ISO 8601 date or date-time"}],
        ) from None
    return zones.instant(moment, zone) if moment.tzinfo is None else moment.astimezone(UTC)
